"""Tests for the fake AWS server, driven by the real boto3/botocore client over loopback HTTP."""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import hashlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import botocore.credentials
import botocore.exceptions
import botocore.parsers
import pytest
from botocore import UNSIGNED
from botocore.config import Config

import fakeecr

FAKE_PY = Path(__file__).with_name("fakeecr.py")
KEY = fakeecr.DEFAULT_ACCESS_KEY_ID
SECRET = fakeecr.DEFAULT_SECRET_ACCESS_KEY
# One attempt, short timeouts: "retries": {"max_attempts": 1} would still mean one *retry* in botocore.
FAST = Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the real environment may send a request anywhere but the fake."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def fake() -> Iterator[fakeecr.FakeAWS]:
    with fakeecr.running_fake() as server:
        yield server


@functools.lru_cache(maxsize=1)
def shared_session() -> boto3.session.Session:
    """One session for explicitly configured clients, so service models load once."""
    return boto3.session.Session()


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def make(clients: list[Any], fake: fakeecr.FakeAWS) -> Any:
    """make(service, **kw): a real boto3 client on a fresh session, pointed at the fake by endpoint_url."""

    def factory(service: str, *, session: boto3.session.Session | None = None, **kw: Any) -> Any:
        kw.setdefault("region_name", "us-east-1")
        kw.setdefault("config", FAST)
        if session is None:
            session = shared_session()  # explicit keys and endpoint: nothing session-wide is cached
            kw.setdefault("endpoint_url", fake.url)
            kw.setdefault("aws_access_key_id", KEY)
            kw.setdefault("aws_secret_access_key", SECRET)
        client: Any = cast(Any, session).client(service, **kw)
        clients.append(client)
        return client

    return factory


def use_env(monkeypatch: pytest.MonkeyPatch, fake: fakeecr.FakeAWS, *, static_keys: bool = True) -> None:
    for name, value in fake.env().items():
        if static_keys or name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.setenv(name, value)


def password_of(token: str) -> str:
    user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
    assert user == "AWS"
    return password


def raw(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=3) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


# -- ECR --------------------------------------------------------------------------------------------


def test_ecr_token_by_endpoint_url(fake: fakeecr.FakeAWS, make: Any) -> None:
    before = time.time()
    data = make("ecr", region_name="eu-west-1").get_authorization_token()["authorizationData"]
    assert len(data) == 1
    entry = data[0]
    password = password_of(entry["authorizationToken"])
    assert len(password) == 1500
    assert set(password) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert fake.issued == [password]
    assert entry["proxyEndpoint"] == "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    expires = entry["expiresAt"].timestamp()
    assert before + 43200 - 1 <= expires <= time.time() + 43200 + 1
    (req,) = fake.requests
    assert (req.op, req.method, req.path) == ("ecr", "POST", "/")
    assert req.target == fakeecr.ECR_TARGET
    assert (req.access_key_id, req.region, req.service) == (KEY, "eu-west-1", "ecr")
    assert req.session_token is False
    assert "Boto3" in req.user_agent
    assert fake.calls("ecr") == fake.calls() == 1


def test_ecr_token_by_env_var(fake: fakeecr.FakeAWS, monkeypatch: pytest.MonkeyPatch, clients: list[Any]) -> None:
    use_env(monkeypatch, fake)
    client = boto3.session.Session().client("ecr", config=FAST)
    clients.append(client)
    first = client.get_authorization_token()["authorizationData"][0]
    second = client.get_authorization_token()["authorizationData"][0]
    assert password_of(first["authorizationToken"]) != password_of(second["authorizationToken"])
    assert fake.issued == [password_of(first["authorizationToken"]), password_of(second["authorizationToken"])]
    assert first["proxyEndpoint"] == "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert [(r.op, r.access_key_id, r.region) for r in fake.requests] == [("ecr", KEY, "us-east-1")] * 2


