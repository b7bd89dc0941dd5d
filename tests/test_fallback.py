"""Living beside `docker login`: hosts that are not ECR pass through to the config's fallback helper.

The fallback is a small Python credential helper written into the test's directory and put on PATH;
it keeps credentials in a JSON file and logs every call (action, exact stdin, environment guard), so
the tests see what was passed through and what never was. Everything runs through the installed
console script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docker_credential_ecr.settings import APP_NAME
from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, PUBLIC_HOST, get_ok, helper_exe, run_helper

MIRROR = "mirror.example.com"
PREFIX = "docker-credential-ecr-login: "

FAKE_HELPER = """\
#!{python}
# A credential helper that keeps its credentials in a JSON file: docker-credential-<name> <action>.
import json, os, signal, sys, time

action = sys.argv[1]
data = sys.stdin.buffer.read()
with open(os.environ["FAKESTORE_LOG"], "a") as log:
    log.write(json.dumps({{"action": action, "stdin": data.decode("latin-1"),
                          "guard": os.environ.get("DOCKER_CREDENTIAL_ECR_PASSED_THROUGH")}}) + "\\n")
mode = os.environ.get("FAKESTORE_MODE", "")
if mode == "hang":
    time.sleep(120)
if mode == "crash":
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "chatty":
    sys.stderr.write("fakestore: " + action + " was here\\n")
path = os.environ["FAKESTORE_FILE"]
creds = json.load(open(path)) if os.path.exists(path) else {{}}
if action == "store":
    body = json.loads(data)
    creds[body["ServerURL"]] = {{"Username": body["Username"], "Secret": body["Secret"]}}
elif action == "get":
    url = data.decode().strip()
    if url not in creds:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": url, **creds[url]}}, indent=1))
elif action == "erase":
    creds.pop(data.decode().strip(), None)
elif action == "list":
    if mode == "listfail":
        print("the keyring is locked")
        sys.exit(1)
    print("not json" if mode == "listjunk" else json.dumps({{k: v["Username"] for k, v in creds.items()}}))
else:
    print("unknown action: " + action)
    sys.exit(1)
