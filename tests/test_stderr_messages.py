"""Errors where people see them: every failure to get a token is one actionable line on stderr.

Each case runs the console script against the local fake with a fault or a broken credential setup,
and checks the whole answer: docker's not-found on stdout (so a pull still goes anonymous), exit 1,
and exactly one stderr line, prefixed with the program name, that says what to do, and holds none of
the secrets the fake ever issued or was given.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from docker_credential_ecr.settings import APP_NAME
from fakeecr import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, FakeAWS
from support import ECR_HOST, NOT_FOUND, PUBLIC_HOST, run_helper

PREFIX = "docker-credential-ecr-login: "
START_URL = "https://fake-corp.awsapps.com/start"
ROLE = "arn:aws:iam::210987654321:role/ecr-pull"


def failing_get(env: dict[str, str], fake: FakeAWS, url: str = ECR_HOST) -> str:
    """`get` that fails: not-found, exit 1, one clean stderr line; returns the line without its prefix."""
    proc = run_helper(["get"], env, url)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n"), proc.stderr
    assert proc.stderr.endswith("\n")
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(PREFIX)
    assert "Traceback" not in proc.stderr
    for secret in (*fake.issued, *fake.issued_secrets, DEFAULT_SECRET_ACCESS_KEY):
        assert secret not in proc.stderr
    return proc.stderr[len(PREFIX) : -1]


def without_keys(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment without the static keys (so profiles, SSO or nothing at all decide)."""
    stripped = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    return {**stripped, **extra}


def write_aws_config(home: Path, text: str) -> None:
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / "config").write_text(text)


ACCESS_KEY = f"environment access key {DEFAULT_ACCESS_KEY_ID[:4]}…{DEFAULT_ACCESS_KEY_ID[-4:]}"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        pytest.param(
            "access-denied",
            rf"access denied: {ACCESS_KEY} may not call ecr:GetAuthorizationToken \(User: "
            r"arn:aws:iam::123456789012:user/fake-user is not authorized to perform: "
            r"ecr:GetAuthorizationToken on resource: \* because .*\)",
            id="access-denied",
        ),
        pytest.param(
            "expired-token",
            rf"the AWS credentials \({ACCESS_KEY}\) have expired: refresh them and retry",
            id="expired-token",
        ),
        pytest.param(
            "unrecognized-client",
            rf"AWS rejected the credentials \({ACCESS_KEY}\): UnrecognizedClientException: check the access key",
            id="unrecognized-client",
        ),
        pytest.param(
            "throttle",
            r"ECR \(us-east-1\) is throttling GetAuthorizationToken: retry in a minute",
            id="throttle",
        ),
        pytest.param(
            "reset",
            r"cannot reach the ECR \(us-east-1\) endpoint \(.*http://127\.0\.0\.1:\d+/.*\): "
            r"check the network, proxy and region",
            id="reset",
        ),
    ],
)
def test_ecr_faults(env: dict[str, str], fake: FakeAWS, kind: str, expected: str) -> None:
    fake.add_fault("ecr", kind, times=None)
    assert re.fullmatch(expected, failing_get(env, fake))


def test_silent_endpoint_is_cut_off_by_the_timeout(env: dict[str, str], fake: FakeAWS) -> None:
    fake.add_fault("ecr", "hang", times=None)
    started = time.monotonic()
    line = failing_get({**env, "AWS_ECR_TIMEOUT": "1.5"}, fake)
    assert time.monotonic() - started < 15
    assert (
        line == "ECR (us-east-1): no token in time (gave up after 1.5 s; AWS_ECR_TIMEOUT); check the network and proxy"
    )


def test_no_credentials_at_all_says_where_it_looked(env: dict[str, str], fake: FakeAWS) -> None:
    line = failing_get(without_keys(env), fake)
    assert line == (
        "no AWS credentials found (looked at AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/config and credentials, "
        "web identity, container and instance credentials): run `aws configure` or set AWS_PROFILE"
    )
    assert fake.calls("*") == 0


def test_profile_that_does_not_exist(env: dict[str, str], fake: FakeAWS) -> None:
    line = failing_get(without_keys(env, AWS_PROFILE="nope"), fake)
    assert (
        line == "AWS profile 'nope' is not in the AWS config or credentials files: run `aws configure --profile nope`"
    )