def test_ecr_registry_ids_and_china(fake: fakeecr.FakeAWS, make: Any) -> None:
    data = make("ecr").get_authorization_token(registryIds=["111122223333", "444455556666"])["authorizationData"]
    assert [d["proxyEndpoint"] for d in data] == [
        "https://111122223333.dkr.ecr.us-east-1.amazonaws.com",
        "https://444455556666.dkr.ecr.us-east-1.amazonaws.com",
    ]
    assert len(fake.issued) == 2
    (cn,) = make("ecr", region_name="cn-north-1").get_authorization_token()["authorizationData"]
    assert cn["proxyEndpoint"] == "https://123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"


def test_fixed_password_lifetime_and_runtime_config(make: Any) -> None:
    with fakeecr.running_fake(password="s3cret", token_lifetime=-5, account="999988887777") as fake:
        client = make("ecr", endpoint_url=fake.url)
        entry = client.get_authorization_token()["authorizationData"][0]
        assert password_of(entry["authorizationToken"]) == "s3cret"
        assert entry["expiresAt"].timestamp() < time.time()
        assert entry["proxyEndpoint"].startswith("https://999988887777.dkr.ecr.")
        fake.configure(password=None, password_length=32, token_lifetime=60, account="123456789012")
        entry = client.get_authorization_token()["authorizationData"][0]
        assert len(password_of(entry["authorizationToken"])) == 32
        assert 55 < entry["expiresAt"].timestamp() - time.time() <= 61
        assert fake.issued[0] == "s3cret"
        assert len(fake.issued) == 2


def test_configure_rejects_bad_settings(fake: fakeecr.FakeAWS) -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        fake.configure(colour="blue")
    with pytest.raises(ValueError, match="password_length"):
        fake.configure(password_length=0)
    with pytest.raises(ValueError, match="account"):
        fake.configure(account="12")
    with pytest.raises(ValueError, match="latency"):
        fake.configure(latency=-1)


def test_ecr_requires_sigv4(fake: fakeecr.FakeAWS, make: Any) -> None:
    client = make("ecr", config=FAST.merge(Config(signature_version=UNSIGNED)))
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_authorization_token()
    assert info.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    status, body = raw(
        fake.url,
        method="POST",
        data=b"{}",
        headers={"X-Amz-Target": fakeecr.ECR_PUBLIC_TARGET, "Content-Type": "application/x-amz-json-1.1"},
    )
    assert status == 403
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    assert fake.issued == []


