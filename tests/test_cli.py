"""The installed console script, run as docker runs it: a subprocess with stdin, stdout and an exit code."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from docker_credential_ecr import __version__
from fakeecr import FakeAWS
from support import (
    ECR_HOST,
    NOT_FOUND,
    OTHER_ACCOUNT_HOST,
    PUBLIC_HOST,
    WEST_HOST,
    get_ok,
    helper_exe,
    run_helper,
    sealed_env,
)

HOUR = 3600.0


def cache_doc(cache_dir: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((cache_dir / "cache.json").read_text())
    return doc


def age_cache(cache_dir: Path, seconds: float) -> None:
    """Move every cached token ``seconds`` into the past (as if that much time had gone by)."""
    path = cache_dir / "cache.json"
    doc = json.loads(path.read_text())
    for entry in doc["entries"].values():
        entry["issued_at"] -= seconds
        entry["expires_at"] -= seconds
    path.write_text(json.dumps(doc))


# -- the protocol ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arg", ["version", "-v", "--version"])
def test_version(env: dict[str, str], arg: str) -> None:
    proc = run_helper([arg], env)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"docker-credential-ecr-login (docker-credential-ecr) {__version__}\n"


@pytest.mark.parametrize("arg", ["-h", "--help"])
def test_help(env: dict[str, str], arg: str) -> None:
    proc = run_helper([arg], env)
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: docker-credential-ecr-login <action>")
    for action in ("get", "list", "store", "erase", "version"):
        assert f"  {action} " in proc.stdout


def test_no_action_prints_usage_to_stderr(env: dict[str, str]) -> None:
    proc = run_helper([], env)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("Usage:")


@pytest.mark.parametrize("args", [["frobnicate"], ["get", "extra"], ["GET"]])
def test_unknown_action(env: dict[str, str], args: list[str]) -> None:
    proc = run_helper(args, env)
    assert proc.returncode == 1
    assert proc.stdout == f"docker-credential-ecr-login: unknown action: {args[0]}\n"


def test_get_prints_exact_fields(env: dict[str, str], fake: FakeAWS) -> None:
    proc = run_helper(["get"], env, ECR_HOST + "\n")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (
        proc.stdout
        == json.dumps({"ServerURL": ECR_HOST, "Username": "AWS", "Secret": fake.issued[0]}, separators=(",", ":"))
        + "\n"
    )


@pytest.mark.parametrize(
    "stdin",
    [
        pytest.param("", id="empty"),
        pytest.param(" \n\t\n", id="whitespace"),
        pytest.param(None, id="closed"),
    ],
)
def test_get_without_server_url(env: dict[str, str], stdin: str | None, fake: FakeAWS) -> None:
    proc = run_helper(["get"], env, stdin)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "no credentials server URL\n", "")
    assert fake.calls("*") == 0


@pytest.mark.parametrize(
    "stdin",
    [
        pytest.param(b"\x00\x01\xff\xfe\x80binary", id="binary"),
        pytest.param(b"\xc3\x28" + ECR_HOST.encode(), id="non-utf8"),
        pytest.param(b"a" * (2 << 20), id="2MiB"),
        pytest.param((b"https://index.docker.io/v1/\n"), id="docker-hub"),
        pytest.param(("http://" + ECR_HOST).encode(), id="plain-http"),
        pytest.param((ECR_HOST + ".evil.com").encode(), id="look-alike"),
        pytest.param((ECR_HOST + "\n" + ECR_HOST).encode(), id="two-lines"),
    ],
)
def test_get_not_ecr_is_silent_not_found(env: dict[str, str], stdin: bytes, fake: FakeAWS) -> None:
    proc = run_helper(["get"], env, stdin)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, NOT_FOUND + "\n", "")
    assert fake.calls("*") == 0


@pytest.mark.parametrize(
    "url",
    [ECR_HOST, "https://" + ECR_HOST, "https://" + ECR_HOST + "/v2/", ECR_HOST + ":443", ECR_HOST + "/team/app"],
)
def test_get_accepts_every_spelling(env: dict[str, str], fake: FakeAWS, url: str) -> None:
    assert get_ok(env, url)["ServerURL"] == url


@pytest.mark.parametrize(
    ("url", "region"),
    [
        # In the Go helper's own test table; a user in China who switches keeps getting a token.
        ("210987654321.dkr.ecr.cn-north-1.on.amazonwebservices.com.cn", "cn-north-1"),
        ("https://123456789012.dkr.ecr.us-west-2.on.aws/v2/", "us-west-2"),
        ("123456789012.dkr-ecr.eu-west-1.amazonaws.com", "eu-west-1"),
        ("123456789012.dkr-ecr-fips.us-gov-east-1.on.aws", "us-gov-east-1"),
    ],
)
def test_get_serves_every_separator_and_domain_the_go_helper_does(
    env: dict[str, str], fake: FakeAWS, url: str, region: str
) -> None:
    answer = get_ok(env, url)
    assert (answer["ServerURL"], answer["Username"], answer["Secret"]) == (url, "AWS", fake.issued[-1])
    (request,) = fake.requests
    assert (request.op, request.region) == ("ecr", region)


def test_store_and_erase_not_implemented(env: dict[str, str]) -> None:
    creds = json.dumps({"ServerURL": ECR_HOST, "Username": "AWS", "Secret": "x"})
    proc = run_helper(["store"], env, creds)
    assert (proc.returncode, proc.stdout) == (1, "not implemented\n")
    proc = run_helper(["erase"], env, ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, "not implemented\n")


def test_store_and_erase_ignored_when_told(env: dict[str, str], cache_dir: Path) -> None:
    env = {**env, "AWS_ECR_IGNORE_CREDS_STORAGE": "true"}
    creds = json.dumps({"ServerURL": ECR_HOST, "Username": "AWS", "Secret": "x"})
    assert run_helper(["store"], env, creds).returncode == 0
    assert run_helper(["erase"], env, ECR_HOST).returncode == 0
    assert not cache_dir.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"Username":"AWS","Secret":"x"}', "no credentials server URL"),
        ('{"ServerURL":"h","Secret":"x"}', "no credentials username"),
        ("garbage", "invalid credentials JSON on stdin"),
    ],
)
def test_store_validates_like_docker(env: dict[str, str], body: str, message: str) -> None:
    proc = run_helper(["store"], {**env, "AWS_ECR_IGNORE_CREDS_STORAGE": "true"}, body)
    assert (proc.returncode, proc.stdout) == (1, message + "\n")


def test_list_never_reads_stdin(env: dict[str, str]) -> None:
    """docker-py runs `list` with stdin left on the terminal: an open pipe nobody writes must not block."""
    get_ok(env, ECR_HOST)
    with subprocess.Popen(  # stdin stays open and empty: a helper that reads it would never exit
        [helper_exe(), "list"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        try:
            status = proc.wait(timeout=20)
        finally:
            proc.kill()
        assert proc.stdout is not None
        assert proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()
    assert status == 0
    assert json.loads(out) == {"https://" + ECR_HOST: "AWS"}
    assert err == b""


def test_list_answers_from_cache_without_network(env: dict[str, str], fake: FakeAWS) -> None:
    assert json.loads(run_helper(["list"], env).stdout) == {}
    for host in (ECR_HOST, OTHER_ACCOUNT_HOST, WEST_HOST, PUBLIC_HOST):
        get_ok(env, host)
    calls = fake.calls("*")
    fake.stop()  # no endpoint to talk to: list must not need one
    proc = run_helper(["list"], env, None)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == {
        f"https://{h}": "AWS" for h in (ECR_HOST, OTHER_ACCOUNT_HOST, WEST_HOST, PUBLIC_HOST)
    }
    assert fake.calls("*") == calls
    # Another principal sees none of them.
    assert json.loads(run_helper(["list"], {**env, "AWS_ACCESS_KEY_ID": "AKIAOTHER"}).stdout) == {}


# -- the cache --------------------------------------------------------------------------------------


def test_hit_makes_no_call(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    first = get_ok(env)
    assert fake.calls() == 1
    for _ in range(3):
        assert get_ok(env) == first
    assert get_ok(env, OTHER_ACCOUNT_HOST)["Secret"] == first["Secret"]  # one token per region
    assert fake.calls() == 1
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache_dir / "cache.json").stat().st_mode) == 0o600


def test_regions_and_public_get_their_own_tokens(env: dict[str, str], fake: FakeAWS) -> None:
    secrets = {get_ok(env, h)["Secret"] for h in (ECR_HOST, WEST_HOST, PUBLIC_HOST)}
    assert len(secrets) == 3
    assert fake.calls("ecr") == 2
    assert fake.calls("ecr-public") == 1
    assert sorted(r.region for r in fake.requests if r.op == "ecr") == ["us-east-1", "us-west-2"]


def test_half_life_refresh(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    first = get_ok(env)
    age_cache(cache_dir, 6 * HOUR - 60)
    assert get_ok(env) == first
    age_cache(cache_dir, 120)
    second = get_ok(env)
    assert second["Secret"] != first["Secret"]
    assert second["Secret"] == fake.issued[-1]
    assert fake.calls() == 2


def test_stale_fallback_says_so_on_stderr(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    first = get_ok(env)
    age_cache(cache_dir, 8 * HOUR)
    fake.add_fault("ecr", "access-denied", times=None)
    proc = run_helper(["get"], env, ECR_HOST)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["Secret"] == first["Secret"]
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("docker-credential-ecr-login: access denied: ")
    assert "using the cached token, which expires in 23" in proc.stderr  # 4 h left, give or take a minute


def test_expired_token_is_never_served(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    get_ok(env)
    age_cache(cache_dir, 12 * HOUR)
    fake.add_fault("ecr", "access-denied", times=None)
    proc = run_helper(["get"], env, ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr.startswith("docker-credential-ecr-login: access denied: ")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"schema": "docker-credential-ecr/token-cache", "version": 1, "ent', id="truncated"),
        pytest.param(b'{"version":"1.0","registries":{}}', id="go-format"),
        pytest.param(b'{"schema": "docker-credential-ecr/token-cache", "version": 2, "entries": {}}', id="v2"),
        pytest.param(b'{"schema": "docker-credential-ecr/token-cache", "version": 1, "entries": {"k": 5}}', id="types"),
        pytest.param(os.urandom(4096), id="binary"),
    ],
)
def test_corrupt_cache_is_replaced(env: dict[str, str], fake: FakeAWS, cache_dir: Path, content: bytes) -> None:
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "cache.json").write_bytes(content)
    (cache_dir / "cache.json").chmod(0o600)
    get_ok(env)
    doc = cache_doc(cache_dir)
    assert doc["schema"] == "docker-credential-ecr/token-cache"
    get_ok(env)
    assert fake.calls() == 1


def test_cache_disabled(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    env = {**env, "AWS_ECR_DISABLE_CACHE": "1"}
    get_ok(env)
    get_ok(env)
    assert fake.calls() == 2
    assert not cache_dir.exists()


def test_default_cache_dir_is_xdg(env: dict[str, str], fake: FakeAWS, home: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in env.items() if k != "AWS_ECR_CACHE_DIR"}
    get_ok(env)
    assert (home / ".cache" / "docker-credential-ecr" / "cache.json").is_file()
    get_ok({**env, "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert (tmp_path / "xdg" / "docker-credential-ecr" / "cache.json").is_file()


@pytest.mark.parametrize("problem", ["a-file", "world-writable", "symlink"])
def test_unusable_cache_dir_still_answers(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path, tmp_path: Path, problem: str
) -> None:
    if problem == "a-file":
        cache_dir.write_text("not a directory")
    elif problem == "world-writable":
        cache_dir.mkdir()
        cache_dir.chmod(0o777)
    elif problem == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        cache_dir.symlink_to(tmp_path / "elsewhere")
    proc = run_helper(["get"], env, ECR_HOST)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["Secret"] == fake.issued[-1]
    assert proc.stderr.count("\n") == 1
    assert "not using the token cache" in proc.stderr
    if problem == "symlink":
        assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_cache_dir_of_another_user_is_not_used(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    cache_dir.mkdir(mode=0o700)
    os.chown(cache_dir, 65534, 65534)
    proc = run_helper(["get"], env, ECR_HOST)
    assert proc.returncode == 0
    assert "belongs to another user" in proc.stderr
    assert list(cache_dir.iterdir()) == []


# -- concurrency ------------------------------------------------------------------------------------


def test_32_concurrent_cold_gets_make_one_call(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    fake.configure(latency=0.5)  # every process is started well before the first answer
    procs = [
        subprocess.Popen(
            [helper_exe(), "get"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(32)
    ]
    results = [p.communicate(ECR_HOST.encode(), timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 32
    assert all(err == b"" for _, err in results)
    secrets = {json.loads(out)["Secret"] for out, _ in results}
    assert secrets == {fake.issued[0]}
    assert fake.calls() == 1
    assert cache_doc(cache_dir)["version"] == 1


# -- secrets ----------------------------------------------------------------------------------------


def test_no_secret_outside_the_cache_file(env: dict[str, str], fake: FakeAWS, cache_dir: Path, tmp_path: Path) -> None:
    outputs = []
    get_ok(env)
    fake.add_fault("ecr", "access-denied")
    age_cache(cache_dir, 8 * HOUR)
    outputs.append(run_helper(["get"], env, ECR_HOST).stderr)
    outputs.append(run_helper(["get"], env, WEST_HOST).stderr)
    outputs.append(run_helper(["list"], env).stdout)
    secrets = [*fake.issued, env["AWS_SECRET_ACCESS_KEY"]]
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != cache_dir / "cache.json":
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
    assert not any(s in out for s in secrets for out in outputs)
    assert env["AWS_SECRET_ACCESS_KEY"].encode() not in (cache_dir / "cache.json").read_bytes()


def test_deadline_bounds_a_silent_endpoint(env: dict[str, str], fake: FakeAWS) -> None:
    fake.add_fault("ecr", "hang", times=None)
    started = time.monotonic()
    proc = run_helper(["get"], {**env, "AWS_ECR_TIMEOUT": "2"}, ECR_HOST)
    elapsed = time.monotonic() - started
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert elapsed < 10
    assert proc.stderr.count("\n") == 1
    assert "no token in time" in proc.stderr


def test_python_dash_m(env: dict[str, str], fake: FakeAWS, home: Path) -> None:
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "docker_credential_ecr", "get"],
        input=ECR_HOST.encode(),
        capture_output=True,
        env=sealed_env(home, env),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["Secret"] == fake.issued[-1]
