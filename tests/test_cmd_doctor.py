"""`doctor`: what the helper sees for a registry, through the console script against the fake AWS."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, PUBLIC_HOST, WEST_HOST, bin_dir, get_ok, run_helper

SESSION_TOKEN = "session-token-that-must-never-be-printed"


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_helper(["doctor", *args], env)


def doctor_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, dict[str, object]]]:
    proc = doctor(env, *args, "--json")
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)
    assert doc["ok"] is (proc.returncode == 0)
    sections: dict[str, dict[str, object]] = doc["sections"]
    return proc.returncode, sections


def assert_no_secret(fake: FakeAWS, env: dict[str, str], *procs: subprocess.CompletedProcess[str]) -> None:
    secrets = [*fake.issued, *fake.issued_secrets, env["AWS_SECRET_ACCESS_KEY"], SESSION_TOKEN]
    for proc in procs:
        for secret in secrets:
            assert secret not in proc.stdout
            assert secret not in proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The registry check (GET /v2/ with the cached token) must not leave loopback: every doctor here goes
# through a proxy on a closed loopback port, so the check ends in "could not ask" (a warning).
DEAD_PROXY = f"http://127.0.0.1:{free_port()}"


@pytest.fixture(autouse=True)
def _no_registry_beyond_loopback(env: dict[str, str]) -> None:
    env["HTTPS_PROXY"] = env["https_proxy"] = DEAD_PROXY


def statuses(sections: dict[str, dict[str, object]]) -> dict[str, object]:
    return {name: section["status"] for name, section in sections.items()}


# -- it works -------------------------------------------------------------------------------------
def test_success_fetches_but_does_not_write_the_cache(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    env["AWS_SESSION_TOKEN"] = SESSION_TOKEN
    status, sections = doctor_json(env, f"https://{ECR_HOST}/v2/")
    assert status == 0
    assert statuses(sections) == {
        "registry": "ok",
        "environment": "ok",
        "docker": "warning",  # ~/.docker/config.json does not route the host here yet
        "credentials": "ok",
        "cache": "ok",
        "fetch": "ok",
        "registry_auth": "skipped",
    }
    assert sections["registry_auth"]["skipped"] == "no cached token for this principal and region"
    registry = sections["registry"]
    assert {k: registry[k] for k in ("host", "service", "account", "region", "partition", "fips", "dualstack")} == {
        "host": ECR_HOST,
        "service": "ecr",
        "account": "123456789012",
        "region": "us-east-1",
        "partition": "aws",
        "fips": False,
        "dualstack": False,
    }
    fetch = sections["fetch"]
    assert fetch["ok"] is True
    assert isinstance(fetch["elapsed_ms"], int)
    assert fetch["written_to_cache"] is False
    assert 43000 < float(fetch["expires_in_seconds"]) <= 43200  # type: ignore[arg-type]
    assert fake.calls("ecr") == 1
    assert not (cache_dir / "cache.json").exists()  # doctor changes nothing

    credentials = sections["credentials"]
    assert credentials["source"] == "environment access key AKIA…0001"
    variables = credentials["variables"]
    assert isinstance(variables, dict)
    assert variables["AWS_SECRET_ACCESS_KEY"] == "(set)"
    assert variables["AWS_SESSION_TOKEN"] == "(set)"
    assert variables["AWS_ACCESS_KEY_ID"] == "AKIA…0001"

    text = doctor(env, ECR_HOST)
    assert (text.returncode, text.stderr) == (0, "")
    assert (
        text.stdout.splitlines()[0]
        == f"docker-credential-ecr-login doctor (docker-credential-ecr {_version()}): {ECR_HOST}"
    )
    assert "\nLive token fetch: ok\n" in text.stdout
    assert text.stdout.endswith("Result: ok, 1 warning(s)\n")
    assert_no_secret(fake, env, text)
    assert_no_secret(fake, env, doctor(env, ECR_HOST, "--json"))


def _version() -> str:
    from docker_credential_ecr import __version__

    return __version__


def test_the_cached_entry_is_described_without_its_token(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    get_ok(env, ECR_HOST)
    before = (cache_dir / "cache.json").read_bytes()
    status, sections = doctor_json(env, ECR_HOST)
    assert status == 0
    cache = sections["cache"]
    entry = cache["entry"]
    assert isinstance(entry, dict)
    assert (entry["status"], entry["hosts"], entry["service"], entry["region"]) == (
        "fresh",
        [ECR_HOST],
        "ecr",
        "us-east-1",
    )
    assert cache["key"] == entry["key"]
    assert str(cache["key"]).startswith(str(sections["credentials"]["principal"]) + "/ecr/us-east-1/")
    assert cache["next_get"] == "answers from the cache, no network"
    assert (cache_dir / "cache.json").read_bytes() == before
    text = doctor(env, ECR_HOST)
    assert "\n  next get:     answers from the cache, no network\n" in text.stdout
    assert_no_secret(fake, env, text)


def test_no_fetch_makes_no_call(env: dict[str, str], fake: FakeAWS) -> None:
    status, sections = doctor_json(env, PUBLIC_HOST, "--no-fetch")
    assert status == 0
    assert sections["fetch"] == {"status": "skipped", "skipped": "--no-fetch", "problems": []}
    assert sections["registry"]["service"] == "ecr-public"
    assert fake.calls("*") == 0


def test_without_a_registry(env: dict[str, str], fake: FakeAWS, home: Path) -> None:
    assert run_helper(["configure", ECR_HOST, WEST_HOST], env).returncode == 0
    status, sections = doctor_json(env)
    assert status == 0
    assert list(sections) == ["environment", "docker", "credentials", "cache"]
    assert sections["docker"]["hosts_using_this_helper"] == sorted([ECR_HOST, WEST_HOST])
    assert fake.calls("*") == 0


# -- it does not work, and says why ---------------------------------------------------------------
def test_access_denied_is_the_line_get_prints(env: dict[str, str], fake: FakeAWS) -> None:
    fake.add_fault("ecr", "access-denied", times=None)
    status, sections = doctor_json(env, ECR_HOST)
    assert status == 1
    fetch = sections["fetch"]
    assert fetch["status"] == "failed"
    assert fetch["ok"] is False
    error = fetch["error"]
    assert isinstance(error, str)
    assert error.startswith("access denied: environment access key AKIA…0001 may not call ecr:GetAuthorizationToken")
    assert fetch["problems"] == [{"level": "fail", "message": error}]

    got = run_helper(["get"], env, ECR_HOST)
    assert (got.returncode, got.stdout.strip()) == (1, NOT_FOUND)
    assert got.stderr == f"docker-credential-ecr-login: {error}\n"  # the very line `get` shows the user

    text = doctor(env, ECR_HOST)
    assert text.returncode == 1
    assert f"\n  FAILED: {error}\n" in text.stdout
    assert text.stdout.endswith("Result: FAILED (Live token fetch), 1 warning(s)\n")
    assert_no_secret(fake, env, text)


def test_a_failed_fetch_mentions_the_cached_token_that_still_works(env: dict[str, str], fake: FakeAWS) -> None:
    get_ok(env, ECR_HOST)
    fake.add_fault("ecr", "expired-token", times=None)
    status, sections = doctor_json(env, ECR_HOST)
    assert status == 1
    problems = sections["fetch"]["problems"]
    assert isinstance(problems, list)
    assert "the cached token still works until " in problems[0]["message"]


def test_unreachable_endpoint(env: dict[str, str], fake: FakeAWS) -> None:
    env["AWS_ENDPOINT_URL_ECR"] = f"http://127.0.0.1:{free_port()}"
    env["AWS_ECR_TIMEOUT"] = "20"
    status, sections = doctor_json(env, ECR_HOST)
    assert status == 1
    error = str(sections["fetch"]["error"])
    assert error.startswith("cannot reach the ECR (us-east-1) endpoint (Could not connect to the endpoint URL")
    assert error.endswith("check the network, proxy and region")


def test_a_silent_endpoint_is_cut_off_by_the_timeout(env: dict[str, str], fake: FakeAWS) -> None:
    fake.add_fault("ecr", "hang", times=None)
    env["AWS_ECR_TIMEOUT"] = "2"
    started = time.monotonic()
    status, sections = doctor_json(env, ECR_HOST)
    assert time.monotonic() - started < 15
    assert status == 1
    fetch = sections["fetch"]
    assert "ECR (us-east-1): no token in time (gave up after 2 s; AWS_ECR_TIMEOUT)" in str(fetch["error"])
    assert 1900 <= int(fetch["elapsed_ms"]) < 10000  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("server_url", "message"),
    [
        pytest.param("registry.example.com", "not an ECR or ECR Public registry host", id="other-registry"),
        pytest.param(f"http://{ECR_HOST}", "plain http:// never gets a token", id="plain-http"),
        pytest.param("123456789012.dkr.ecr.cn-north-1.amazonaws.com", "not an ECR", id="look-alike"),
    ],
)
def test_not_an_ecr_host(env: dict[str, str], fake: FakeAWS, server_url: str, message: str) -> None:
    status, sections = doctor_json(env, server_url)
    assert status == 1
    registry = sections["registry"]
    assert (registry["status"], registry["recognized"]) == ("failed", False)
    problems = registry["problems"]
    assert isinstance(problems, list)
    assert message in problems[0]["message"]
    assert sections["fetch"]["skipped"] == "not an ECR registry"
    assert fake.calls("*") == 0


def test_a_corrupt_cache_is_a_warning_and_stays_as_it_is(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "cache.json").write_text("{ this is not json")
    (cache_dir / "cache.json").chmod(0o600)
    status, sections = doctor_json(env, ECR_HOST)
    assert status == 0
    cache = sections["cache"]
    assert cache["status"] == "warning"
    assert "the file is not valid JSON" in str(cache["problem"])
    assert cache["entry"] is None
    assert (cache_dir / "cache.json").read_text() == "{ this is not json"


def test_an_unsafe_cache_directory_is_a_warning(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    cache_dir.mkdir()
    cache_dir.chmod(0o777)
    status, sections = doctor_json(env, ECR_HOST, "--no-fetch")
    assert status == 0
    cache = sections["cache"]
    assert cache["error"] == f"cache directory {cache_dir} is writable by other users"
    problems = cache["problems"]
    assert isinstance(problems, list)
    assert problems[0]["message"].endswith("every get calls AWS")


def test_a_missing_profile_fails_even_without_fetching(env: dict[str, str], fake: FakeAWS) -> None:
    env["AWS_PROFILE"] = "missing"
    status, sections = doctor_json(env, ECR_HOST, "--no-fetch")
    assert status == 1
    assert sections["credentials"]["status"] == "failed"
    problems = sections["credentials"]["problems"]
    assert isinstance(problems, list)
    assert problems[0]["message"].startswith("profile 'missing' is in neither ")


def test_a_profile_from_the_aws_config(env: dict[str, str], fake: FakeAWS, home: Path) -> None:
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("[profile team]\nregion = eu-west-1\n")
    (home / ".aws" / "credentials").write_text(
        f"[team]\naws_access_key_id = AKIAFAKEFAKEFAKE0002\naws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    env["AWS_PROFILE"] = "team"
    proc = doctor(env, ECR_HOST, "--json")
    assert proc.returncode == 0, proc.stdout
    credentials = json.loads(proc.stdout)["sections"]["credentials"]
    assert (credentials["source"], credentials["profile"], credentials["profile_found_in"]) == (
        "profile 'team'",
        "team",
        ["config", "credentials"],
    )
    assert "fakeSecretAccessKey" not in proc.stdout


def test_endpoint_user_info_is_redacted(env: dict[str, str], fake: FakeAWS) -> None:
    env["HTTPS_PROXY"] = "http://user:proxy-password@127.0.0.1:3128"
    proc = doctor(env, "--no-fetch")
    assert "proxy-password" not in proc.stdout
    assert "HTTPS_PROXY:" in proc.stdout
    assert "http://***@127.0.0.1:3128" in proc.stdout


# -- the docker section ---------------------------------------------------------------------------
def test_docker_routing(env: dict[str, str], fake: FakeAWS, home: Path) -> None:
    _, sections = doctor_json(env, ECR_HOST, "--no-fetch")
    docker = sections["docker"]
    assert (docker["present"], docker["helper_for_host"], docker["configured_by"]) == (False, None, None)
    problems = docker["problems"]
    assert isinstance(problems, list)
    assert problems[0]["message"].endswith(f"run `docker-credential-ecr-login configure {ECR_HOST}`")

    config = home / ".docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"credsStore": "desktop"}))
    docker = doctor_json(env, ECR_HOST, "--no-fetch")[1]["docker"]
    assert (docker["helper_for_host"], docker["configured_by"], docker["status"]) == (
        "desktop",
        "credsStore",
        "warning",
    )

    assert run_helper(["configure", ECR_HOST], env).returncode == 0
    docker = doctor_json(env, ECR_HOST, "--no-fetch")[1]["docker"]
    assert (docker["helper_for_host"], docker["configured_by"], docker["status"]) == (
        "ecr-login",
        "credHelpers",
        "ok",
    )
    assert docker["executable_on_path"] == str(bin_dir() / "docker-credential-ecr-login")

    config.write_text("{oops")
    docker = doctor_json(env, ECR_HOST, "--no-fetch")[1]["docker"]
    assert docker["status"] == "warning"


def test_not_on_path(env: dict[str, str], fake: FakeAWS, tmp_path: Path) -> None:
    env["PATH"] = str(tmp_path / "nothing-here")
    docker = doctor_json(env, ECR_HOST, "--no-fetch")[1]["docker"]
    assert docker["executable_on_path"] is None
    problems = docker["problems"]
    assert isinstance(problems, list)
    assert problems[0]["message"] == "docker-credential-ecr-login is not on PATH: docker cannot run it"


def test_another_helper_first_on_path(env: dict[str, str], fake: FakeAWS, tmp_path: Path) -> None:
    """The Go helper of the same name, earlier on PATH, is what docker would run."""
    other = tmp_path / "bin" / "docker-credential-ecr-login"
    other.parent.mkdir()
    other.write_text("#!/bin/sh\nexit 1\n")
    other.chmod(0o755)
    env["PATH"] = f"{other.parent}:{bin_dir()}"
    docker = doctor_json(env, ECR_HOST, "--no-fetch")[1]["docker"]
    assert docker["executable_on_path"] == str(other)
    problems = docker["problems"]
    assert isinstance(problems, list)
    assert f"docker runs {other} (first on PATH), not this {bin_dir() / 'docker-credential-ecr-login'}" in [
        p["message"] for p in problems
    ]


# -- usage ----------------------------------------------------------------------------------------
def test_usage(env: dict[str, str]) -> None:
    helped = doctor(env, "--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: docker-credential-ecr-login doctor [-h] [--json] [--no-fetch]")
    assert "--no-fetch" in helped.stdout
    bad = doctor(env, ECR_HOST, PUBLIC_HOST)
    assert (bad.returncode, bad.stdout) == (2, "")
    assert "docker-credential-ecr-login doctor: error: unrecognized arguments: public.ecr.aws" in bad.stderr


# -- the helper's config file ---------------------------------------------------------------------
def write_config(home: Path, text: str) -> Path:
    path = home / ".config" / "docker-credential-ecr" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_an_alias_and_a_registry_table_with_a_profile(
    env: dict[str, str], fake: FakeAWS, home: Path, cache_dir: Path
) -> None:
    config = write_config(
        home,
        f'[aliases]\n"mirror.example.com" = "{WEST_HOST}"\n\n[[registry]]\nmatch = "123456789012"\nprofile = "team"\n',
    )
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        f"[team]\naws_access_key_id = AKIAFAKEFAKEFAKE0002\naws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    status, sections = doctor_json(env, "https://mirror.example.com/v2/")
    assert status == 0, sections
    registry = sections["registry"]
    assert (registry["host"], registry["alias"], registry["region"]) == (WEST_HOST, "mirror.example.com", "us-west-2")
    assert registry["config_table"] == {"match": "123456789012", "line": 4, "profile": "team"}
    environment = sections["environment"]
    assert (environment["config_file"], environment["config_present"]) == (str(config), True)
    assert environment["config_aliases"] == {"mirror.example.com": WEST_HOST}
    credentials = sections["credentials"]
    assert (credentials["profile"], credentials["profile_from"], credentials["source"]) == (
        "team",
        "config file",
        "profile 'team'",
    )
    assert sections["docker"]["problems"] == [
        {
            "level": "warn",
            "message": "docker does not ask this helper for mirror.example.com (no credHelpers entry, no credsStore): "
            "run `docker-credential-ecr-login configure mirror.example.com`",
        }
    ]
    assert sections["fetch"]["ok"] is True
    # The token was fetched with the profile's key, not the environment's.
    assert [r.access_key_id for r in fake.requests if r.op == "ecr"] == ["AKIAFAKEFAKEFAKE0002"]
    assert not cache_dir.exists()  # neither a token nor the parsed config copy was written


def test_a_role_to_assume(env: dict[str, str], fake: FakeAWS, home: Path, cache_dir: Path) -> None:
    role = "arn:aws:iam::123456789012:role/ecr-pull"
    write_config(home, f'[[registry]]\nmatch = "{ECR_HOST}"\nrole_arn = "{role}"\n')
    proc = doctor(env, ECR_HOST, "--json")
    assert proc.returncode == 0, proc.stdout
    sections = json.loads(proc.stdout)["sections"]
    assert sections["credentials"]["assumes_role"] == role
    assert sections["registry"]["config_table"]["sts_region"] == "us-east-1"
    assert fake.calls("sts:AssumeRole") == 1
    assert sections["fetch"]["ok"] is True
    assert_no_secret(fake, env, proc)
    assert not cache_dir.exists()  # the role's credentials are not kept either


def test_an_invalid_config_fails_and_skips_the_fetch(env: dict[str, str], fake: FakeAWS, home: Path) -> None:
    config = write_config(home, '[[registry]]\nmatch = "123456789012"\nprofil = "typo"\n')
    status, sections = doctor_json(env, ECR_HOST)
    assert status == 1
    environment = sections["environment"]
    assert environment["status"] == "failed"
    assert str(environment["config_error"]).startswith(f"{config}:3")
    assert sections["registry"]["status"] == "ok"  # the host itself is still explained
    assert sections["fetch"]["skipped"] == "the config file is invalid"
    assert fake.calls("*") == 0


def test_a_host_for_the_fallback_helper_is_a_warning(env: dict[str, str], fake: FakeAWS, home: Path) -> None:
    write_config(home, 'fallback = "desktop"\n')
    status, sections = doctor_json(env, "https://index.docker.io/v1/")
    assert status == 0
    registry = sections["registry"]
    assert (registry["status"], registry["handed_to"]) == ("warning", "docker-credential-desktop")
    assert sections["fetch"]["skipped"] == "not an ECR registry"


# -- the cached token at the registry (accepted / rejected: tests/e2e/test_daemons.py, real registry) ---
def test_the_cached_token_is_tried_at_the_registry_and_no_answer_is_a_warning(
    env: dict[str, str], fake: FakeAWS
) -> None:
    get_ok(env, ECR_HOST)
    status, sections = doctor_json(env, f"https://{ECR_HOST}/v2/")
    assert status == 0
    check = sections["registry_auth"]
    assert check["status"] == "warning"
    assert check["url"] == f"https://{ECR_HOST}/v2/"
    problems = check["problems"]
    assert isinstance(problems, list)
    assert len(problems) == 1
    assert str(problems[0]["message"]).startswith(f"could not ask https://{ECR_HOST}/v2/ about the cached token: ")
    text = doctor(env, ECR_HOST)
    assert "\nCached token at the registry: WARNING\n" in text.stdout
    assert_no_secret(fake, env, text, doctor(env, ECR_HOST, "--json"))


def test_no_fetch_does_not_ask_the_registry_either(env: dict[str, str], fake: FakeAWS) -> None:
    get_ok(env, ECR_HOST)
    status, sections = doctor_json(env, ECR_HOST, "--no-fetch")
    assert status == 0
    assert sections["registry_auth"] == {"status": "skipped", "skipped": "--no-fetch", "problems": []}
