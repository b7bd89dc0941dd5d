"""MFA users without a terminal: ``login`` on a (pseudo-)terminal once, then `get` from anywhere.

The installed helper is driven through a real pseudo-terminal (:mod:`pty`) for ``login``, and as
docker runs it (stdin a pipe, no terminal) for ``get``; STS is the fake, which refuses the role
without the right MFA device and code.
"""

from __future__ import annotations

import json
import os
import pty
import select
import stat
import subprocess
from pathlib import Path

import pytest

import fakeecr
from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, get_ok, helper_exe, run_helper

PROGRAM = "docker-credential-ecr-login"
DEV_ROLE = "arn:aws:iam::111122223333:role/mfa-dev"
DEPLOY_ROLE = "arn:aws:iam::111122223333:role/deploy"
SERIAL = "arn:aws:iam::123456789012:mfa/alice"
CODE = "987123"
NEEDS_LOGIN = f"{PROGRAM}: profile 'dev' needs an MFA code: run `{PROGRAM} login --profile dev`\n"


@pytest.fixture
def mfa_env(env: dict[str, str], home: Path, fake: FakeAWS) -> dict[str, str]:
    aws = home / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        f"[base]\naws_access_key_id = {fakeecr.DEFAULT_ACCESS_KEY_ID}\n"
        f"aws_secret_access_key = {fakeecr.DEFAULT_SECRET_ACCESS_KEY}\n"
    )
    (aws / "config").write_text(
        f"[profile dev]\nrole_arn = {DEV_ROLE}\nsource_profile = base\nmfa_serial = {SERIAL}\nregion = us-east-1\n"
        f"[profile chained]\nrole_arn = {DEPLOY_ROLE}\nsource_profile = dev\n"
    )
    fake.require_mfa(DEV_ROLE, SERIAL, CODE, max_session_duration=43200)
    base = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    return {**base, "AWS_PROFILE": "dev"}


