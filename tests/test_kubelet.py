"""The kubelet image credential provider: `docker-credential-ecr-login kubelet` and `ecr-credential-provider`.

Request/response fixtures for every API version (tests/fixtures/kubelet/<version>/) run through both
installed console scripts against the local fake ECR (and its STS for the service account token
path). Units: the Go duration formatter, the image -> registry rule, request validation, and the
web-identity principal.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docker_credential_ecr import kubelet
from docker_credential_ecr.errors import CredentialsNotFoundError
from fakeecr import DEFAULT_ACCESS_KEY_ID, FakeAWS, access_key_for_role
from support import ECR_HOST, WEST_HOST, get_ok, helper_exe, run_helper
from world import World

FIXTURES = Path(__file__).parent / "fixtures" / "kubelet"
VERSIONS = ("v1", "v1beta1", "v1alpha1")
CASES = ("private-tag", "private-digest", "public", "not-ecr", "docker-hub")
GROUP = "credentialprovider.kubelet.k8s.io"
PASSWORD = "fixture-password"
ROLE = "arn:aws:iam::123456789012:role/team-puller"
OTHER_ROLE = "arn:aws:iam::123456789012:role/other-puller"
IMAGE = f"{ECR_HOST}/team/app:1.2.3"
NOW = 1_800_000_000.0


# -- helpers ---------------------------------------------------------------------------------------
def provider(request: object, env: dict[str, str], *, script: str = "kubelet") -> subprocess.CompletedProcess[str]:
    """Run one script: "kubelet" (docker-credential-ecr-login kubelet) or "provider" (ecr-credential-provider)."""
    data = request if isinstance(request, (str, bytes)) else json.dumps(request)
    if script == "provider":
        return run_helper([], env, data, exe=helper_exe("ecr-credential-provider"))
    return run_helper(["kubelet"], env, data)


def answer_of(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """A successful exchange: exit 0, one JSON line on stdout, nothing on stderr."""
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stderr == ""
    assert proc.stdout.endswith("\n")
    assert proc.stdout.count("\n") == 1
    answer: dict[str, object] = json.loads(proc.stdout)
    return answer


def failure_of(proc: subprocess.CompletedProcess[str], exit_code: int = 1) -> str:
    """A refused exchange: the exit code, nothing on stdout, exactly one line on stderr; returns it."""
    assert proc.returncode == exit_code, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ERROR: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string, as time.ParseDuration reads it (enough for these tests)."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("-+")
    if body == "0":
        return 0.0
    parts = _GO_PART.findall(body)
    assert parts, text
    assert "".join(n + u for n, u in parts) == body, f"not a Go duration: {text!r}"
    return sign * sum(float(n) * _GO_UNITS[u] for n, u in parts)


def load(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_matches_fixture(answer: dict[str, object], expected: dict[str, object]) -> None:
    """Equal to the fixture, but cacheDuration may be a second or two shorter (time passes)."""
    got, want = dict(answer), dict(expected)
    assert list(got) == list(want)  # field order too: apiVersion, kind, cacheKeyType, cacheDuration, auth
    got_duration = parse_go_duration(str(got.pop("cacheDuration")))
    want_duration = parse_go_duration(str(want.pop("cacheDuration")))
    assert want_duration - 3 <= got_duration <= want_duration
    assert got == want


def jwt(claims: dict[str, object], signature: str = "c2lnbmF0dXJlLW5vdC1yZWFsLWF0LWFsbC0xMjM0NTY3OA") -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'test'})}.{part(claims)}.{signature}"


def sa_claims(
    namespace: str = "team", name: str = "puller", uid: str = "sa-uid-1", pod: str = "p-1"
) -> dict[str, object]:
    return {
        "aud": ["sts.amazonaws.com"],
        "iss": "https://oidc.example.test/id/CLUSTER",
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io": {"namespace": namespace, "pod": {"uid": pod}, "serviceaccount": {"name": name, "uid": uid}},
    }


def sa_request(token: str, role: str | None = ROLE, image: str = IMAGE) -> dict[str, object]:
    request: dict[str, object] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "CredentialProviderRequest",
        "image": image,
        "serviceAccountToken": token,
    }
    if role is not None:
        request["serviceAccountAnnotations"] = {kubelet.ROLE_ANNOTATION: role}
    return request


def plain_request(image: str = IMAGE, version: str = "v1") -> dict[str, object]:
    return {"apiVersion": f"{GROUP}/{version}", "kind": "CredentialProviderRequest", "image": image}


def ecr_keys(fake: FakeAWS) -> list[str]:
    """The access key of every ECR call, in order."""
    return [r.access_key_id for r in fake.requests if r.op == "ecr"]


def files_text(directory: Path) -> str:
    return "\n".join(p.read_text("utf-8", "replace") for p in directory.rglob("*") if p.is_file())


@pytest.fixture
def fixed(fake: FakeAWS) -> FakeAWS:
    fake.configure(password=PASSWORD)
    return fake


# -- cacheDuration: Go's time.Duration.String() ----------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(1, "1s", id="1s"),
        pytest.param(59, "59s", id="59s"),
        pytest.param(60, "1m0s", id="1m"),
        pytest.param(90, "1m30s", id="90s"),
        pytest.param(3600, "1h0m0s", id="1h"),
        pytest.param(21600, "6h0m0s", id="6h"),
        pytest.param(21570, "5h59m30s", id="5h59m30s"),
        pytest.param(43200, "12h0m0s", id="12h"),
        pytest.param(360000, "100h0m0s", id="no-days"),
        pytest.param(1.5, "1.5s", id="fraction"),
        pytest.param(3600.25, "1h0m0.25s", id="hours-and-fraction"),
        pytest.param(0.5, "500ms", id="ms"),
        pytest.param(0.0015, "1.5ms", id="fractional-ms"),
        pytest.param(2e-6, "2µs", id="us"),
        pytest.param(7e-9, "7ns", id="ns"),
        pytest.param(-90, "-1m30s", id="negative"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert kubelet.go_duration(seconds) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_go_duration_reads_back(nanos: int) -> None:
    text = kubelet.go_duration(nanos / 1e9)
    assert parse_go_duration(text) == pytest.approx(nanos / 1e9, abs=1e-9, rel=1e-12)


@pytest.mark.parametrize(
    ("remaining", "text"),
    [
        pytest.param(43200, "6h0m0s", id="new-12h-token"),
        pytest.param(43199.8, "6h0m0s", id="rounds-to-the-second"),
        pytest.param(43140, "5h59m30s", id="a-minute-old"),
        pytest.param(120, "1m0s", id="stale"),
        pytest.param(1, "0s", id="almost-gone"),
        pytest.param(0, "0s", id="expired-now"),
        pytest.param(-600, "0s", id="expired"),
    ],
)
def test_cache_duration_is_half_the_remaining_life(remaining: float, text: str) -> None:
    assert kubelet.cache_duration(NOW + remaining, NOW) == text


# -- which registry an image names -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "host"),
    [
        pytest.param(f"{ECR_HOST}/repo:tag", ECR_HOST, id="tag"),
        pytest.param(f"{ECR_HOST}/team/repo@sha256:{'0' * 64}", ECR_HOST, id="digest"),
        pytest.param(f"{ECR_HOST}/repo", ECR_HOST, id="bare"),
        pytest.param(f"{ECR_HOST}:443/repo:tag", f"{ECR_HOST}:443", id="port-kept"),
        pytest.param("public.ecr.aws/team/repo:1", "public.ecr.aws", id="public"),
        pytest.param("localhost/repo", "localhost", id="localhost"),
        pytest.param("registry:5000/repo", "registry:5000", id="port-no-dot"),
        pytest.param("nginx", None, id="hub-short"),
        pytest.param("nginx:1.27", None, id="hub-tag"),
        pytest.param("library/nginx:1.27", None, id="hub-namespace"),
        pytest.param("/repo", None, id="empty-host"),
    ],
)
def test_registry_host(image: str, host: str | None) -> None:
    assert kubelet.registry_host(image) == host


# -- request validation (units; the subprocess tests below cover the same files end to end) -------
MALFORMED = {
    "not-json.txt": "request is not JSON",
    "truncated.json": "request is not JSON",
    "array.json": "not an object",
    "wrong-kind.json": 'request has kind "CredentialProviderResponse"; expected kind CredentialProviderRequest',
    "no-kind.json": "request has no kind",
    "unknown-api-version.json": f'unsupported apiVersion "{GROUP}/v2"; expected one of {GROUP}/v1, ',
    "other-group.json": 'unsupported apiVersion "client.authentication.k8s.io/v1"',
    "no-api-version.json": "request has no apiVersion",
    "missing-image.json": "request has no image",
    "empty-image.json": "request has no image",
    "image-not-string.json": "request's image is not a string",
    "token-not-string.json": "serviceAccountToken is not a string",
    "annotations-not-map.json": "serviceAccountAnnotations is not a map of strings",
}


def test_every_malformed_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in (FIXTURES / "malformed").iterdir()) == sorted(MALFORMED)


@pytest.mark.parametrize(("name", "message"), [pytest.param(n, m, id=n) for n, m in MALFORMED.items()])
def test_parse_request_rejects(name: str, message: str) -> None:
    with pytest.raises(kubelet.RequestError) as caught:
        kubelet.parse_request((FIXTURES / "malformed" / name).read_bytes())
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "no CredentialProviderRequest on stdin", id="empty"),
        pytest.param(b" \n\t", "no CredentialProviderRequest on stdin", id="blank"),
        pytest.param(b"\xff\xfe{}", "not UTF-8", id="not-utf8"),
        pytest.param(b"[" * 100_000, "not JSON", id="deeply-nested"),
        pytest.param(b"x" * (kubelet.MAX_REQUEST_BYTES + 1), "larger than 1024 KiB", id="huge"),
        pytest.param(b'{"apiVersion": 1, "kind": "CredentialProviderRequest"}', "no apiVersion", id="version-number"),
        pytest.param(
            json.dumps({**plain_request(), "image": " \t"}).encode(),
            "request has no image",
            id="blank-image",
        ),
    ],
)
def test_parse_request_rejects_bytes(data: bytes, message: str) -> None:
    with pytest.raises(kubelet.RequestError, match=re.escape(message)):
        kubelet.parse_request(data)


def test_parse_request_ignores_unknown_fields_and_hides_the_token() -> None:
    body = {**sa_request("secret-token-value-123"), "futureField": {"x": 1}, "metadata": {}}
    request = kubelet.parse_request(json.dumps(body).encode())
    assert (request.api_version, request.image) == (f"{GROUP}/v1", IMAGE)
    assert request.annotations == {kubelet.ROLE_ANNOTATION: ROLE}
    assert "secret-token-value-123" not in repr(request)


def test_parse_request_accepts_null_optional_fields() -> None:
    body = {**plain_request(), "serviceAccountToken": None, "serviceAccountAnnotations": None}
    request = kubelet.parse_request(json.dumps(body).encode())
    assert (request.service_account_token, request.annotations) == ("", {})


# -- fixtures, every version, both scripts, against the fake ---------------------------------------
@pytest.mark.parametrize("script", ["kubelet", "provider"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_fixture(case: str, version: str, script: str, env: dict[str, str], fixed: FakeAWS) -> None:
    request = (FIXTURES / version / f"{case}.request.json").read_text(encoding="utf-8")
    expected = load(FIXTURES / version / f"{case}.response.json")
    answer = answer_of(provider(request, env, script=script))
    assert answer["apiVersion"] == f"{GROUP}/{version}"  # the kubelet refuses any other version back
    assert_matches_fixture(answer, expected)
    calls = 1 if expected["auth"] else 0
    assert fixed.calls() == calls


def test_fixture_versions_are_complete() -> None:
    for version in VERSIONS:
        names = {p.name for p in (FIXTURES / version).iterdir()}
        for case in CASES:
            assert {f"{case}.request.json", f"{case}.response.json"} <= names, (version, case)


def test_public_token_comes_from_ecr_public(env: dict[str, str], fixed: FakeAWS) -> None:
    answer_of(provider(plain_request("public.ecr.aws/team/app:1"), env))
    assert (fixed.calls("ecr-public"), fixed.calls("ecr")) == (1, 0)


def test_port_in_the_image_is_kept_in_the_key(env: dict[str, str], fixed: FakeAWS) -> None:
    answer = answer_of(provider(plain_request(f"{ECR_HOST}:443/team/app:1"), env))
    assert list(answer["auth"]) == [f"{ECR_HOST}:443"]  # type: ignore[call-overload]


# -- the cache: shared with `get`, single-flight, hits never call AWS ------------------------------
def test_cache_hit_does_not_call_aws(env: dict[str, str], fixed: FakeAWS) -> None:
    first = answer_of(provider(plain_request(), env))
    assert fixed.calls() == 1
    for version in VERSIONS:
        again = answer_of(provider(plain_request(f"{ECR_HOST}/other/repo@sha256:{'1' * 64}", version), env))
        assert again["auth"] == first["auth"]
    answer_of(provider(plain_request(), env, script="provider"))
    assert fixed.calls() == 1


def test_same_cache_as_get(env: dict[str, str], fixed: FakeAWS) -> None:
    got = get_ok(env, ECR_HOST)
    answer = answer_of(provider(plain_request(), env))
    assert answer["auth"] == {ECR_HOST: {"username": "AWS", "password": got["Secret"]}}
    assert fixed.calls() == 1
    answer_of(provider(plain_request(f"{WEST_HOST}/app:1"), env))  # another region: another token
    get_ok(env, WEST_HOST)
    assert fixed.calls() == 2


def test_single_flight_across_processes(env: dict[str, str], fixed: FakeAWS) -> None:
    fixed.configure(latency=0.5)
    data = json.dumps(plain_request()).encode()
    procs = [
        subprocess.Popen(
            [helper_exe(), "kubelet"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(data, timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, outputs
    assert {json.loads(out)["auth"][ECR_HOST]["password"] for out, _ in outputs} == {PASSWORD}
    assert fixed.calls() == 1


def test_disabled_cache_still_answers(env: dict[str, str], fixed: FakeAWS) -> None:
    env = {**env, "AWS_ECR_DISABLE_CACHE": "1"}
    answer_of(provider(plain_request(), env))
    answer_of(provider(plain_request(), env))
    assert fixed.calls() == 2


def test_token_lifetime_sets_cache_duration(env: dict[str, str], fixed: FakeAWS) -> None:
    fixed.configure(token_lifetime=3600)
    answer = answer_of(provider(plain_request(), env))
    assert 1797 <= parse_go_duration(str(answer["cacheDuration"])) <= 1800


# -- failures: non-zero, one line on stderr, nothing on stdout --------------------------------------
def test_aws_failure_is_an_error_for_the_kubelet(env: dict[str, str], fixed: FakeAWS) -> None:
    fixed.add_fault("ecr", "access-denied", times=None)
    line = failure_of(provider(plain_request(), env))
    assert "access denied" in line
    assert "ecr:GetAuthorizationToken" in line


def test_failed_refresh_serves_the_cached_token(env: dict[str, str], fixed: FakeAWS) -> None:
    fixed.configure(token_lifetime=600)  # refreshed after 5 minutes, usable for 10
    answer_of(provider(plain_request(), env))
    # Make the cached token half-spent by moving its issue time back (clock injection is for units).
    cache_file = Path(env["AWS_ECR_CACHE_DIR"]) / "cache.json"
    doc = json.loads(cache_file.read_text())
    for entry in doc["entries"].values():
        entry["issued_at"] -= 1000  # midpoint of issue and expiry now behind us
    cache_file.write_text(json.dumps(doc))
    fixed.add_fault("ecr", "server-error", times=None)
    proc = provider(plain_request(), env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["auth"][ECR_HOST]["password"] == PASSWORD
    assert proc.stderr.startswith("WARNING: ")
    assert "using the cached token" in proc.stderr


@pytest.mark.parametrize(("name", "message"), [pytest.param(n, m, id=n) for n, m in MALFORMED.items()])
@pytest.mark.parametrize("script", ["kubelet", "provider"])
def test_malformed_fixture(name: str, message: str, script: str, env: dict[str, str], fake: FakeAWS) -> None:
    line = failure_of(provider((FIXTURES / "malformed" / name).read_bytes(), env, script=script))
    assert message in line
    assert fake.calls("*") == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "no CredentialProviderRequest on stdin", id="empty"),
        pytest.param(b"{" * (2 << 20), "larger than 1024 KiB", id="huge"),
        pytest.param(b"\x00\xff" * 100, "not UTF-8", id="binary"),
    ],
)
def test_malformed_input(data: bytes, message: str, env: dict[str, str], fake: FakeAWS) -> None:
    assert message in failure_of(provider(data, env))
    assert fake.calls("*") == 0


def test_closed_stdin(env: dict[str, str], fake: FakeAWS) -> None:
    proc = run_helper(["kubelet"], env, None)
    assert "no CredentialProviderRequest" in failure_of(proc)


def test_help_version_and_arguments(env: dict[str, str]) -> None:
    for args in (["--help"], ["-h"]):
        proc = run_helper(args, env, exe=helper_exe("ecr-credential-provider"))
        assert proc.returncode == 0
        assert "CredentialProviderRequest" in proc.stdout
        assert kubelet.ROLE_ANNOTATION in proc.stdout
    proc = run_helper(["kubelet", "--version"], env)
    assert proc.returncode == 0
    assert proc.stdout.startswith("docker-credential-ecr-login (docker-credential-ecr) ")
    line = failure_of(run_helper(["kubelet", "get-credentials"], env, "{}"), exit_code=2)
    assert "unexpected argument 'get-credentials'" in line


# -- the service account token path: AssumeRoleWithWebIdentity -------------------------------------
def test_web_identity_fixture(env: dict[str, str], fixed: FakeAWS, cache_dir: Path) -> None:
    request = load(FIXTURES / "v1" / "web-identity.request.json")
    proc = provider(request, env, script="provider")
    answer = answer_of(proc)
    assert_matches_fixture(answer, load(FIXTURES / "v1" / "web-identity.response.json"))
    sts = [r for r in fixed.requests if r.op == "sts:AssumeRoleWithWebIdentity"]
    assert len(sts) == 1
    assert sts[0].access_key_id == ""  # unsigned: the node's credentials are neither resolved nor sent
    assert sts[0].params["RoleArn"] == request["serviceAccountAnnotations"][kubelet.ROLE_ANNOTATION]  # type: ignore[index]
    assert sts[0].params["RoleSessionName"] == "team.puller"
    assert ecr_keys(fixed) == [access_key_for_role(ROLE)]
    # Nothing secret on disk or in the output: not the service account token, not the role's credentials.
    token = str(request["serviceAccountToken"])
    on_disk = files_text(cache_dir)
    for secret in (token, token.split(".")[1], token.split(".")[2], *fixed.issued_secrets):
        assert secret not in on_disk
        assert secret not in proc.stdout + proc.stderr
    assert access_key_for_role(ROLE) not in on_disk


def test_web_identity_cache_hit_for_the_same_service_account(env: dict[str, str], fixed: FakeAWS) -> None:
    first = answer_of(provider(sa_request(jwt(sa_claims(pod="p-1"))), env))
    # A fresh token for another pod of the same service account: the cached token, no call at all.
    second = answer_of(
        provider(sa_request(jwt(sa_claims(pod="p-2"), signature="b3RoZXItc2lnbmF0dXJlLTEyMzQ1Njc4")), env)
    )
    assert first["auth"] == second["auth"]
    assert fixed.calls("*") == 2  # one STS, one ECR


def test_web_identity_never_shares_tokens_with_the_node(env: dict[str, str], fixed: FakeAWS) -> None:
    answer_of(provider(plain_request(), env))  # the node's own token is now cached
    answer_of(provider(sa_request(jwt(sa_claims())), env))
    answer_of(provider(plain_request(), env))  # and stays the node's
    answer_of(provider(sa_request(jwt(sa_claims())), env))
    assert ecr_keys(fixed) == [DEFAULT_ACCESS_KEY_ID, access_key_for_role(ROLE)]
    assert fixed.calls("sts:AssumeRoleWithWebIdentity") == 1


def test_web_identity_another_service_account_goes_to_sts(env: dict[str, str], fixed: FakeAWS) -> None:
    """Same role, another service account: STS must judge it (the trust policy may not admit it)."""
    answer_of(provider(sa_request(jwt(sa_claims(name="puller"))), env))
    answer_of(provider(sa_request(jwt(sa_claims(name="intruder"))), env))
    answer_of(provider(sa_request(jwt(sa_claims(uid="sa-uid-recreated"))), env))  # deleted and recreated
    assert fixed.calls("sts:AssumeRoleWithWebIdentity") == 3
    sessions = [r.params["RoleSessionName"] for r in fixed.requests if r.op.startswith("sts:")]
    assert sessions == ["team.puller", "team.intruder", "team.puller"]


def test_web_identity_another_role(env: dict[str, str], fixed: FakeAWS) -> None:
    answer_of(provider(sa_request(jwt(sa_claims()), role=ROLE), env))
    answer_of(provider(sa_request(jwt(sa_claims()), role=OTHER_ROLE), env))
    assert ecr_keys(fixed) == [access_key_for_role(ROLE), access_key_for_role(OTHER_ROLE)]


def test_web_identity_role_from_environment(env: dict[str, str], fixed: FakeAWS) -> None:
    env = {**env, kubelet.ROLE_ENV: OTHER_ROLE}
    answer_of(provider(sa_request(jwt(sa_claims()), role=None), env))
    answer_of(provider(sa_request(jwt(sa_claims()), role=ROLE), env))  # the annotation wins
    assert ecr_keys(fixed) == [access_key_for_role(OTHER_ROLE), access_key_for_role(ROLE)]


def test_token_without_a_role_uses_the_node(env: dict[str, str], fixed: FakeAWS) -> None:
    answer_of(provider(sa_request(jwt(sa_claims()), role=None), env))
    assert ecr_keys(fixed) == [DEFAULT_ACCESS_KEY_ID]
    assert fixed.calls("sts") == 0


def test_opaque_token_is_keyed_by_its_hash(env: dict[str, str], fixed: FakeAWS, cache_dir: Path) -> None:
    token = "opaque-token-" + "z" * 40
    answer_of(provider(sa_request(token), env))
    answer_of(provider(sa_request(token), env))
    answer_of(provider(sa_request(token + "-rotated"), env))
    assert fixed.calls("sts:AssumeRoleWithWebIdentity") == 2
    assert token not in files_text(cache_dir)


def test_web_identity_is_single_flight(env: dict[str, str], fixed: FakeAWS) -> None:
    fixed.configure(latency=0.3)
    data = json.dumps(sa_request(jwt(sa_claims()))).encode()
    procs = [
        subprocess.Popen(
            [helper_exe("ecr-credential-provider")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(data, timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert fixed.calls("sts:AssumeRoleWithWebIdentity") == 1
    assert fixed.calls("ecr") == 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        pytest.param("access-denied", "STS refused AssumeRoleWithWebIdentity for " + ROLE, id="denied"),
        pytest.param("unrecognized-client", "STS rejected the service account token for " + ROLE, id="bad-token"),
        pytest.param("expired-token", "the service account token for " + ROLE + " has expired", id="expired"),
    ],
)
def test_web_identity_sts_failure(kind: str, message: str, env: dict[str, str], fixed: FakeAWS) -> None:
    fixed.add_fault("sts:AssumeRoleWithWebIdentity", kind, times=None)
    token = jwt(sa_claims())
    proc = provider(sa_request(token), env)
    line = failure_of(proc)
    assert message in line
    assert token not in proc.stderr
    assert token.split(".")[2] not in proc.stderr
    assert fixed.calls("ecr") == 0


def test_web_identity_ecr_failure_names_the_role(env: dict[str, str], fixed: FakeAWS) -> None:
    fixed.add_fault("ecr", "access-denied", times=None)
    line = failure_of(provider(sa_request(jwt(sa_claims())), env))
    assert f"web identity role {ROLE}" in line
    assert DEFAULT_ACCESS_KEY_ID[-4:] not in line


def test_web_identity_bad_role_arn(env: dict[str, str], fixed: FakeAWS) -> None:
    line = failure_of(provider(sa_request(jwt(sa_claims()), role="team-puller"), env))
    assert f"annotation {kubelet.ROLE_ANNOTATION} is not an IAM role ARN" in line
    assert fixed.calls("*") == 0


def test_web_identity_not_ecr_is_not_an_error(env: dict[str, str], fixed: FakeAWS) -> None:
    answer = answer_of(provider(sa_request(jwt(sa_claims()), role="not-an-arn", image="ghcr.io/o/app:1"), env))
    assert (answer["auth"], answer["cacheDuration"]) == ({}, "0s")
    assert fixed.calls("*") == 0


# -- in-process units for the web-identity principal -----------------------------------------------
def test_principal_separates_node_roles_and_service_accounts(world: World) -> None:
    settings = world.settings()

    def ask(request: dict[str, object]) -> str:
        parsed = kubelet.parse_request(json.dumps(request).encode())
        answer = kubelet.provide(parsed, settings, clock=lambda: world.now, fetch=world.fetch)
        return str(answer["auth"][ECR_HOST]["password"])

    node = ask(plain_request())
    a = ask(sa_request(jwt(sa_claims(name="a"))))
    b = ask(sa_request(jwt(sa_claims(name="b"))))
    a_other_role = ask(sa_request(jwt(sa_claims(name="a")), role=OTHER_ROLE))
    assert len({node, a, b, a_other_role}) == 4
    assert ask(sa_request(jwt(sa_claims(name="a"), signature="YW5vdGhlci1zaWduYXR1cmUtMTIzNDU2"))) == a
    assert ask(plain_request()) == node
    assert len(world.calls) == 4


def test_not_ours_is_an_empty_answer_and_failures_raise(world: World) -> None:
    settings = world.settings(AWS_ECR_DISABLE_CACHE="1")
    request = kubelet.parse_request(json.dumps(plain_request("quay.io/o/app:1", "v1alpha1")).encode())
    assert kubelet.provide(request, settings, clock=lambda: world.now, fetch=world.fetch) == {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "CredentialProviderResponse",
        "cacheKeyType": "Registry",
        "cacheDuration": "0s",
        "auth": {},
    }
    assert world.calls == []

    world.fail = "ECR (us-east-1): no route"
    request = kubelet.parse_request(json.dumps(plain_request()).encode())
    with pytest.raises(CredentialsNotFoundError) as caught:
        kubelet.provide(request, settings, clock=lambda: world.now, fetch=world.fetch, warn=world.warnings.append)
    assert caught.value.hint == "ECR (us-east-1): no route"
    assert world.hosts == [ECR_HOST]


def test_web_identity_repr_and_redaction() -> None:
    token = jwt(sa_claims())
    identity = kubelet.web_identity(
        kubelet.Request(api_version=f"{GROUP}/v1", image=IMAGE, service_account_token=token), {kubelet.ROLE_ENV: ROLE}
    )
    assert identity is not None
    assert token not in repr(identity)
    assert identity.redact(f"bad token {token} and {token.split('.')[2]}").count("<service account token>") == 2
    assert identity.session_name == "team.puller"


@pytest.mark.parametrize(
    ("claims", "name"),
    [
        pytest.param({}, "ecr-credential-provider", id="no-claims"),
        pytest.param(sa_claims(namespace="kube system", name="x:y"), "kube-system.x-y", id="sanitized"),
        pytest.param(sa_claims(namespace="n" * 50, name="s" * 50), "n" * 50 + "." + "s" * 13, id="cut-to-64"),
    ],
)
def test_session_name(claims: dict[str, object], name: str) -> None:
    assert kubelet.session_name(claims) == name


# -- the example CredentialProviderConfig files ----------------------------------------------------
EXAMPLES = Path(__file__).parent.parent / "packaging" / "kubernetes"


def yaml_list(text: str, key: str) -> list[str]:
    """The items of a block list ``key:`` in a simple YAML file (no YAML parser in the test deps)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{key}:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    items = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(line) - len(line.lstrip()) <= indent or not stripped.startswith("- "):
            break
        items.append(stripped[2:].split(" #")[0].strip().strip('"'))
    return items