def test_ecr_public_token(fake: fakeecr.FakeAWS, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make("ecr-public").get_authorization_token()["authorizationData"]
    assert set(data) == {"authorizationToken", "expiresAt"}
    assert fake.issued == [password_of(data["authorizationToken"])]
    (req,) = fake.requests
    assert (req.op, req.target, req.service, req.region) == (
        "ecr-public",
        fakeecr.ECR_PUBLIC_TARGET,
        "ecr-public",
        "us-east-1",
    )
    use_env(monkeypatch, fake)
    make("ecr-public", session=boto3.session.Session()).get_authorization_token()
    assert fake.calls("ecr-public") == 2
    assert fake.calls() == 2


# -- STS --------------------------------------------------------------------------------------------


def test_sts_assume_role(fake: fakeecr.FakeAWS, make: Any) -> None:
    sts = make("sts")
    arn = "arn:aws:iam::111122223333:role/team/Pusher"
    out = sts.assume_role(RoleArn=arn, RoleSessionName="ci-run", ExternalId="ext-123", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"] == fakeecr.access_key_for_role(arn)
    assert creds["AccessKeyId"].startswith("ASIA")
    assert len(creds["AccessKeyId"]) == 20
    assert 800 < (creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds() <= 901
    assert out["AssumedRoleUser"]["Arn"] == "arn:aws:sts::111122223333:assumed-role/Pusher/ci-run"
    other = sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/Other", RoleSessionName="ci-run")
    assert other["Credentials"]["AccessKeyId"] != creds["AccessKeyId"]
    again = sts.assume_role(RoleArn=arn, RoleSessionName="second")["Credentials"]
    assert again["AccessKeyId"] == creds["AccessKeyId"]
    assert again["SecretAccessKey"] != creds["SecretAccessKey"]
    req = fake.requests[0]
    assert (req.op, req.access_key_id, req.service) == ("sts:AssumeRole", KEY, "sts")
    assert req.params["RoleArn"] == arn
    assert req.params["RoleSessionName"] == "ci-run"
    assert req.params["ExternalId"] == "ext-123"
    assert req.params["DurationSeconds"] == "900"
    state = json.dumps(fake.state()["requests"])
    assert creds["SecretAccessKey"] not in state
    assert creds["SessionToken"] not in state
    assert {creds["SecretAccessKey"], creds["SessionToken"]} <= set(fake.issued_secrets)
    assert fake.calls("sts:AssumeRole") == fake.calls("sts") == 3
    assert fake.calls() == 0


def test_sts_caller_identity(fake: fakeecr.FakeAWS, make: Any) -> None:
    sts = make("sts")
    me = sts.get_caller_identity()
    assert me["Arn"] == "arn:aws:iam::123456789012:user/fake-user"
    assert me["Account"] == "123456789012"
    assert me["UserId"].startswith("AIDA")
    creds = sts.assume_role(RoleArn="arn:aws:iam::210987654321:role/Reader", RoleSessionName="who")["Credentials"]
    assumed = make(
        "sts",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).get_caller_identity()
    assert assumed["Arn"] == "arn:aws:sts::210987654321:assumed-role/Reader/who"
    assert assumed["Account"] == "210987654321"
    last = fake.requests[-1]
    assert (last.op, last.access_key_id, last.session_token) == ("sts:GetCallerIdentity", creds["AccessKeyId"], True)


def test_sts_web_identity(fake: fakeecr.FakeAWS, make: Any) -> None:
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "system:serviceaccount:ci:pusher", "aud": "sts"}).encode())
    jwt = "eyJhbGciOiJub25lIn0." + claims.decode().rstrip("=") + ".c2ln"
    sts = make("sts", config=FAST.merge(Config(signature_version=UNSIGNED)))
    arn = "arn:aws:iam::111122223333:role/irsa"
    out = sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName="pod", WebIdentityToken=jwt)
    assert out["Credentials"]["AccessKeyId"] == fakeecr.access_key_for_role(arn)
    assert out["SubjectFromWebIdentityToken"] == "system:serviceaccount:ci:pusher"
    assert out["Audience"] == "sts"
    (req,) = fake.requests
    assert req.op == "sts:AssumeRoleWithWebIdentity"
    assert req.access_key_id == ""
    assert req.params["WebIdentityToken"] == "present"
    assert jwt not in json.dumps(fake.state())


def test_sts_rejects_bad_input(fake: fakeecr.FakeAWS, make: Any) -> None:
    sts = make("sts")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.assume_role(RoleArn="arn:aws:iam::1:notarole", RoleSessionName="abc")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    unsigned = make("sts", config=FAST.merge(Config(signature_version=UNSIGNED)))
    with pytest.raises(botocore.exceptions.ClientError) as info:
        unsigned.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "MissingAuthenticationToken"
    status, body = raw(fake.url, method="POST", data=b"Action=GetSessionToken&Version=2011-06-15")
    assert status == 400
    assert b"<Code>InvalidAction</Code>" in body
    assert fake.requests[-1].op == "unknown"
    assert fake.calls("unknown") == 0
    assert fake.calls("*") == 2


# -- SSO, container, IMDS ----------------------------------------------------------------------------


def test_sso_get_role_credentials(fake: fakeecr.FakeAWS, make: Any) -> None:
    sso = make("sso", config=FAST.merge(Config(signature_version=UNSIGNED)))
    creds = sso.get_role_credentials(roleName="Dev", accountId="111122223333", accessToken="bearer-xyz")
    role = creds["roleCredentials"]
    assert role["accessKeyId"] == fakeecr.access_key_for_role("arn:aws:iam::111122223333:role/Dev")
    assert abs(role["expiration"] / 1000 - time.time() - 3600) < 5
    (req,) = fake.requests
    assert (req.op, req.method, req.path.split("?")[0]) == ("sso", "GET", "/federation/credentials")
    assert req.params == {"role_name": "Dev", "account_id": "111122223333", "bearer_token": "present"}
    assert "bearer-xyz" not in json.dumps(fake.state())
    status, body = raw(fake.url + "/federation/credentials?role_name=Dev&account_id=111122223333")
    assert status == 401
    assert json.loads(body)["__type"] == "UnauthorizedException"