def test_config_profile_that_does_not_exist(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    config = home / ".config" / APP_NAME / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[[registry]]\nmatch = "123456789012"\nprofile = "ci"\n')
    line = failing_get({**env, "XDG_CONFIG_HOME": str(home / ".config")}, fake)
    assert line == "AWS profile 'ci' is not in the AWS config or credentials files: run `aws configure --profile ci`"


SSO_LEGACY = f"""\
[profile dev]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_account_id = 123456789012
sso_role_name = ReadOnly
region = us-east-1
"""
SSO_SESSION = f"""\
[profile dev]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = ReadOnly
region = us-east-1

[sso-session corp]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_registration_scopes = sso:account:access
"""


def write_sso_token(home: Path, key: str, *, expires_in: float) -> None:
    """An SSO access token in the AWS CLI's cache (~/.aws/sso/cache/<sha1(key)>.json)."""
    cache = home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + expires_in))
    token = {"startUrl": START_URL, "region": "us-east-1", "accessToken": "fake-sso-access-token", "expiresAt": expires}
    (cache / (hashlib.sha1(key.encode()).hexdigest() + ".json")).write_text(json.dumps(token))  # noqa: S324 - the CLI's name


@pytest.mark.parametrize("style", ["legacy", "sso-session"])
@pytest.mark.parametrize("token", ["missing", "expired"])
def test_sso_session_expired_or_missing(env: dict[str, str], home: Path, fake: FakeAWS, style: str, token: str) -> None:
    write_aws_config(home, SSO_LEGACY if style == "legacy" else SSO_SESSION)
    if token == "expired":
        write_sso_token(home, START_URL if style == "legacy" else "corp", expires_in=-3600)
    line = failing_get(without_keys(env, AWS_PROFILE="dev"), fake)
    assert line == "the SSO session for profile 'dev' has expired or is missing: run `aws sso login --profile dev`"
    assert fake.calls("sso") == 0


def test_sso_with_a_valid_token_works(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    """The control for the SSO cases: the same profile, with a live token, gets a token silently."""
    write_aws_config(home, SSO_LEGACY)
    write_sso_token(home, START_URL, expires_in=3600)
    proc = run_helper(["get"], without_keys(env, AWS_PROFILE="dev"), ECR_HOST)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert fake.calls("sso") == 1


def test_assume_role_denied_names_the_role(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    config = home / ".config" / APP_NAME / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[[registry]]\nmatch = "123456789012"\nrole_arn = "{ROLE}"\n')
    fake.add_fault("sts", "access-denied", times=None)
    line = failing_get({**env, "XDG_CONFIG_HOME": str(home / ".config")}, fake)
    assert line.startswith(f"access denied: {ACCESS_KEY} may not call sts:AssumeRole on {ROLE} (User: ")
    assert fake.calls("ecr") == 0


def test_ecr_denied_to_an_assumed_role_names_the_role(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    config = home / ".config" / APP_NAME / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[[registry]]\nmatch = "123456789012"\nrole_arn = "{ROLE}"\n')
    fake.add_fault("ecr", "access-denied", times=None)
    line = failing_get({**env, "XDG_CONFIG_HOME": str(home / ".config")}, fake)
    assert line.startswith(f"access denied: role {ROLE} may not call ecr:GetAuthorizationToken (User: ")
    assert "assumed-role/ecr-pull/docker-credential-ecr" in line


def test_ecr_public_failure_is_not_found_so_anonymous_pulls_work(env: dict[str, str], fake: FakeAWS) -> None:
    fake.add_fault("ecr-public", "access-denied", times=None)
    line = failing_get(env, fake, PUBLIC_HOST)
    assert line.startswith(f"access denied: {ACCESS_KEY} may not call ecr-public:GetAuthorizationToken (User: ")


@pytest.mark.parametrize(
    "url", ["ghcr.io", "https://index.docker.io/v1/", "localhost:5000", f"http://{ECR_HOST}", "not a url at all"]
)
def test_hosts_that_are_not_ecr_are_silent(env: dict[str, str], fake: FakeAWS, url: str) -> None:
    proc = run_helper(["get"], env, url)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, NOT_FOUND + "\n", "")
    assert fake.calls("*") == 0


def test_success_is_silent(env: dict[str, str], fake: FakeAWS) -> None:
    for _ in range(2):  # miss, then hit
        proc = run_helper(["get"], env, ECR_HOST)
        assert (proc.returncode, proc.stderr) == (0, "")
