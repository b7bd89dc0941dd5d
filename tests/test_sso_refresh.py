"""SSO that lasts (awslabs #1027): an expired SSO access token is refreshed, and hits stay hits across it.

botocore's SSO token provider (profiles with ``sso_session``) refreshes an access token that is about
to expire with the refresh token IAM Identity Center handed out at ``aws sso login``: SSO OIDC
``CreateToken``, grant ``refresh_token``. The helper runs that provider, unchanged, on a miss; its
cache key holds the profile's settings and never the access token, so a refresh (which rewrites
``~/.aws/sso/cache``) costs no cache miss.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

import fakeecr
from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, get_ok, run_helper

START_URL = "https://fake.awsapps.com/start"
SSO_ROLE = "arn:aws:iam::111122223333:role/Dev"


@pytest.fixture
def sso_env(env: dict[str, str], home: Path) -> dict[str, str]:
    aws = home / ".aws"
    aws.mkdir()
    (aws / "config").write_text(
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\nregion = us-east-1\n"
        f"[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n"
    )
    base = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    return {**base, "AWS_PROFILE": "dev"}


def token_file(home: Path) -> Path:
    return home / ".aws" / "sso" / "cache" / (hashlib.sha1(b"corp").hexdigest() + ".json")  # noqa: S324 - botocore's name


def write_sso_token(
    home: Path, *, access: str, refresh: str, expires: str, registration: str = "2099-01-01T00:00:00Z"
) -> None:
    path = token_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "startUrl": START_URL,
                "region": "us-east-1",
                "accessToken": access,
                "expiresAt": expires,
                "clientId": "client-1",
                "clientSecret": "client-secret-1",
                "registrationExpiresAt": registration,
                "refreshToken": refresh,
            }
        )
    )
    path.chmod(0o600)


def expire(home: Path) -> None:
    """The SSO access token runs out (as it does after an hour or so); the refresh token stays."""
    data = json.loads(token_file(home).read_text())
    data["expiresAt"] = "2020-01-01T00:00:00Z"
    token_file(home).write_text(json.dumps(data))


def test_expired_sso_token_is_refreshed_and_hits_stay_hits(fake: FakeAWS, sso_env: dict[str, str], home: Path) -> None:
    fake.configure(sso_require_issued_token=True)  # GetRoleCredentials takes only refreshed tokens
    fake.add_sso_client("refresh-1", "client-1", "client-secret-1")
    write_sso_token(home, access="stale-access-token", refresh="refresh-1", expires="2020-01-01T00:00:00Z")

    first = get_ok(sso_env)
    assert [r.op for r in fake.requests] == ["sso-oidc", "sso", "ecr"]
    assert fake.requests[-1].access_key_id == fakeecr.access_key_for_role(SSO_ROLE)
    saved = json.loads(token_file(home).read_text())
    assert saved["accessToken"] in fake.sso_access_tokens  # botocore wrote the refreshed token back
    assert saved["refreshToken"] != "refresh-1"
    assert stat.S_IMODE(token_file(home).stat().st_mode) & 0o077 == 0

    # The refresh rewrote ~/.aws/sso/cache: the cache key does not read it, so this is a hit.
    calls = fake.calls("*")
    assert get_ok(sso_env)["Secret"] == first["Secret"]
    # The access token expires again while the ECR token is fresh: still a hit, no SSO call at all.
    expire(home)
    assert get_ok(sso_env)["Secret"] == first["Secret"]
    assert fake.calls("*") == calls

    # With the token cache emptied, the next get refreshes the SSO token once more, then hits again.
    assert run_helper(["cache", "clear"], sso_env).returncode == 0
    second = get_ok(sso_env)
    assert second["Secret"] != first["Secret"]
    assert (fake.calls("sso-oidc"), fake.calls("sso"), fake.calls("ecr")) == (2, 2, 2)
    assert get_ok(sso_env)["Secret"] == second["Secret"]
    assert fake.calls("*") == calls + 3
    for secret in fake.issued_secrets:
        assert secret not in json.dumps(fake.state()["requests"])


def test_sso_session_that_cannot_refresh_says_log_in_again(fake: FakeAWS, sso_env: dict[str, str], home: Path) -> None:
    fake.configure(sso_require_issued_token=True)
    write_sso_token(
        home,
        access="stale-access-token",
        refresh="refresh-unknown",
        expires="2020-01-01T00:00:00Z",
        registration="2020-01-01T00:00:00Z",  # the client registration itself has run out
    )
    proc = run_helper(["get"], sso_env, ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr.splitlines() == [
        "docker-credential-ecr-login: the SSO session for profile 'dev' has expired or is missing: "
        "run `aws sso login --profile dev`"
    ]
    assert "stale-access-token" not in proc.stderr
    assert "refresh-unknown" not in proc.stderr
    assert fake.calls("ecr") == 0