def test_credential_chain_sso_profile(
    fake: fakeecr.FakeAWS, make: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    start_url = "https://fake.awsapps.com/start"
    config = tmp_path / "config"
    config.write_text(
        "[profile dev]\n"
        f"sso_start_url = {start_url}\nsso_region = us-east-1\n"
        "sso_account_id = 111122223333\nsso_role_name = Dev\nregion = eu-central-1\n"
    )
    cache = tmp_path / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    token = {"startUrl": start_url, "region": "us-east-1", "accessToken": "bearer", "expiresAt": "2099-01-01T00:00:00Z"}
    (cache / (hashlib.sha1(start_url.encode()).hexdigest() + ".json")).write_text(json.dumps(token))  # noqa: S324
    monkeypatch.setattr(botocore.credentials.SSOProvider, "_SSO_TOKEN_CACHE_DIR", str(cache))  # fixed at import
    use_env(monkeypatch, fake, static_keys=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # so the profile's region counts
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    ecr = make("ecr", session=boto3.session.Session(profile_name="dev"), region_name=None)
    ecr.get_authorization_token()
    assert [r.op for r in fake.requests] == ["sso", "ecr"]
    last = fake.requests[-1]
    assert last.access_key_id == fakeecr.access_key_for_role("arn:aws:iam::111122223333:role/Dev")
    assert (last.region, last.session_token) == ("eu-central-1", True)


def test_credential_chain_assume_role_profile(
    fake: fakeecr.FakeAWS, make: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    role = "arn:aws:iam::210987654321:role/Pusher"
    config.write_text(
        "[profile base]\naws_access_key_id = AKIAFAKEFAKEFAKE0002\naws_secret_access_key = base-secret\n"
        f"[profile target]\nrole_arn = {role}\nsource_profile = base\nexternal_id = ext-9\nregion = us-west-2\n"
    )
    use_env(monkeypatch, fake, static_keys=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # so the profile's region counts
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    ecr = make("ecr", session=boto3.session.Session(profile_name="target"), region_name=None)
    entry = ecr.get_authorization_token()["authorizationData"][0]
    assert entry["proxyEndpoint"] == "https://123456789012.dkr.ecr.us-west-2.amazonaws.com"
    assume, call = fake.requests
    assert (assume.op, assume.access_key_id) == ("sts:AssumeRole", "AKIAFAKEFAKEFAKE0002")
    assert (assume.params["RoleArn"], assume.params["ExternalId"]) == (role, "ext-9")
    assert (call.op, call.access_key_id, call.session_token) == ("ecr", fakeecr.access_key_for_role(role), True)


def test_credential_chain_web_identity_env(
    fake: fakeecr.FakeAWS, make: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("header.payload.signature")
    role = "arn:aws:iam::111122223333:role/irsa"
    use_env(monkeypatch, fake, static_keys=False)
    monkeypatch.setenv("AWS_ROLE_ARN", role)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "pod-1")
    make("ecr", session=boto3.session.Session()).get_authorization_token()
    web, call = fake.requests
    assert (web.op, web.access_key_id, web.params["RoleSessionName"]) == ("sts:AssumeRoleWithWebIdentity", "", "pod-1")
    assert call.access_key_id == fakeecr.access_key_for_role(role)


def test_credential_chain_container(fake: fakeecr.FakeAWS, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, fake, static_keys=False)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", fake.container_uri)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-identity-token")
    fake.add_fault("container", "slow", times=None, delay=0.2)
    started = time.monotonic()
    make("ecr", session=boto3.session.Session()).get_authorization_token()
    assert time.monotonic() - started >= 0.2
    container, call = fake.requests
    assert (container.op, container.method, container.path) == ("container", "GET", "/container-credentials")
    assert container.params == {"authorization": "present"}
    assert container.fault == "slow"
    assert call.access_key_id == fakeecr.access_key_for_role("arn:aws:iam::123456789012:role/fake-container-role")
    assert call.fault is None  # the slow fault is for the container op only
    status, body = raw(fake.container_uri)
    creds = json.loads(body)
    assert status == 200
    assert set(creds) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert datetime.datetime.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ")


def test_credential_chain_imds(fake: fakeecr.FakeAWS, make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_env(monkeypatch, fake, static_keys=False)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.imds_endpoint)
    make("ecr", session=boto3.session.Session()).get_authorization_token()
    ops = [(r.op, r.method, r.path) for r in fake.requests]
    role_path = "/latest/meta-data/iam/security-credentials/"
    assert ops == [
        ("imds", "PUT", "/latest/api/token"),
        ("imds", "GET", role_path),
        ("imds", "GET", role_path + fakeecr.IMDS_ROLE),
        ("ecr", "POST", "/"),
    ]
    assert fake.requests[0].params["ttl"] == "21600"
    assert fake.requests[1].params["imds_token"] == "present"
    assert fake.requests[-1].access_key_id == fakeecr.access_key_for_role(
        "arn:aws:iam::123456789012:role/fake-instance-role"
    )
    assert fake.calls("imds") == 3
    # IMDSv1 (no token) is refused, and so is a token request without a valid TTL.
    assert raw(fake.url + role_path)[0] == 401
    assert raw(fake.url + "/latest/api/token", method="PUT")[0] == 400
    status, token = raw(
        fake.url + "/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "1"}
    )
    assert status == 200
    status, body = raw(fake.url + role_path + fakeecr.IMDS_ROLE, headers={"X-aws-ec2-metadata-token": token.decode()})
    assert status == 200
    assert json.loads(body)["Code"] == "Success"
    assert raw(fake.url + "/latest/meta-data/nothing", headers={"X-aws-ec2-metadata-token": token.decode()})[0] == 404


# -- faults -----------------------------------------------------------------------------------------

JSON_FAULTS = [
    ("throttle", "ThrottlingException", 400),
    ("server-error", "ServerException", 500),
    ("access-denied", "AccessDeniedException", 400),
    ("expired-token", "ExpiredTokenException", 400),
    ("unrecognized-client", "UnrecognizedClientException", 400),
]


@pytest.mark.parametrize("expected", JSON_FAULTS, ids=[f[0] for f in JSON_FAULTS])
@pytest.mark.parametrize("op", ["ecr", "ecr-public", "sso"])
def test_json_error_faults(fake: fakeecr.FakeAWS, make: Any, op: str, expected: tuple[str, str, int]) -> None:
    kind, code, status = expected
    fake.add_fault(op, kind)
    client = make(op)

    def call() -> Any:
        if op == "sso":
            return client.get_role_credentials(roleName="R", accountId="111122223333", accessToken="t")
        return client.get_authorization_token()

    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if kind == "access-denied":
        action = {"ecr": "ecr:GetAuthorizationToken", "ecr-public": "ecr-public:GetAuthorizationToken"}.get(op, "sso:")
        assert action in error["Message"]
    call()  # consumed: normal service resumes
    assert [r.fault for r in fake.requests] == [kind, None]
    assert fake.calls(op) == 2


STS_FAULTS = [
    ("throttle", "Throttling", 400),
    ("server-error", "InternalFailure", 500),
    ("access-denied", "AccessDenied", 403),
    ("expired-token", "ExpiredToken", 400),
    ("unrecognized-client", "InvalidClientTokenId", 403),
]


@pytest.mark.parametrize("expected", STS_FAULTS, ids=[f[0] for f in STS_FAULTS])
def test_sts_error_faults(fake: fakeecr.FakeAWS, make: Any, expected: tuple[str, str, int]) -> None:
    kind, code, status = expected
    fake.add_fault("sts:AssumeRole", kind)
    sts = make("sts")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/R", RoleSessionName="sess")
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if kind == "access-denied":
        assert "sts:AssumeRole" in info.value.response["Error"]["Message"]
    sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/R", RoleSessionName="sess")


def test_sts_family_fault_and_web_identity_codes(fake: fakeecr.FakeAWS, make: Any) -> None:
    fake.add_fault("sts", "expired-token", times=2)
    sts = make("sts")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "ExpiredToken"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sts.assume_role_with_web_identity(
            RoleArn="arn:aws:iam::111122223333:role/R", RoleSessionName="sess", WebIdentityToken="token-abc"
        )
    assert info.value.response["Error"]["Code"] == "ExpiredTokenException"
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_fault_hang_ends_with_read_timeout_and_stop_is_prompt(make: Any) -> None:
    with fakeecr.running_fake() as fake:
        fake.add_fault("ecr", "hang")
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            make("ecr", endpoint_url=fake.url).get_authorization_token()
        assert 0.9 < time.monotonic() - started < 10  # the client's 1 s read timeout, not a hang
        fake.add_fault("ecr", "hang")
        outcome: list[BaseException] = []
        patient = make("ecr", endpoint_url=fake.url, config=Config(read_timeout=30, retries={"total_max_attempts": 1}))

        def hung_call() -> None:
            try:
                patient.get_authorization_token()
            except BaseException as exc:  # the connection is dropped at stop
                outcome.append(exc)

        thread = threading.Thread(target=hung_call, daemon=True)
        thread.start()
        deadline = time.monotonic() + 3
        while fake.calls("ecr") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 10  # the hung handler is released, not waited out (30 s)
        thread.join(5)
        assert not thread.is_alive()
        assert outcome
        assert isinstance(outcome[0], botocore.exceptions.ConnectionClosedError)


def test_fault_reset_closes_connection(fake: fakeecr.FakeAWS, make: Any) -> None:
    fake.add_fault("ecr", "reset")
    client = make("ecr")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.get_authorization_token()
    assert client.get_authorization_token()["authorizationData"]
    fake.add_fault("ecr", "reset")
    assert _raw_ecr_request(fake.port) == "reset"  # RST, not an orderly FIN


def _raw_ecr_request(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        target = fakeecr.ECR_TARGET.encode()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Amz-Target: " + target + b"\r\n\r\n{}")
        try:
            data = sock.recv(100)
        except ConnectionResetError:
            return "reset"
        return "eof" if data == b"" else "answer"


def test_fault_slow_and_latency(fake: fakeecr.FakeAWS, make: Any) -> None:
    client = make("ecr")
    fake.add_fault("ecr", "slow", delay=0.3)
    started = time.monotonic()
    client.get_authorization_token()
    assert time.monotonic() - started >= 0.3
    assert fake.state()["faults"] == {}  # used up by that one call: the next is not slowed
    fake.configure(latency=0.2)
    started = time.monotonic()
    make("sts").get_caller_identity()
    assert time.monotonic() - started >= 0.2
    fake.configure(latency=30.0)
    started = time.monotonic()
    raw(fake.url + "/_fake/state")
    assert time.monotonic() - started < 30  # the control plane is never delayed (whatever the load)
    fake.configure(latency=0.0)


def test_fault_malformed(fake: fakeecr.FakeAWS, make: Any) -> None:
    fake.add_fault("ecr", "malformed")
    # botocore does not raise for an unparsable JSON 200: the result simply lacks authorizationData.
    out = make("ecr").get_authorization_token()
    assert "authorizationData" not in out
    fake.add_fault("sts", "malformed")
    with pytest.raises(botocore.parsers.ResponseParserError):
        make("sts").get_caller_identity()


def test_token_shape_faults(fake: fakeecr.FakeAWS, make: Any) -> None:
    ecr, public = make("ecr"), make("ecr-public")
    fake.add_fault("ecr", "bad-token")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    with pytest.raises(binascii.Error):
        base64.b64decode(token)
    with pytest.raises(binascii.Error):
        base64.b64decode(token, validate=True)
    fake.add_fault("ecr-public", "no-colon")
    token = public.get_authorization_token()["authorizationData"]["authorizationToken"]
    assert b":" not in base64.b64decode(token)
    fake.add_fault("ecr", "empty")
    assert ecr.get_authorization_token()["authorizationData"] == []
    fake.add_fault("ecr-public", "empty")
    assert public.get_authorization_token()["authorizationData"] == {}
    fake.add_fault("ecr", "no-expiry")
    entry = ecr.get_authorization_token()["authorizationData"][0]
    assert "expiresAt" not in entry
    assert password_of(entry["authorizationToken"])
    fake.add_fault("ecr-public", "no-expiry")
    assert set(public.get_authorization_token()["authorizationData"]) == {"authorizationToken"}


def test_fault_queue_order_times_and_forever(fake: fakeecr.FakeAWS, make: Any) -> None:
    client = make("ecr")
    fake.add_fault("ecr", "throttle", times=2)
    fake.add_fault("ecr", "server-error")
    codes = []
    for _ in range(4):
        try:
            client.get_authorization_token()
            codes.append("ok")
        except botocore.exceptions.ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    assert codes == ["ThrottlingException", "ThrottlingException", "ServerException", "ok"]
    fake.add_fault("ecr", "access-denied", times=None)
    for _ in range(3):
        with pytest.raises(botocore.exceptions.ClientError):
            client.get_authorization_token()
    assert fake.state()["faults"] == {"ecr": [{"kind": "access-denied", "times": None, "delay": 0.0}]}
    make("ecr-public").get_authorization_token()  # faults are per op
    fake.clear_faults()
    client.get_authorization_token()
    assert fake.calls("ecr") == 8
    fake.reset()
    assert (fake.calls(), fake.requests, fake.issued, fake.issued_secrets) == (0, [], [], [])


def test_botocore_max_attempts_means_retries(fake: fakeecr.FakeAWS, make: Any) -> None:
    """Documents a trap: retries={"max_attempts": 1} still sends the request twice."""
    fake.add_fault("ecr", "throttle")
    out = make("ecr", config=Config(retries={"max_attempts": 1})).get_authorization_token()
    assert out["ResponseMetadata"]["RetryAttempts"] == 1
    assert fake.calls("ecr") == 2


def test_add_fault_validation(fake: fakeecr.FakeAWS) -> None:
    with pytest.raises(ValueError, match="unknown op"):
        fake.add_fault("s3", "throttle")
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake.add_fault("ecr", "explode")
    with pytest.raises(ValueError, match="only applies"):
        fake.add_fault("sts:AssumeRole", "bad-token")
    with pytest.raises(ValueError, match="times"):
        fake.add_fault("ecr", "throttle", times=0)
    assert set(fakeecr.FAULT_KINDS) >= {"throttle", "hang", "reset", "malformed", "empty", "no-expiry"}


def test_container_and_imds_faults_raw(fake: fakeecr.FakeAWS) -> None:
    fake.add_fault("container", "server-error")
    status, body = raw(fake.container_uri)
    assert status == 500
    assert json.loads(body)["Code"] == "ServerException"
    fake.add_fault("imds", "throttle")
    status, _ = raw(
        fake.url + "/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    assert status == 400
    fake.add_fault("container", "malformed")
    status, body = raw(fake.container_uri)
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert fake.calls("container") == 2


# -- counters, control plane, lifecycle --------------------------------------------------------------


def test_calls_counter_families(fake: fakeecr.FakeAWS, make: Any) -> None:
    make("ecr").get_authorization_token()
    make("ecr-public").get_authorization_token()
    make("sts").get_caller_identity()
    raw(fake.container_uri)
    assert raw(fake.url + "/nowhere")[0] == 404
    assert fake.calls() == 2
    assert fake.calls("ecr") == fake.calls("ecr-public") == fake.calls("sts") == fake.calls("container") == 1
    assert fake.calls("*") == 4
    assert fake.calls("unknown") == 0  # logged, never counted
    assert fake.requests[-1].op == "unknown"


def test_control_plane_in_process(fake: fakeecr.FakeAWS, make: Any) -> None:
    control = fakeecr.FakeAWSClient(fake.url)
    control.configure(password="via-http", token_lifetime=10)
    control.add_fault("ecr", "throttle", times=1)
    ecr = make("ecr")
    with pytest.raises(botocore.exceptions.ClientError):
        ecr.get_authorization_token()
    assert password_of(ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]) == "via-http"
    assert control.calls() == 2
    assert control.calls("ecr") == 2
    state = control.state()
    assert state["calls"] == {"ecr": 2}
    assert state["issued"] == control.issued() == ["via-http"]
    assert [r["fault"] for r in control.requests()] == ["throttle", None]
    assert state["config"]["token_lifetime"] == 10
    with pytest.raises(RuntimeError, match="HTTP 400"):
        control.add_fault("ecr", "explode")
    with pytest.raises(RuntimeError, match="HTTP 400"):
        control.configure(bogus=1)
    control.add_fault("ecr", "slow", times=None, delay=0.01)
    control.clear_faults()
    control.reset()
    assert fake.calls("*") == 0
    assert fake.requests == []
    assert control.env() == fake.env()


def test_env_lists_every_variable(fake: fakeecr.FakeAWS) -> None:
    env = fake.env()
    for name in ("AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_ECR_PUBLIC", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SSO"):
        assert env[name] == fake.url
    assert env["AWS_ACCESS_KEY_ID"] == "AKIAFAKEFAKEFAKE0001"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert fake.url.startswith("http://127.0.0.1:")


def test_lifecycle_and_port_reuse(make: Any) -> None:
    fake = fakeecr.FakeAWS()
    with fake:
        port = fake.port
        client = make("ecr", endpoint_url=fake.url)
        client.get_authorization_token()  # leaves a kept-alive connection open
        assert fake.start() is fake
    fake.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fakeecr.FakeAWS(port=port) as again:
        assert again.port == port
        assert make("ecr", endpoint_url=again.url).get_authorization_token()["authorizationData"]


def _start_standalone(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_PY), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


def _stop_standalone(proc: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)  # raises if the signal did not stop it
    return proc.returncode, out, err


def test_standalone_process_and_remote_control(make: Any, tmp_path: Path) -> None:
    ready, env_file = tmp_path / "ready", tmp_path / "env.sh"
    proc, line = _start_standalone(
        "--password", "pw-e2e", "--lifetime", "120", "--ready-file", str(ready), "--env-file", str(env_file)
    )
    try:
        assert line.startswith("FAKE_AWS_URL=http://127.0.0.1:")
        url = line.strip().split("=", 1)[1]
        assert ready.read_text().strip() == url
        exported = dict(shlex.split(x)[1].split("=", 1) for x in env_file.read_text().splitlines())
        assert exported["AWS_ENDPOINT_URL_ECR"] == url
        control = fakeecr.FakeAWSClient(url)
        ecr = make("ecr", endpoint_url=url)
        entry = ecr.get_authorization_token()["authorizationData"][0]
        assert password_of(entry["authorizationToken"]) == "pw-e2e"
        assert 100 < entry["expiresAt"].timestamp() - time.time() <= 121
        control.add_fault("ecr", "throttle")
        with pytest.raises(botocore.exceptions.ClientError) as info:
            ecr.get_authorization_token()
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert control.calls() == 2
        control.configure(password=None, password_length=20)
        password = password_of(ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"])
        assert control.issued()[-1] == password
        assert len(password) == 20
        control.reset()
        assert control.calls("*") == 0
    finally:
        code, out, err = _stop_standalone(proc, signal.SIGTERM)
    assert code == 0
    assert out == ""
    assert err == ""  # quiet: no request log


def test_standalone_print_env_and_sigint(tmp_path: Path) -> None:
    proc, first = _start_standalone("--print-env", "--latency", "0")
    try:
        assert first.startswith("export ")
        lines = [first]
        while len(lines) < len(fakeecr.env_for("http://x")):
            assert proc.stdout is not None
            lines.append(proc.stdout.readline())
        env = dict(shlex.split(x)[1].split("=", 1) for x in lines)
        url = env["AWS_ENDPOINT_URL_ECR"]
        assert env == fakeecr.env_for(url)
        assert fakeecr.FakeAWSClient(url).calls() == 0
    finally:
        code, _, err = _stop_standalone(proc, signal.SIGINT)
    assert code == 0
    assert err == ""
