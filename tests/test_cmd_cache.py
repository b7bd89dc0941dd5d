"""`cache show|clear|path`: what the token cache holds, never the tokens themselves."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from docker_credential_ecr import registry
from docker_credential_ecr.commands import cache as command
from docker_credential_ecr.identity import identity_key
from docker_credential_ecr.store import Store, Token, token_key
from fakeecr import FakeAWS, access_key_for_role
from support import ECR_HOST, PUBLIC_HOST, WEST_HOST, get_ok, run_helper

PASSWORD = "never-shown-password-0123456789"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        status = command.main(list(args))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def cache_env(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AWS_ECR_CACHE_DIR", str(cache_dir))
    return cache_dir


def put(cache_dir: Path, host: str, *, issued: float, lifetime: float = 43200.0, principal: str | None = None) -> str:
    parsed = registry.parse(host)
    assert parsed is not None
    key = token_key(principal or identity_key(os.environ), parsed)
    entry = Token(username="AWS", password=PASSWORD, issued_at=issued, expires_at=issued + lifetime, hosts=(host,))
    Store(str(cache_dir)).put_token(key, entry, now=time.time())
    return key


# -- path -----------------------------------------------------------------------------------------
def test_path(cache_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "path") == (0, f"{cache_env / 'cache.json'}\n", "")
    assert not cache_env.exists()


def test_path_default_follows_xdg(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "path")[1] == f"{home / '.cache' / 'docker-credential-ecr' / 'cache.json'}\n"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg"))
    assert run(capsys, "path")[1] == f"{home / 'xdg' / 'docker-credential-ecr' / 'cache.json'}\n"


def test_path_when_disabled_or_unusable(
    cache_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ECR_DISABLE_CACHE", "1")
    status, out, err = run(capsys, "path")
    assert (status, out) == (0, f"{cache_env / 'cache.json'}\n")
    assert err == (
        "docker-credential-ecr-login cache: warning: the helper does not use this cache: AWS_ECR_DISABLE_CACHE is set\n"
    )
    monkeypatch.setenv("AWS_ECR_CACHE_DIR", "relative/dir")
    for action in ("path", "show", "clear"):
        status, out, err = run(capsys, action)
        assert (status, out) == (1, "")
        assert err.startswith("docker-credential-ecr-login cache: error: no cache directory: AWS_ECR_CACHE_DIR must")


# -- show -----------------------------------------------------------------------------------------
def test_show_without_a_file(cache_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "show") == (0, f"{cache_env / 'cache.json'}: no cache file yet\n", "")
    status, out, _ = run(capsys, "show", "--json")
    assert status == 0
    assert json.loads(out) == {
        "path": str(cache_env / "cache.json"),
        "enabled": True,
        "disabled_by": None,
        "exists": False,
        "error": None,
        "problem": None,
        "entries": [],
        "stored_credentials": {
            "path": str(cache_env / "credentials.json"),
            "exists": False,
            "error": None,
            "entries": [],
            "mfa_sessions": [],
        },
    }
    assert not cache_env.exists()


def test_show_lists_entries_with_their_status_and_no_password(
    cache_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    fresh = put(cache_env, ECR_HOST, issued=now - 600)
    stale = put(cache_env, WEST_HOST, issued=now - 30000, principal="0" * 32)
    expired = put(cache_env, PUBLIC_HOST, issued=now - 43190)  # expires in 10 s: too late to serve
    status, out, err = run(capsys, "show", "--json")
    assert (status, err) == (0, "")
    assert PASSWORD not in out
    doc = json.loads(out)
    entries = {e["key"]: e for e in doc["entries"]}
    assert set(entries) == {fresh, stale, expired}
    assert entries[fresh] | {"age_seconds": 0, "expires_in_seconds": 0} == {
        "key": fresh,
        "principal": identity_key(os.environ),
        "service": "ecr",
        "region": "us-east-1",
        "fips": False,
        "dualstack": False,
        "hosts": [ECR_HOST],
        "username": "AWS",
        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600)),
        "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600 + 43200)),
        "refresh_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600 + 21600)),
        "age_seconds": 0,
        "expires_in_seconds": 0,
        "status": "fresh",
        "current_environment": True,
    }
    assert 599 <= entries[fresh]["age_seconds"] <= 610
    assert entries[stale]["status"] == "stale"
    assert entries[stale]["current_environment"] is False
    assert (entries[expired]["service"], entries[expired]["status"]) == ("ecr-public", "expired")

    status, out, err = run(capsys, "show")
    assert (status, err) == (0, "")
    assert PASSWORD not in out
    assert out.startswith(f"{cache_env / 'cache.json'}: 3 entries\n")
    assert "\necr us-east-1: fresh\n" in out
    assert f"\n  principal  {identity_key(os.environ)}  (this environment)\n" in out
    assert f"\n  hosts      {ECR_HOST}\n" in out
    assert "(10 min ago)" in out
    assert "\necr us-west-2: stale\n" in out
    assert "\necr-public us-east-1: expired\n" in out


def test_show_fips_dualstack_entry(cache_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(cache_env, "123456789012.dkr-ecr-fips.us-east-1.on.aws", issued=time.time())
    assert "\necr us-east-1 (FIPS, dual-stack): fresh\n" in run(capsys, "show")[1]


def test_show_notes_a_disabled_cache(
    cache_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    put(cache_env, ECR_HOST, issued=time.time())
    monkeypatch.setenv("AWS_ECR_DISABLE_CACHE", "true")
    status, out, _ = run(capsys, "show")
    assert status == 0
    assert out.startswith(
        f"{cache_env / 'cache.json'}: 1 entry (not used by the helper: AWS_ECR_DISABLE_CACHE is set)\n"
    )
    assert json.loads(run(capsys, "show", "--json")[1])["disabled_by"] == "AWS_ECR_DISABLE_CACHE"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param("{not json", "the file is not valid JSON", id="junk"),
        pytest.param('{"a": 1}', "the file is not a docker-credential-ecr cache", id="foreign"),
        pytest.param(
            '{"schema": "docker-credential-ecr/token-cache", "version": 99, "entries": {}}',
            "the file has cache version 99, this helper reads 1",
            id="version",
        ),
        pytest.param(
            '{"schema": "docker-credential-ecr/token-cache", "version": 1, "entries": {"k": {"username": 1}}}',
            "1 malformed entry is ignored",
            id="bad-entry",
        ),
    ],
)
def test_a_corrupt_file_is_reported_and_cleared(
    cache_env: Path, capsys: pytest.CaptureFixture[str], content: str, problem: str
) -> None:
    cache_env.mkdir(mode=0o700)
    (cache_env / "cache.json").write_text(content)
    (cache_env / "cache.json").chmod(0o600)
    status, out, _ = run(capsys, "show")
    assert status == 0
    first, note = out.splitlines()[:2]
    assert first == f"{cache_env / 'cache.json'}: 0 entries"
    assert note.startswith(f"  note: {problem}")
    assert json.loads(run(capsys, "show", "--json")[1])["problem"].startswith(problem)
    assert run(capsys, "clear")[0] == 0
    assert json.loads((cache_env / "cache.json").read_text())["entries"] == {}
    assert json.loads(run(capsys, "show", "--json")[1])["problem"] is None


def test_an_unsafe_directory_is_an_error(cache_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put(cache_env, ECR_HOST, issued=time.time())
    cache_env.chmod(0o777)
    try:
        status, out, err = run(capsys, "show")
        assert (status, out) == (1, "")
        assert (
            err == f"docker-credential-ecr-login cache: error: cache directory {cache_env} is writable by other users\n"
        )
        status, out, _ = run(capsys, "show", "--json")
        assert status == 1
        assert json.loads(out)["error"] == f"cache directory {cache_env} is writable by other users"
        status, _, err = run(capsys, "clear")
        assert status == 1
        assert "is writable by other users" in err
    finally:
        cache_env.chmod(0o700)
    assert len(Store(str(cache_env)).tokens()) == 1  # clear refused to touch it


# -- clear ----------------------------------------------------------------------------------------
def test_clear(cache_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "clear") == (0, f"no cache file at {cache_env / 'cache.json'}: nothing to clear\n", "")
    assert not cache_env.exists()
    now = time.time()
    put(cache_env, ECR_HOST, issued=now)
    put(cache_env, WEST_HOST, issued=now)
    assert run(capsys, "clear") == (0, f"removed 2 entries from {cache_env / 'cache.json'}\n", "")
    assert Store(str(cache_env)).tokens() == {}
    assert stat.S_IMODE((cache_env / "cache.json").stat().st_mode) == 0o600
    assert run(capsys, "clear")[1] == f"removed 0 entries from {cache_env / 'cache.json'}\n"


# -- usage ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [[], ["bogus"], ["show", "--nope"], ["clear", "extra"]])
def test_usage_errors_exit_2(cache_env: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    status, out, err = run(capsys, *args)
    assert (status, out) == (2, "")
    assert err.splitlines()[-1].startswith("docker-credential-ecr-login cache")
    assert ": error: " in err.splitlines()[-1]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert "show,clear,path" in out
    status, out, _ = run(capsys, "show", "--help")
    assert status == 0
    assert "fresh = served without calling AWS" in out


# -- end to end, with tokens the helper fetched ---------------------------------------------------
def test_show_and_clear_after_real_gets(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    get_ok(env, ECR_HOST)
    get_ok(env, "123456789012.dkr.ecr.us-east-1.amazonaws.com:443/v2/")
    get_ok(env, PUBLIC_HOST)
    assert fake.calls() == 2
    shown = run_helper(["cache", "show"], env)
    as_json = run_helper(["cache", "show", "--json"], env)
    for proc in (shown, as_json):
        assert (proc.returncode, proc.stderr) == (0, "")
        for secret in [*fake.issued, env["AWS_SECRET_ACCESS_KEY"]]:
            assert secret not in proc.stdout
    entries = json.loads(as_json.stdout)["entries"]
    assert sorted((e["service"], e["status"], e["current_environment"], tuple(e["hosts"])) for e in entries) == [
        ("ecr", "fresh", True, (ECR_HOST,)),
        ("ecr-public", "fresh", True, (PUBLIC_HOST,)),
    ]
    cleared = run_helper(["cache", "clear"], env)
    assert (cleared.returncode, cleared.stdout) == (0, f"removed 2 entries from {cache_dir / 'cache.json'}\n")
    get_ok(env, ECR_HOST)
    assert fake.calls() == 3


def test_tokens_and_role_credentials_of_a_config_table(
    env: dict[str, str], fake: FakeAWS, home: Path, cache_dir: Path
) -> None:
    role = "arn:aws:iam::123456789012:role/ecr-pull"
    config = home / ".config" / "docker-credential-ecr" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[[registry]]\nmatch = "{WEST_HOST}"\nrole_arn = "{role}"\n')
    get_ok(env, WEST_HOST)
    get_ok(env, ECR_HOST)
    assert fake.calls("sts:AssumeRole") == 1
    shown = run_helper(["cache", "show", "--json"], env)
    text = run_helper(["cache", "show"], env)
    for proc in (shown, text):
        assert (proc.returncode, proc.stderr) == (0, "")
        for secret in [*fake.issued, *fake.issued_secrets, access_key_for_role(role)]:
            assert secret not in proc.stdout
    doc = json.loads(shown.stdout)
    tokens = {e["region"]: e for e in doc["entries"]}
    assert tokens["us-west-2"]["principal"] != tokens["us-east-1"]["principal"]  # the role is another principal
    assert tokens["us-west-2"]["current_environment"] is True
    assert tokens["us-east-1"]["current_environment"] is True
    roles = doc["stored_credentials"]
    assert roles["path"] == str(cache_dir / "credentials.json")
    assert [
        (r["principal"], r["kind"], r["partition"], r["status"], r["current_environment"]) for r in roles["entries"]
    ] == [(tokens["us-west-2"]["principal"], "sts", "aws", "fresh", True)]
    assert f"{cache_dir / 'credentials.json'}: 1 stored credential\n" in text.stdout

    cleared = run_helper(["cache", "clear"], env)
    assert (cleared.returncode, cleared.stderr) == (0, "")
    assert cleared.stdout == (
        f"removed 2 entries from {cache_dir / 'cache.json'}\n"
        f"removed 1 stored credential from {cache_dir / 'credentials.json'}\n"
    )
    get_ok(env, WEST_HOST)
    assert fake.calls("sts:AssumeRole") == 2
