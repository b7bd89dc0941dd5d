"""aws.py: the real botocore client against the local fake, endpoint selection, and error lines."""

from __future__ import annotations

import base64

import pytest

from docker_credential_ecr import aws, registry
from docker_credential_ecr.errors import TokenFetchError
from fakeecr import FakeAWS


def reg(host: str) -> registry.Registry:
    parsed = registry.parse(host)
    assert parsed is not None
    return parsed


@pytest.fixture
def environ(fake: FakeAWS, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    return fake.env()


def test_ecr_token_from_the_fake(fake: FakeAWS, environ: dict[str, str]) -> None:
    fake.configure(token_lifetime=3600)
    token = aws.fetch_token(reg("123456789012.dkr.ecr.eu-west-1.amazonaws.com"), environ=environ)
    assert token.username == "AWS"
    assert token.password == fake.issued[-1]
    assert 3590 < token.expires_at - token.issued_at <= 3601  # issued_at is taken before the request
    (request,) = fake.requests
    assert (request.op, request.region, request.access_key_id) == ("ecr", "eu-west-1", environ["AWS_ACCESS_KEY_ID"])
    assert "docker-credential-ecr/" in request.user_agent
    assert token.password not in repr(token)


def test_ecr_public_always_us_east_1(fake: FakeAWS, environ: dict[str, str]) -> None:
    token = aws.fetch_token(reg("public.ecr.aws"), environ=environ)
    assert token.password == fake.issued[-1]
    (request,) = fake.requests
    assert (request.op, request.region) == ("ecr-public", "us-east-1")


def test_fips_and_dualstack_hosts_with_endpoint_override_use_the_override(
    fake: FakeAWS, environ: dict[str, str]
) -> None:
    for host in ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "123456789012.dkr-ecr.us-east-1.on.aws"):
        aws.fetch_token(reg(host), environ=environ)
    assert fake.calls("ecr") == 2


@pytest.mark.parametrize(
    ("host", "endpoint"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", "https://api.ecr.us-east-1.amazonaws.com"),
        ("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "https://api.ecr-fips.us-east-1.amazonaws.com"),
        ("123456789012.dkr-ecr.us-east-1.on.aws", "https://ecr.us-east-1.api.aws"),
        ("123456789012.dkr-ecr-fips.us-west-2.on.aws", "https://ecr-fips.us-west-2.api.aws"),
        ("123456789012.dkr.ecr.us-west-2.on.aws", "https://ecr.us-west-2.api.aws"),
        ("123456789012.dkr-ecr.us-west-2.amazonaws.com", "https://api.ecr.us-west-2.amazonaws.com"),
        (
            "210987654321.dkr.ecr.cn-north-1.on.amazonwebservices.com.cn",
            "https://ecr.cn-north-1.api.amazonwebservices.com.cn",
        ),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "https://api.ecr.cn-north-1.amazonaws.com.cn"),
        ("123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", "https://api.ecr.us-gov-west-1.amazonaws.com"),
        ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "https://api.ecr.us-iso-east-1.c2s.ic.gov"),
        ("public.ecr.aws", "https://api.ecr-public.us-east-1.amazonaws.com"),
        ("ecr-public.aws.com", "https://ecr-public.us-east-1.api.aws"),
    ],
)
@pytest.mark.usefixtures("static_keys")
def test_endpoint_selection_without_override(host: str, endpoint: str) -> None:
    """Which endpoint a real request would go to (resolved by botocore's rules; nothing is sent)."""
    r = reg(host)
    client = aws.make_client(r, aws.make_session(), {})
    captured: list[str] = []

    def stop(request: object, **kwargs: object) -> dict[str, object]:
        captured.append(request.url)  # type: ignore[attr-defined]
        raise _Sent

    client.meta.events.register("before-send", stop)
    with pytest.raises(_Sent):
        client.get_authorization_token()
    # botocore before 1.40.73 names us-east-1's other FIPS endpoint (ECR has both): the dependency floor.
    older = {"https://api.ecr-fips.us-east-1.amazonaws.com": "https://ecr-fips.us-east-1.amazonaws.com"}
    assert any(captured[0].startswith(e + "/") for e in (endpoint, older.get(endpoint, endpoint))), captured[0]