json.dump(creds, open(path, "w"))
"""


class Fallback:
    """The fake fallback helper `docker-credential-fakestore`: its store, its call log, its PATH entry."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "fallback-bin"
        self.bin.mkdir()
        self.store = tmp_path / "fakestore.json"
        self.log = tmp_path / "fakestore.log"
        script = self.bin / "docker-credential-fakestore"
        script.write_text(FAKE_HELPER.format(python=sys.executable))
        script.chmod(0o755)
        # A fallback that leads back to this helper (as a misconfigured credsStore chain would).
        loop = self.bin / "docker-credential-loop"
        loop.write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / "docker-credential-ecr-login"} "$@"\n')
        loop.chmod(0o755)

    def env(self, env: dict[str, str], **extra: str) -> dict[str, str]:
        return {
            **env,
            "PATH": f"{self.bin}{os.pathsep}{env['PATH']}",
            "FAKESTORE_FILE": str(self.store),
            "FAKESTORE_LOG": str(self.log),
            **extra,
        }

    def calls(self) -> list[dict[str, str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def seed(self, creds: dict[str, tuple[str, str]]) -> None:
        self.store.write_text(json.dumps({url: {"Username": u, "Secret": s} for url, (u, s) in creds.items()}))


@pytest.fixture
def fallback(tmp_path: Path) -> Fallback:
    return Fallback(tmp_path)


def configure(env: dict[str, str], home: Path, name: str = "fakestore", extra: str = "") -> dict[str, str]:
    path = home / ".config" / APP_NAME / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'fallback = "{name}"\n\n[aliases]\n"{MIRROR}" = "{ECR_HOST}"\n{extra}')
    return {**env, "XDG_CONFIG_HOME": str(home / ".config")}


def test_docker_login_round_trip_passes_through_unchanged(
    env: dict[str, str], home: Path, fallback: Fallback, fake: FakeAWS
) -> None:
    environ = fallback.env(configure(env, home))
    body = '{"ServerURL": "ghcr.io", "Username": "octocat", "Secret": "ghp_s3cret", "Extra": [1, 2]}  \n'
    stored = run_helper(["store"], environ, body)
    assert (stored.returncode, stored.stdout, stored.stderr) == (0, "", "")

    got = run_helper(["get"], environ, "ghcr.io\n")
    assert got.returncode == 0
    assert got.stderr == ""
    # The fallback's own output, byte for byte (its JSON is indented: nothing re-serialized it).
    assert (
        got.stdout
        == json.dumps({"ServerURL": "ghcr.io", "Username": "octocat", "Secret": "ghp_s3cret"}, indent=1) + "\n"
    )

    erased = run_helper(["erase"], environ, "ghcr.io")
    assert (erased.returncode, erased.stdout) == (0, "")
    gone = run_helper(["get"], environ, "ghcr.io")
    assert (gone.returncode, gone.stdout, gone.stderr) == (1, NOT_FOUND + "\n", "")

    calls = fallback.calls()
    assert [c["action"] for c in calls] == ["store", "get", "erase", "get"]
    assert [c["stdin"] for c in calls] == [body, "ghcr.io\n", "ghcr.io", "ghcr.io"]
    assert {c["guard"] for c in calls} == {"1"}
    assert fake.calls("*") == 0


def test_list_merges_and_ours_wins_for_ecr(env: dict[str, str], home: Path, fallback: Fallback, fake: FakeAWS) -> None:
    environ = fallback.env(configure(env, home))
    fallback.seed(
        {
            "ghcr.io": ("octocat", "ghp_x"),
            "https://index.docker.io/v1/": ("me", "dckr_x"),
            f"https://{ECR_HOST}": ("stale-user", "old"),  # an old `docker login` to ECR
            MIRROR: ("mirror-user", "old"),
        }
    )
    before = run_helper(["list"], environ, None)
    assert (before.returncode, before.stderr) == (0, "")
    assert json.loads(before.stdout) == {"ghcr.io": "octocat", "https://index.docker.io/v1/": "me"}
    get_ok(environ, ECR_HOST)
    get_ok(environ, MIRROR)
    after = run_helper(["list"], environ, None)
    assert json.loads(after.stdout) == {
        "ghcr.io": "octocat",
        "https://index.docker.io/v1/": "me",
        f"https://{ECR_HOST}": "AWS",
        f"https://{MIRROR}": "AWS",
    }
    assert [c["stdin"] for c in fallback.calls() if c["action"] == "list"] == ["unused", "unused"]


@pytest.mark.parametrize(
    "url",
    [
        ECR_HOST,
        f"https://{ECR_HOST}/v2/",
        f"http://{ECR_HOST}",
        f"{ECR_HOST.upper()}:443/repo",
        PUBLIC_HOST,
        MIRROR,
        f"https://{MIRROR}/v2/",
        f"http://{MIRROR}",
        "999999999999.dkr.ecr.us-east-1.amazonaws.com.cn",  # an impossible ECR host is still not passed on
        # Malformed spellings of ECR hosts (#13): a host under an ECR domain never leaves this helper.
        pytest.param(f"{ECR_HOST}?x", id="query"),
        pytest.param(f"AWS@{ECR_HOST}", id="user-info"),
        pytest.param(f"https://AWS:pw@{ECR_HOST}/v2/", id="user-info-and-password"),
        pytest.param(f"{ECR_HOST}:0", id="port-0"),
        pytest.param(f"{ECR_HOST}:99999", id="port-out-of-range"),
        pytest.param(f"https://{ECR_HOST}\\@registry.evil.example", id="backslash"),
        pytest.param(f"{ECR_HOST}#frag", id="fragment"),
        pytest.param(f"{ECR_HOST}.", id="trailing-dot"),
        pytest.param(ECR_HOST.replace(".dkr.", ".dkr%2e"), id="percent-encoded-dot"),
        pytest.param(ECR_HOST.replace("dkr.ecr", "\uff44kr\uff0eecr"), id="full-width"),
        pytest.param(f"{PUBLIC_HOST}/../x?y", id="public-with-query"),
        pytest.param(f"ftp://{ECR_HOST}", id="other-scheme"),
    ],
)
def test_ecr_hosts_and_aliases_are_never_passed_on(
    env: dict[str, str], home: Path, fallback: Fallback, fake: FakeAWS, url: str
) -> None:
    environ = fallback.env(configure(env, home))
    run_helper(["get"], environ, url)
    body = json.dumps({"ServerURL": url, "Username": "AWS", "Secret": "x"})
    stored = run_helper(["store"], environ, body)
    assert (stored.returncode, stored.stdout) == (1, "not implemented\n")
    erased = run_helper(["erase"], {**environ, "AWS_ECR_IGNORE_CREDS_STORAGE": "true"}, url)
    assert (erased.returncode, erased.stdout) == (0, "")
    assert fallback.calls() == []


def test_fallback_stderr_and_status_are_relayed(env: dict[str, str], home: Path, fallback: Fallback) -> None:
    environ = fallback.env(configure(env, home), FAKESTORE_MODE="chatty")
    proc = run_helper(["get"], environ, "quay.io")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, NOT_FOUND + "\n", "fakestore: get was here\n")