def login_in_pty(args: list[str], env: dict[str, str], code: str | None) -> tuple[int, str]:
    """Run ``login`` on a pseudo-terminal, answer its prompt with ``code``; (exit status, all it wrote)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [helper_exe(), "login", *args], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    output, answered = b"", False
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                raise AssertionError(f"login wrote nothing for 30 s: {output!r}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if code is not None and not answered and b"MFA code for" in output:
                os.write(master, code.encode() + b"\n")
                answered = True
        status = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return status, output.decode("utf-8", "replace")


def assume_calls(fake: FakeAWS) -> list[fakeecr.Request]:
    return [r for r in fake.requests if r.op == "sts:AssumeRole"]


def test_get_without_terminal_or_session_says_login(fake: FakeAWS, mfa_env: dict[str, str]) -> None:
    for stdin in (ECR_HOST, ECR_HOST + "\n"):
        proc = run_helper(["get"], mfa_env, stdin)
        assert proc.stdout == NOT_FOUND + "\n"
        assert proc.returncode == 1
        assert proc.stderr == NEEDS_LOGIN  # no GetPassWarning, no prompt, no EOFError: exactly this line
    assert fake.calls("*") == 0


def test_login_then_get_without_terminal(fake: FakeAWS, mfa_env: dict[str, str], cache_dir: Path) -> None:
    status, output = login_in_pty(["--profile", "dev", "--duration", "7200"], mfa_env, CODE)
    assert status == 0, output
    assert f"MFA code for {SERIAL} (profile dev): " in output
    assert CODE not in output  # not echoed
    assert f"Logged in: profile 'dev' as {DEV_ROLE}" in output
    (assume,) = assume_calls(fake)
    assert assume.access_key_id == fakeecr.DEFAULT_ACCESS_KEY_ID  # from the source profile
    assert (assume.params["SerialNumber"], assume.params["TokenCode"]) == (SERIAL, "present")
    assert assume.params["DurationSeconds"] == "7200"
    sessions = cache_dir / "credentials.json"
    assert stat.S_IMODE(sessions.stat().st_mode) == 0o600
    assert stat.S_IMODE(sessions.parent.stat().st_mode) & 0o077 == 0

    # docker's daemon, BuildKit: no terminal. One ECR call as the role, no AssumeRole, no prompt.
    first = get_ok(mfa_env)
    assert fake.calls("ecr") == 1
    assert len(assume_calls(fake)) == 1
    assert fake.requests[-1].access_key_id == fakeecr.access_key_for_role(DEV_ROLE)
    # `cache clear` empties the token cache and keeps the session: one ECR call, still no AssumeRole.
    cleared = run_helper(["cache", "clear"], mfa_env)
    assert cleared.returncode == 0, cleared.stderr
    second = get_ok(mfa_env)
    assert second["Secret"] != first["Secret"]
    assert fake.calls("ecr") == 2
    assert len(assume_calls(fake)) == 1

    # A profile that chains onto the MFA profile is assumed from its session, without MFA.
    get_ok({**mfa_env, "AWS_PROFILE": "chained"})
    deploy = assume_calls(fake)[-1]
    assert (deploy.params["RoleArn"], deploy.access_key_id) == (DEPLOY_ROLE, fakeecr.access_key_for_role(DEV_ROLE))
    assert "SerialNumber" not in deploy.params

    # cache show lists the session, never a secret.
    show = run_helper(["cache", "show"], mfa_env)
    assert "live     MFA session of profile dev, expires " in show.stdout
    shown = run_helper(["cache", "show", "--json"], mfa_env)
    (session,) = json.loads(shown.stdout)["stored_credentials"]["mfa_sessions"]
    assert (session["profile"], session["status"]) == ("dev", "live")
    for secret in fake.issued_secrets:
        assert secret not in show.stdout
        assert secret not in shown.stdout

    # logout forgets it: get is back to the one line.
    out = run_helper(["logout", "--profile", "dev"], mfa_env)
    assert out.stdout == "forgot the MFA session of profile 'dev'\n"
    run_helper(["cache", "clear"], mfa_env)
    proc = run_helper(["get"], mfa_env, ECR_HOST)
    assert (proc.stdout, proc.stderr) == (NOT_FOUND + "\n", NEEDS_LOGIN)
    assert run_helper(["logout"], mfa_env).stdout == "no MFA session for profile 'dev'\n"


def test_login_through_a_chained_profile_and_its_limits(fake: FakeAWS, mfa_env: dict[str, str]) -> None:
    status, output = login_in_pty(["--profile", "chained"], mfa_env, CODE)
    assert status == 0, output
    assert "Logged in: profile 'dev'" in output  # the MFA profile of the chain
    assert [r.params["RoleArn"] for r in assume_calls(fake)] == [DEV_ROLE]
    get_ok({**mfa_env, "AWS_PROFILE": "chained"})
    assert [r.params["RoleArn"] for r in assume_calls(fake)] == [DEV_ROLE, DEPLOY_ROLE]
    status, output = login_in_pty(["--profile", "dev", "--duration", "43200"], mfa_env, CODE)
    assert status == 0, output
    fake.require_mfa(DEV_ROLE, SERIAL, CODE, max_session_duration=3600)
    status, output = login_in_pty(["--profile", "dev", "--duration", "7200"], mfa_env, CODE)
    assert status == 1
    assert "does not allow a session that long" in output
    assert "ask for less with --duration" in output


def test_wrong_code_and_no_terminal(fake: FakeAWS, mfa_env: dict[str, str], cache_dir: Path) -> None:
    status, output = login_in_pty(["--profile", "dev"], mfa_env, "000000")
    assert status == 1
    assert f"{PROGRAM}: STS refused the MFA code for {SERIAL}: check the device and try again" in output
    assert not (cache_dir / "credentials.json").exists()
    status, output = login_in_pty(["--profile", "dev"], mfa_env, "12ab")
    assert status == 1
    assert "an MFA code is 6 digits" in output
    proc = run_helper(["login", "--profile", "dev"], mfa_env, "")
    assert proc.returncode == 1
    assert proc.stderr == f"{PROGRAM}: login needs a terminal to read the MFA code\n"
    proc = run_helper(["login", "--profile", "base"], mfa_env, "")
    assert proc.stderr == (
        f"{PROGRAM}: profile 'base' needs no MFA code (no mfa_serial in its role chain): nothing to log in\n"
    )
    assert len(assume_calls(fake)) == 1  # the wrong code; the bad ones never reached STS


def test_botocore_never_prompts(
    fake: FakeAWS, mfa_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Wherever botocore itself would ask for the code (getpass), it is refused with the login line instead."""
    from docker_credential_ecr import aws
    from docker_credential_ecr import registry as registries

    for name, value in mfa_env.items():
        monkeypatch.setenv(name, value)
    session = aws.make_session("dev")
    credentials = session.get_credentials()  # deferred: nothing is asked yet
    assert credentials is not None
    with pytest.raises(aws.PromptRefusedError) as info:
        credentials.get_frozen_credentials()
    assert SERIAL in str(info.value)
    registry = registries.parse(ECR_HOST)
    assert registry is not None
    line = aws.explain(info.value, registry, profile="dev", environ=mfa_env)
    assert line == NEEDS_LOGIN.removeprefix(f"{PROGRAM}: ").rstrip("\n")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # no GetPassWarning, no prompt
    assert fake.calls("*") == 0


def test_mfa_profile_in_the_credentials_file(fake: FakeAWS, mfa_env: dict[str, str], home: Path) -> None:
    credentials = home / ".aws" / "credentials"
    credentials.write_text(
        credentials.read_text() + f"[ops]\nrole_arn = {DEV_ROLE}\nsource_profile = base\nmfa_serial = {SERIAL}\n"
    )
    proc = run_helper(["get"], {**mfa_env, "AWS_PROFILE": "ops"}, ECR_HOST)
    assert (proc.stdout, proc.stderr) == (
        NOT_FOUND + "\n",
        f"{PROGRAM}: profile 'ops' needs an MFA code: run `{PROGRAM} login --profile ops`\n",
    )
    status, output = login_in_pty(["--profile", "ops"], mfa_env, CODE)
    assert status == 0, output
    get_ok({**mfa_env, "AWS_PROFILE": "ops"})