class _Sent(Exception):
    pass


@pytest.fixture
def static_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")


@pytest.mark.parametrize(
    ("encoded", "ok"),
    [
        (base64.b64encode(b"AWS:pass:with:colons").decode(), True),
        (base64.b64encode(b"nocolon").decode(), False),
        (base64.b64encode(b":nouser").decode(), False),
        (base64.b64encode(b"AWS:").decode(), False),
        ("***", False),
        (None, False),
        (base64.b64encode(b"\xff\xfe:x").decode(), False),
    ],
)
def test_decode_token(encoded: object, ok: bool) -> None:
    if ok:
        assert aws.decode_token(encoded) == ("AWS", "pass:with:colons")
    else:
        with pytest.raises(TokenFetchError):
            aws.decode_token(encoded)


FAULTS = [
    ("access-denied", "access denied: environment access key AKIA…0001 may not call ecr:GetAuthorizationToken"),
    ("expired-token", "have expired: refresh them and retry"),
    ("unrecognized-client", "AWS rejected the credentials (environment access key AKIA…0001)"),
    ("malformed", "GetAuthorizationToken returned no authorization data"),
    ("bad-token", "not base64 'user:password'"),
    ("empty", "returned no authorization data"),
]


@pytest.mark.parametrize(("kind", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_failures_become_one_actionable_line(fake: FakeAWS, environ: dict[str, str], kind: str, expected: str) -> None:
    fake.add_fault("ecr", kind)
    with pytest.raises(TokenFetchError) as info:
        aws.fetch_token(reg("123456789012.dkr.ecr.us-east-1.amazonaws.com"), environ=environ)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert environ["AWS_SECRET_ACCESS_KEY"] not in message


def test_throttling_is_retried(fake: FakeAWS, environ: dict[str, str]) -> None:
    fake.add_fault("ecr", "throttle", times=2)
    token = aws.fetch_token(reg("123456789012.dkr.ecr.us-east-1.amazonaws.com"), environ=environ)
    assert token.password == fake.issued[-1]
    assert fake.calls("ecr") == 3


def test_a_lasting_fault_costs_three_attempts_in_all(fake: FakeAWS, environ: dict[str, str]) -> None:
    fake.add_fault("ecr", "server-error", times=None)
    with pytest.raises(TokenFetchError, match="ServerException"):
        aws.fetch_token(reg("123456789012.dkr.ecr.us-east-1.amazonaws.com"), environ=environ)
    assert fake.calls("ecr") == aws.MAX_ATTEMPTS == 3


def test_no_expiry_assumes_an_hour(fake: FakeAWS, environ: dict[str, str]) -> None:
    fake.add_fault("ecr", "no-expiry")
    token = aws.fetch_token(reg("123456789012.dkr.ecr.us-east-1.amazonaws.com"), environ=environ)
    assert token.expires_at - token.issued_at == 3600.0


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch, static_keys: None) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9")
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)
    with pytest.raises(TokenFetchError, match=r"cannot reach the ECR \(us-east-1\) endpoint"):
        aws.fetch_token(reg("123456789012.dkr.ecr.us-east-1.amazonaws.com"), environ={})


def test_no_credentials(fake: FakeAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", fake.url)
    with pytest.raises(TokenFetchError, match="no AWS credentials found"):
        aws.fetch_token(reg("123456789012.dkr.ecr.us-east-1.amazonaws.com"), environ={})
    assert fake.calls() == 0


def test_missing_profile(fake: FakeAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", fake.url)
    with pytest.raises(TokenFetchError, match="AWS profile 'nope' is not in the AWS config"):
        aws.fetch_token(reg("123456789012.dkr.ecr.us-east-1.amazonaws.com"), environ={}, profile="nope")