def test_no_fallback_configured_stays_silent(env: dict[str, str], fallback: Fallback) -> None:
    proc = run_helper(["get"], fallback.env(env), "ghcr.io")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, NOT_FOUND + "\n", "")
    stored = run_helper(["store"], fallback.env(env), '{"ServerURL":"ghcr.io","Username":"u","Secret":"s"}')
    assert (stored.returncode, stored.stdout) == (1, "not implemented\n")
    assert fallback.calls() == []


def test_missing_fallback(env: dict[str, str], home: Path, fallback: Fallback) -> None:
    environ = fallback.env(configure(env, home, "nonexistent"))
    line = "fallback helper docker-credential-nonexistent is not on PATH (fallback = 'nonexistent' in the config file)"
    got = run_helper(["get"], environ, "ghcr.io")
    assert (got.returncode, got.stdout, got.stderr) == (1, NOT_FOUND + "\n", PREFIX + line + "\n")
    stored = run_helper(["store"], environ, '{"ServerURL":"ghcr.io","Username":"u","Secret":"s"}')
    assert (stored.returncode, stored.stdout, stored.stderr) == (1, line + "\n", PREFIX + line + "\n")
    erased = run_helper(["erase"], environ, "ghcr.io")
    assert (erased.returncode, erased.stdout) == (1, line + "\n")
    listed = run_helper(["list"], environ, None)
    assert (listed.returncode, listed.stdout, listed.stderr) == (1, line + "\n", PREFIX + line + "\n")


def test_hanging_fallback_is_cut_off(env: dict[str, str], home: Path, fallback: Fallback) -> None:
    environ = fallback.env(configure(env, home), FAKESTORE_MODE="hang", AWS_ECR_TIMEOUT="1")
    started = time.monotonic()
    proc = run_helper(["get"], environ, "ghcr.io")
    assert time.monotonic() - started < 20
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr == PREFIX + "fallback helper docker-credential-fakestore get did not answer within 1 s\n"


def test_crashing_fallback(env: dict[str, str], home: Path, fallback: Fallback) -> None:
    environ = fallback.env(configure(env, home), FAKESTORE_MODE="crash")
    proc = run_helper(["store"], environ, '{"ServerURL":"ghcr.io","Username":"u","Secret":"s"}')
    line = "fallback helper docker-credential-fakestore store was killed by signal 9"
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, line + "\n", PREFIX + line + "\n")


@pytest.mark.parametrize(
    ("mode", "line"),
    [
        pytest.param("listfail", "fallback helper docker-credential-fakestore list failed: the keyring is locked"),
        pytest.param(
            "listjunk", "fallback helper docker-credential-fakestore list did not answer a JSON object of strings"
        ),
    ],
)
def test_failing_fallback_list(env: dict[str, str], home: Path, fallback: Fallback, mode: str, line: str) -> None:
    proc = run_helper(["list"], fallback.env(configure(env, home), FAKESTORE_MODE=mode), None)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, line + "\n", PREFIX + line + "\n")


