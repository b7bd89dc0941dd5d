"""Helper semantics in the fake world (``tests/world.py``): injected clock and fetcher, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from docker_credential_ecr.errors import CredentialsNotFoundError, NotImplementedByHelperError
from docker_credential_ecr.protocol import Credentials
from docker_credential_ecr.settings import Settings
from world import HOST, HOUR, World

SAME_REGION = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
OTHER_REGION = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_miss_then_hit(world: World) -> None:
    first = world.get()
    assert (first.server_url, first.username, first.secret) == (HOST, "AWS", "pw1")
    assert world.get().secret == "pw1"
    assert len(world.calls) == 1
    assert world.warnings == []


def test_server_url_is_echoed_as_given(world: World) -> None:
    assert world.get("https://" + HOST + "/v2/").server_url == "https://" + HOST + "/v2/"


def test_one_token_per_region(world: World) -> None:
    world.get(HOST)
    world.get(SAME_REGION)
    assert len(world.calls) == 1
    world.get(OTHER_REGION)
    assert len(world.calls) == 2
    assert world.calls[1].region == "eu-west-1"


def test_refresh_at_half_life(world: World) -> None:
    world.get()
    world.now += 6 * HOUR - 1
    assert world.get().secret == "pw1"
    world.now += 2
    assert world.get().secret == "pw2"
    assert len(world.calls) == 2


def test_stale_fallback_when_refresh_fails(world: World) -> None:
    world.get()
    world.now += 7 * HOUR
    world.fail = "ECR (us-east-1) is throttling GetAuthorizationToken: retry in a minute"
    assert world.get().secret == "pw1"
    assert len(world.warnings) == 1
    assert world.warnings[0].startswith(world.fail)
    assert "using the cached token, which expires in 300 min" in world.warnings[0]


def test_expired_token_is_not_served(world: World) -> None:
    world.get()
    world.now += 12 * HOUR
    world.fail = "no AWS credentials found"
    with pytest.raises(CredentialsNotFoundError) as info:
        world.get()
    assert info.value.hint == "no AWS credentials found"
    assert world.warnings == ["no AWS credentials found"]


def test_failure_without_cache(world: World) -> None:
    world.fail = "access denied"
    with pytest.raises(CredentialsNotFoundError):
        world.get()
    assert world.warnings == ["access denied"]


@pytest.mark.parametrize(
    "url",
    ["index.docker.io", "https://index.docker.io/v1/", "ghcr.io", "http://" + HOST, HOST + ".evil.com", "x" * 5000],
)
def test_not_ecr_is_silent_not_found(world: World, url: str) -> None:
    with pytest.raises(CredentialsNotFoundError):
        world.get(url)
    assert world.calls == []
    assert world.warnings == []


def test_cache_disabled_fetches_every_time(tmp_path: Path) -> None:
    world = World(tmp_path, AWS_ECR_DISABLE_CACHE="1")
    world.get()
    world.get()
    assert len(world.calls) == 2
    assert not (tmp_path / "cache").exists()


def test_no_home_and_no_passwd_entry_means_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's arbitrary uid with no HOME: no cache directory can be named; get still works."""
    from docker_credential_ecr import settings

    monkeypatch.setattr(settings, "_passwd_home", lambda: None)
    world = World(tmp_path)
    del world.environ["HOME"], world.environ["AWS_ECR_CACHE_DIR"]
    assert Settings.from_environ(world.environ).cache_file is None
    assert world.get().secret == "pw1"
    assert world.get().secret == "pw2"
    assert world.warnings == []
    world.environ["HOME"] = "relative/home"  # a relative HOME counts as none, as in platformdirs
    assert Settings.from_environ(world.environ).cache_file is None


def test_unusable_cache_warns_once_and_still_answers(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("a file where the directory should be")
    world = World(tmp_path)
    helper = world.helper()
    assert helper.get(HOST).secret == "pw1"
    assert helper.get(HOST).secret == "pw2"
    assert len(world.warnings) == 1
    assert "not a directory" in world.warnings[0]


def test_principal_change_is_a_miss(tmp_path: Path) -> None:
    world = World(tmp_path, AWS_PROFILE="one")
    world.get()
    world.environ["AWS_PROFILE"] = "two"
    world.get()
    assert len(world.calls) == 2
    world.environ["AWS_PROFILE"] = "one"
    assert world.get().secret == "pw1"


def test_list_reports_served_hosts_for_current_principal(world: World) -> None:
    assert world.helper().list() == {}
    world.get(HOST)
    world.get(SAME_REGION)
    world.get("public.ecr.aws")
    assert world.helper().list() == {
        "https://" + HOST: "AWS",
        "https://" + SAME_REGION: "AWS",
        "https://public.ecr.aws": "AWS",
    }
    world.environ["AWS_PROFILE"] = "someone-else"
    assert world.helper().list() == {}
    world.environ.pop("AWS_PROFILE")
    world.now += 12 * HOUR
    assert world.helper().list() == {}
    assert len(world.calls) == 2


def test_store_and_erase(world: World, tmp_path: Path) -> None:
    with pytest.raises(NotImplementedByHelperError):
        world.helper().store(Credentials("h", "u", "s"))
    with pytest.raises(NotImplementedByHelperError):
        world.helper().erase("h")
    ignoring = World(tmp_path, AWS_ECR_IGNORE_CREDS_STORAGE="true")
    ignoring.helper().store(Credentials(HOST, "u", "s"))
    ignoring.helper().erase(HOST)
    assert not (tmp_path / "cache").exists()
