"""The fake's identity checks (MFA, web identity trust, CI and SSO token endpoints), driven by real botocore."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.config import Config

import fakeecr
from fakeecr import FakeAWS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

FAST = Config(connect_timeout=2, read_timeout=2, retries={"total_max_attempts": 1})
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
ROLE = "arn:aws:iam::111122223333:role/ci-pull"
GITHUB_SUB = "repo:octo/app:ref:refs/heads/main"


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def sts(fake: FakeAWS, clients: list[Any]) -> Any:
    session = botocore.session.Session()
    client = session.create_client(
        "sts",
        region_name="us-east-1",
        endpoint_url=fake.url,
        aws_access_key_id=fakeecr.DEFAULT_ACCESS_KEY_ID,
        aws_secret_access_key=fakeecr.DEFAULT_SECRET_ACCESS_KEY,
        config=FAST,
    )
    clients.append(client)
    return client


@pytest.fixture
def unsigned_sts(fake: FakeAWS, clients: list[Any]) -> Any:
    client = botocore.session.Session().create_client(
        "sts", region_name="us-east-1", endpoint_url=fake.url, config=FAST.merge(Config(signature_version=UNSIGNED))
    )
    clients.append(client)
    return client


def error_of(call: Any, **kw: Any) -> tuple[str, str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(**kw)
    error = info.value.response["Error"]
    return error["Code"], error["Message"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


# -- MFA --------------------------------------------------------------------------------------------


def test_assume_role_with_mfa(fake: FakeAWS, sts: Any) -> None:
    serial = "arn:aws:iam::123456789012:mfa/dev"
    fake.require_mfa(ROLE, serial, "987123", max_session_duration=7200)
    code, message, status = error_of(sts.assume_role, RoleArn=ROLE, RoleSessionName="s1")
    assert (code, status) == ("AccessDenied", 403)
    assert message == (
        "User: arn:aws:iam::123456789012:user/fake-user is not authorized to perform: sts:AssumeRole "
        f"on resource: {ROLE}"
    )
    wrong = {"RoleArn": ROLE, "RoleSessionName": "s1", "SerialNumber": serial, "TokenCode": "654321"}
    assert error_of(sts.assume_role, **wrong) == ("AccessDenied", fakeecr.STS_BAD_MFA_CODE, 403)
    other_device = {**wrong, "SerialNumber": serial + "2", "TokenCode": "987123"}
    assert error_of(sts.assume_role, **other_device)[0] == "AccessDenied"
    right = {**wrong, "TokenCode": "987123"}
    too_long = error_of(sts.assume_role, **right, DurationSeconds=7201)
    assert too_long == ("ValidationError", fakeecr.STS_DURATION_TOO_LONG, 400)
    creds = sts.assume_role(**right, DurationSeconds=7200)["Credentials"]
    assert creds["AccessKeyId"] == fakeecr.access_key_for_role(ROLE)
    remaining = (creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 7100 < remaining <= 7201
    last = fake.requests[-1]
    assert last.params["SerialNumber"] == serial
    assert last.params["TokenCode"] == "present"  # the code itself is never logged
    assert "987123" not in json.dumps(fake.state()["requests"])
    assert fake.calls("sts:AssumeRole") == 5
    # Roles without MFA are untouched.
    assert sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/plain", RoleSessionName="s1")["Credentials"]


# -- web identity -----------------------------------------------------------------------------------


def _github_claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": fakeecr.GITHUB_ISSUER, "aud": "sts.amazonaws.com", "sub": GITHUB_SUB, "exp": now + 300}
    claims.update(over)
    return claims


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param({}, None, id="trusted"),
        pytest.param({"aud": ["other", "sts.amazonaws.com"]}, None, id="one-of-many-audiences"),
        pytest.param(
            {"aud": "https://github.com/octo"},
            ("InvalidIdentityToken", "Incorrect token audience", 400),
            id="wrong-audience",
        ),
        pytest.param(
            {"iss": "https://gitlab.example.com"},
            (
                "InvalidIdentityToken",
                "No OpenIDConnect provider found in your account for https://gitlab.example.com",
                400,
            ),
            id="untrusted-provider",
        ),
        pytest.param(
            {"sub": "repo:octo/app:pull_request"},
            ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403),
            id="sub-rejected",
        ),
        pytest.param(
            {"sub": "repo:octo/app-evil:ref:refs/heads/main"},
            ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403),
            id="glob-is-anchored",
        ),
        pytest.param({"exp": 1_000_000}, ("ExpiredTokenException", None, 400), id="expired"),
    ],
)
def test_web_identity_trust(
    fake: FakeAWS, unsigned_sts: Any, claims: dict[str, Any], expected: tuple[str, str | None, int] | None
) -> None:
    fake.add_oidc_provider(fakeecr.GITHUB_ISSUER, ["sts.amazonaws.com"])
    fake.trust_web_identity(ROLE, fakeecr.GITHUB_ISSUER, "repo:octo/app:ref:refs/heads/*")
    token = fakeecr.make_jwt(_github_claims(**claims))
    call = {"RoleArn": ROLE, "RoleSessionName": "run-1", "WebIdentityToken": token}
    if expected is None:
        out = unsigned_sts.assume_role_with_web_identity(**call)
        assert out["Credentials"]["AccessKeyId"] == fakeecr.access_key_for_role(ROLE)
        assert out["SubjectFromWebIdentityToken"] == GITHUB_SUB
    else:
        code, message, status = error_of(unsigned_sts.assume_role_with_web_identity, **call)
        assert (code, status) == (expected[0], expected[2])
        if expected[1] is not None:
            assert message == expected[1]
        else:
            assert message.startswith("Token expired: current date/time ")
    assert token not in json.dumps(fake.state())


def test_web_identity_role_without_trust_and_plain_mode(fake: FakeAWS, unsigned_sts: Any) -> None:
    token = fakeecr.make_jwt(_github_claims())
    call = {"RoleArn": ROLE, "RoleSessionName": "run-1", "WebIdentityToken": token}
    assert unsigned_sts.assume_role_with_web_identity(**call)["Credentials"]  # no provider registered: no checks
    fake.add_oidc_provider(fakeecr.GITHUB_ISSUER + "/", ["sts.amazonaws.com"])  # IAM ignores the trailing slash
    assert error_of(unsigned_sts.assume_role_with_web_identity, **call)[0] == "AccessDenied"
    fake.trust_web_identity(ROLE, "token.actions.githubusercontent.com", "repo:octo/*")
    assert unsigned_sts.assume_role_with_web_identity(**call)["Credentials"]


# -- GitHub Actions' token endpoint -----------------------------------------------------------------


def _get(url: str, bearer: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"bearer {bearer}"} if bearer is not None else {}
    try:
        with OPENER.open(urllib.request.Request(url, headers=headers), timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_github_token_endpoint(fake: FakeAWS) -> None:
    url = fake.github_token_url
    assert _get(url + "&audience=sts.amazonaws.com", "req-token")[0] == 404  # not configured yet
    fake.github_oidc("req-token", {"sub": GITHUB_SUB, "repository": "octo/app", "repository_owner": "octo"})
    status, body = _get(url + "&audience=sts.amazonaws.com", "req-token")
    assert status == 200
    claims = claims_of(body["value"])
    assert claims["iss"] == fakeecr.GITHUB_ISSUER
    assert (claims["aud"], claims["sub"], claims["repository"]) == ("sts.amazonaws.com", GITHUB_SUB, "octo/app")
    assert claims["iat"] <= time.time() < claims["exp"]
    assert claims_of(_get(url, "req-token")[1]["value"])["aud"] == "https://github.com/octo"  # GitHub's default
    assert _get(url, "wrong")[0] == 401
    assert _get(url)[0] == 401
    requests = [r for r in fake.requests if r.op == "github-oidc"]
    assert requests[1].params == {"api-version": "2.0", "audience": "sts.amazonaws.com", "bearer_token": "present"}
    assert requests[-1].params["bearer_token"] == "absent"
    assert "req-token" not in json.dumps(fake.state())
    assert fake.calls("github-oidc") == 5


# -- IMDS with hop limit 1 --------------------------------------------------------------------------


def test_imds_drops_the_token_response(fake: FakeAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in fake.env().items():
        if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.imds_endpoint)
    fake.configure(imds_drop_token_response=True)
    started = time.monotonic()
    assert botocore.session.Session().get_credentials() is None  # PUT times out, IMDSv1 is refused
    assert time.monotonic() - started >= 1.0  # botocore's metadata timeout: the PUT really got no answer
    ops = [(r.op, r.method, r.path) for r in fake.requests]
    assert ops[0] == ("imds", "PUT", "/latest/api/token")
    assert all(params.get("imds_token") == "absent" for params in (r.params for r in fake.requests))
    fake.configure(imds_drop_token_response=False)
    assert botocore.session.Session().get_credentials() is not None
    with pytest.raises(ValueError, match="true or false"):
        fake.configure(imds_drop_token_response="yes")


# -- SSO OIDC CreateToken ---------------------------------------------------------------------------


def test_sso_token_refresh_through_botocore(fake: FakeAWS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in fake.env().items():
        if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONFIG_FILE"):
            monkeypatch.setenv(name, value)
    config = tmp_path / "config"
    config.write_text(
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\n"
        "[sso-session corp]\nsso_start_url = https://fake.awsapps.com/start\nsso_region = us-east-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    cache = tmp_path / "sso-cache"
    cache.mkdir()
    monkeypatch.setattr(botocore.tokens.SSOTokenProvider, "_SSO_TOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(botocore.credentials.SSOProvider, "_SSO_TOKEN_CACHE_DIR", str(cache))
    token_file = cache / (hashlib.sha1(b"corp").hexdigest() + ".json")  # noqa: S324 - botocore's file name
    token_file.write_text(
        json.dumps(
            {
                "startUrl": "https://fake.awsapps.com/start",
                "region": "us-east-1",
                "accessToken": "expired-access-token",
                "expiresAt": "2020-01-01T00:00:00Z",
                "clientId": "client-1",
                "clientSecret": "client-secret-1",
                "registrationExpiresAt": "2099-01-01T00:00:00Z",
                "refreshToken": "refresh-1",
            }
        )
    )
    fake.configure(sso_require_issued_token=True)
    fake.add_sso_client("refresh-1", "client-1", "client-secret-1")
    creds = botocore.session.Session(profile="dev").get_credentials()
    assert creds is not None
    assert creds.get_frozen_credentials().access_key == fakeecr.access_key_for_role(
        "arn:aws:iam::111122223333:role/Dev"
    )
    assert [r.op for r in fake.requests] == ["sso-oidc", "sso"]
    saved = json.loads(token_file.read_text())
    assert saved["accessToken"] in fake.sso_access_tokens
    assert saved["refreshToken"] != "refresh-1"  # rotated, and the new one saved by botocore
    # The spent refresh token is refused, and so is a token CreateToken never issued.
    no_signing = FAST.merge(Config(signature_version=UNSIGNED))
    unsigned: Any = botocore.session.Session().create_client(
        "sso-oidc", region_name="us-east-1", endpoint_url=fake.url, config=no_signing
    )
    grant = {"grantType": "refresh_token", "clientId": "client-1", "clientSecret": "client-secret-1"}
    assert error_of(unsigned.create_token, **grant, refreshToken="refresh-1")[0] == "InvalidGrantException"
    assert unsigned.create_token(**grant, refreshToken=saved["refreshToken"])["accessToken"]
    unsigned.close()
    sso: Any = botocore.session.Session().create_client(
        "sso", region_name="us-east-1", endpoint_url=fake.url, config=no_signing
    )
    code = error_of(sso.get_role_credentials, roleName="Dev", accountId="111122223333", accessToken="forged")[0]
    sso.close()
    assert code == "UnauthorizedException"
    assert "refresh-1" not in json.dumps(fake.state()["requests"])


# -- the control plane ------------------------------------------------------------------------------


def test_identity_control_routes(fake: FakeAWS, unsigned_sts: Any, sts: Any) -> None:
    control = fakeecr.FakeAWSClient(fake.url)
    control.require_mfa(ROLE, "serial", "000000", max_session_duration=900)
    control.add_oidc_provider("https://issuer.example", ["aud-1"])
    control.trust_web_identity(ROLE, "https://issuer.example", "ci:*")
    control.github_oidc("rt", {"sub": "x"})
    control.add_sso_client("r", "c", "s")
    with pytest.raises(RuntimeError, match="HTTP 400"):
        control._call("POST", "oidc-provider", {"issuer": "https://x"})  # no audiences
    assert error_of(sts.assume_role, RoleArn=ROLE, RoleSessionName="s1")[0] == "AccessDenied"
    good = fakeecr.make_jwt({"iss": "https://issuer.example", "aud": "aud-1", "sub": "ci:42"})
    assert unsigned_sts.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="s1", WebIdentityToken=good)
    assert _get(fake.github_token_url, "rt")[0] == 200
    assert fake.state()["config"]["imds_drop_token_response"] is False