def test_a_fallback_leading_back_here_does_not_loop(env: dict[str, str], home: Path, fallback: Fallback) -> None:
    environ = fallback.env(configure(env, home, "loop"))
    proc = run_helper(["get"], environ, "ghcr.io", timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, NOT_FOUND + "\n", "")
    assert fallback.calls() == []


# -- #13: the fallback is never found in the current directory, and never sees AWS secrets ------------
@pytest.mark.parametrize(
    "case",
    [("first", "."), ("first", "(empty)"), ("last", "(empty)"), ("first", "bin")],
    ids=["dot", "empty-first", "empty-last", "relative-name"],
)
def test_a_fallback_in_the_current_directory_is_not_run(
    env: dict[str, str], home: Path, fallback: Fallback, tmp_path: Path, case: tuple[str, str]
) -> None:
    """An empty, "." or relative PATH entry names the current directory: whoever can write it would run as us."""
    where, entry = case
    cwd = tmp_path / "cwd"
    planted = cwd / "bin" if entry == "bin" else cwd
    planted.mkdir(parents=True)
    (planted / "docker-credential-fakestore").write_bytes((fallback.bin / "docker-credential-fakestore").read_bytes())
    (planted / "docker-credential-fakestore").chmod(0o755)
    name = "" if entry == "(empty)" else entry
    path = f"{name}{os.pathsep}{env['PATH']}" if where == "first" else f"{env['PATH']}{os.pathsep}{name}"
    environ = {**fallback.env(configure(env, home)), "PATH": path}
    proc = subprocess.run(
        [helper_exe(), "get"], input=b"ghcr.io", capture_output=True, env=environ, cwd=cwd, check=False
    )
    assert (proc.returncode, proc.stdout.decode()) == (1, NOT_FOUND + "\n")
    assert proc.stderr.decode().splitlines() == [
        PREFIX + "fallback helper docker-credential-fakestore was found only through the relative PATH entry "
        f"{entry!r}: not run; install it in a directory named by an absolute PATH entry"
    ]
    assert fallback.calls() == []


def test_a_fallback_that_is_not_a_regular_executable_file_is_not_run(
    env: dict[str, str], home: Path, fallback: Fallback
) -> None:
    script = fallback.bin / "docker-credential-fakestore"
    script.chmod(0o644)  # not executable (root runs anything with an x bit: take them all away)
    proc = run_helper(["get"], fallback.env(configure(env, home)), "ghcr.io")
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert "is not on PATH" in proc.stderr
    script.unlink()
    script.mkdir()  # a directory of that name (executable bit and all) is not a program either
    proc = run_helper(["get"], fallback.env(configure(env, home)), "ghcr.io")
    assert "is not on PATH" in proc.stderr
    assert fallback.calls() == []


def test_the_fallback_never_sees_aws_secrets(env: dict[str, str], home: Path, fallback: Fallback) -> None:
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "secret-key-value",
        "AWS_SESSION_TOKEN": "session-token-value",
        "AWS_SECURITY_TOKEN": "security-token-value",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pod-token-value",
    }
    dump = fallback.bin.parent / "environment.json"
    spy = fallback.bin / "docker-credential-spy"
    spy.write_text(f"#!{sys.executable}\nimport json, os\njson.dump(dict(os.environ), open({str(dump)!r}, 'w'))\n")
    spy.chmod(0o755)
    environ = {**fallback.env(configure(env, home, "spy")), **secrets, "AWS_PROFILE": "kept"}
    run_helper(["get"], environ, "ghcr.io")
    seen = json.loads(dump.read_text())
    assert not set(secrets) & set(seen)
    assert not any(value in json.dumps(seen) for value in secrets.values())
    assert seen["AWS_PROFILE"] == "kept"  # the rest of the environment is passed as it was
    assert seen["DOCKER_CREDENTIAL_ECR_PASSED_THROUGH"] == "1"