def kubelet_matches(glob: str, image: str) -> bool:
    """The kubelet's matchImages rule (pkg/credentialprovider URLsMatch): per-part globs, equal ports."""
    import fnmatch

    def split(url: str) -> tuple[list[str], str, str]:
        host, _, path = url.partition("/")
        name, _, port = host.partition(":")
        return name.split("."), port, "/" + path if path else ""

    glob_parts, glob_port, glob_path = split(glob)
    parts, port, path = split(image.split("@", maxsplit=1)[0])
    return (
        glob_port == port
        and len(glob_parts) == len(parts)
        and path.startswith(glob_path)
        and all(fnmatch.fnmatchcase(p, g) for g, p in zip(glob_parts, parts))
    )


@pytest.mark.parametrize("name", ["credential-provider-config.yaml", "credential-provider-config-service-account.yaml"])
def test_example_config(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\n" in text
    assert "  - name: ecr-credential-provider\n" in text
    helper_exe("ecr-credential-provider")  # the name is an installed script
    assert f"apiVersion: {GROUP}/v1" in text
    globs = yaml_list(text, "matchImages")
    ours = [
        IMAGE,
        f"{WEST_HOST}/app@sha256:{'0' * 64}",
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app:1",
        "123456789012.dkr-ecr.eu-west-1.on.aws/app:1",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app:1",
        "public.ecr.aws/team/app:1",
    ]
    for image in ours:
        assert any(kubelet_matches(g, image) for g in globs), image
        assert registry_parse_ok(image)
    for image in ("nginx:1", "ghcr.io/o/app:1", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io/app:1"):
        assert not any(kubelet_matches(g, image) for g in globs), image
    if "tokenAttributes:" in text:
        assert "serviceAccountTokenAudience: sts.amazonaws.com" in text
        assert "cacheType: ServiceAccount" in text
        assert yaml_list(text, "optionalServiceAccountAnnotationKeys") == [kubelet.ROLE_ANNOTATION]


def registry_parse_ok(image: str) -> bool:
    from docker_credential_ecr import registry

    host = kubelet.registry_host(image)
    return host is not None and registry.parse(host) is not None
