"""A small local stand-in for the AWS endpoints docker-credential-ecr talks to.

One threaded HTTP server on 127.0.0.1 answers, in the wire formats the real
botocore client sends and parses:

* ``ecr``          ECR ``GetAuthorizationToken`` (JSON 1.1, ``X-Amz-Target``)
* ``ecr-public``   ECR Public ``GetAuthorizationToken`` (JSON 1.1)
* ``sts:<Action>`` STS ``AssumeRole``, ``AssumeRoleWithWebIdentity``,
                   ``GetCallerIdentity`` (query protocol, XML answers)
* ``sso``          SSO portal ``GetRoleCredentials`` (rest-json)
* ``container``    the ECS/EKS container credential endpoint
* ``imds``         EC2 instance metadata (IMDSv2) credentials
* ``sso-oidc``     SSO OIDC ``CreateToken`` (``refresh_token`` grant: botocore's SSO token refresh)
* ``github-oidc``  a GitHub-Actions-style OIDC token endpoint (:attr:`FakeAWS.github_token_url`)
* ``/_fake/...``   a control plane for tests in other processes

Point clients at it with :meth:`FakeAWS.env` (``AWS_ENDPOINT_URL_*``), and for the
container and IMDS providers with :attr:`FakeAWS.container_uri` and
:attr:`FakeAWS.imds_endpoint`.

Identity checks, all off until a test turns them on (so plain calls keep working):

* :meth:`FakeAWS.require_mfa`: AssumeRole of that role needs ``SerialNumber`` + ``TokenCode`` (a
  wrong code is refused as STS does) and ``DurationSeconds`` within the role's maximum;
* :meth:`FakeAWS.add_oidc_provider` / :meth:`FakeAWS.trust_web_identity`: once a provider exists,
  AssumeRoleWithWebIdentity checks the JWT's ``iss`` (a registered provider), ``aud`` (its client ids),
  ``exp`` and ``sub`` (the role's trust policy, IAM ``StringLike`` globs) and answers STS's own error
  codes and messages;
* ``configure(imds_drop_token_response=True)``: the IMDSv2 token PUT gets no answer, as from inside a
  container on an instance whose ``http-put-response-hop-limit`` is 1;
* ``configure(sso_require_issued_token=True)``: SSO ``GetRoleCredentials`` accepts only access tokens
  that ``CreateToken`` issued (proves a refresh happened).

Faults (``add_fault(op, kind, times=1, delay=0.0)``, consumed in order per op,
``times=None`` for ever; op "sts" matches every STS action):

* ``throttle``, ``server-error``, ``access-denied``, ``expired-token``,
  ``unrecognized-client``: an error botocore turns into ``ClientError``.
  JSON ops answer ThrottlingException / ServerException (500) /
  AccessDeniedException / ExpiredTokenException / UnrecognizedClientException;
  STS answers Throttling / InternalFailure (500) / AccessDenied (403) /
  ExpiredToken / InvalidClientTokenId (403), in XML.
* ``hang`` (no answer until the server stops), ``slow`` (sleep ``delay``, then
  answer), ``reset`` (TCP RST, no answer), ``malformed`` (200, broken body).
* ECR and ECR Public only: ``bad-token`` (not base64), ``no-colon``,
  ``empty`` (no authorization data), ``no-expiry`` (no expiresAt).

Standalone::

    python tests/fakeecr.py [--port N] [--password P] [--lifetime S] [--latency S]
                            [--ready-file PATH] [--print-env] [--env-file PATH]

prints ``FAKE_AWS_URL=http://127.0.0.1:<port>`` (or ``export K=V`` lines with
``--print-env``) and serves until SIGTERM or SIGINT, then exits 0. The ready and
env files are written (atomically) before that line is printed.

Only the standard library is used, so the module runs in any interpreter.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import shlex
import signal
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

__all__ = [
    "FAULT_KINDS",
    "OPS",
    "TOKEN_OPS",
    "FakeAWS",
    "FakeAWSClient",
    "Request",
    "access_key_for_role",
    "env_for",
    "main",
    "make_jwt",
    "running_fake",
]

HOST = "127.0.0.1"
TOKEN_OPS = ("ecr", "ecr-public")
STS_OPS = ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:GetCallerIdentity")
OPS = (*TOKEN_OPS, *STS_OPS, "sso", "container", "imds", "sso-oidc", "github-oidc")
# Families accepted by calls() and add_fault() besides the exact op names.
_FAMILIES = {"sts": STS_OPS, "*": OPS}

FAULT_KINDS = (
    "throttle",
    "server-error",
    "access-denied",
    "expired-token",
    "unrecognized-client",
    "hang",
    "slow",
    "reset",
    "malformed",
    "bad-token",
    "no-colon",
    "empty",
    "no-expiry",
)
# Faults that only make sense for an authorization token answer.
_TOKEN_ONLY_FAULTS = frozenset({"bad-token", "no-colon", "empty", "no-expiry"})

DEFAULT_ACCESS_KEY_ID = "AKIAFAKEFAKEFAKE0001"
DEFAULT_SECRET_ACCESS_KEY = "fakeSecretAccessKeyFakeSecretAccessKey00"  # not a real secret
DEFAULT_REGION = "us-east-1"
IMDS_ROLE = "fake-instance-role"
CONTAINER_ROLE = "fake-container-role"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
ECR_PUBLIC_TARGET = "SpencerFrontendService.GetAuthorizationToken"
BAD_BASE64_TOKEN = "***invalid-base64-token***"  # fails strict and lenient b64decode

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")
_CONFIG_KEYS = frozenset(
    {
        "token_lifetime",
        "password",
        "latency",
        "password_length",
        "account",
        "credential_lifetime",
        "imds_drop_token_response",
        "sso_require_issued_token",
    }
)
_BOOL_CONFIG_KEYS = frozenset({"imds_drop_token_response", "sso_require_issued_token"})
GITHUB_TOKEN_PATH = "/github-oidc/idtoken"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
SSO_OIDC_TOKEN_PATH = "/token"
# STS's own answers (codes, statuses and texts as AWS sends them) for web identity and MFA refusals.
STS_NO_PROVIDER = "No OpenIDConnect provider found in your account for {iss}"
STS_BAD_AUDIENCE = "Incorrect token audience"
STS_SUB_REFUSED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
STS_BAD_MFA_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code. "
STS_DURATION_TOO_LONG = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


def env_for(url: str) -> dict[str, str]:
    """Every environment variable a boto3 client needs to talk only to the fake at ``url``."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT_URL_ECR": url,
        "AWS_ENDPOINT_URL_ECR_PUBLIC": url,
        "AWS_ENDPOINT_URL_STS": url,
        "AWS_ENDPOINT_URL_SSO": url,
        "AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def access_key_for_role(role_arn: str) -> str:
    """The temporary AccessKeyId the fake issues for ``role_arn`` (``ASIA`` + 16 chars, deterministic)."""
    digest = base64.b32encode(hashlib.sha256(role_arn.encode()).digest()).decode()
    return "ASIA" + digest[:16]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_jwt(claims: Mapping[str, Any]) -> str:
    """A JWT with ``claims`` as an OIDC provider would issue it (RS256 header, random signature, unverifiable)."""
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "fakeecr"}).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64url(secrets.token_bytes(64))}"


def _user_id_for(seed: str, prefix: str) -> str:
    return prefix + base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()[:17]


def _count(calls: Mapping[str, int], op: str | None) -> int:
    if op is None:
        return sum(calls.get(o, 0) for o in TOKEN_OPS)
    if op in _FAMILIES:
        return sum(calls.get(o, 0) for o in _FAMILIES[op])
    return calls.get(op, 0)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclasses.dataclass(frozen=True)
class Request:
    """One request the fake answered (or refused). Never holds a secret."""

    op: str
    method: str
    path: str
    target: str
    access_key_id: str
    region: str
    service: str
    session_token: bool
    user_agent: str
    time: float
    fault: str | None = None
    params: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Fault:
    kind: str
    times: int | None
    delay: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _Identity:
    arn: str
    user_id: str
    account: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open many connections at once; the default backlog is 5

    def __init__(self, fake: FakeAWS, port: int) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((HOST, port), _Handler)


class _Abort(Exception):
    """Raised inside a handler to drop the connection without an answer."""


class FakeAWS:
    """The fake AWS endpoints, in a thread of this process."""

    def __init__(
        self,
        *,
        port: int = 0,
        token_lifetime: float = 43200.0,
        password: str | None = None,
        account: str = "123456789012",
        latency: float = 0.0,
    ) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.token_lifetime = float(token_lifetime)
        self.password = password
        self.account = account
        self.latency = float(latency)
        self.password_length = 1500
        self.credential_lifetime = 3600.0
        self._calls: collections.Counter[str] = collections.Counter()
        self._requests: list[Request] = []
        self._issued: list[str] = []
        self._issued_secrets: list[str] = []
        self._faults: dict[str, collections.deque[_Fault]] = {}
        self._identities: dict[str, _Identity] = {}
        self._imds_tokens: dict[str, float] = {}
        self.imds_drop_token_response = False
        self.sso_require_issued_token = False
        self._mfa: dict[str, tuple[str, str, float]] = {}  # role -> (serial, code, max session)
        self._oidc_providers: dict[str, tuple[str, ...]] = {}  # issuer without https:// -> client ids
        self._web_trust: dict[str, list[tuple[str, str]]] = {}  # role -> [(issuer, sub glob)]
        self._github: dict[str, Any] | None = None
        self._sso_clients: dict[str, tuple[str, str]] = {}  # refresh token -> (client id, client secret)
        self._sso_access_tokens: set[str] = set()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeAWS:
        if self._server is not None:
            return self
        self._stop.clear()
        self._server = _Server(self, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fakeecr", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()  # releases hanging and sleeping handlers
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            conns = list(server.connections)
        for conn in conns:  # kept-alive connections would otherwise idle in their threads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeAWS:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeAWS is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def container_uri(self) -> str:
        """Value for ``AWS_CONTAINER_CREDENTIALS_FULL_URI``."""
        return self.url + "/container-credentials"

    @property
    def imds_endpoint(self) -> str:
        """Value for ``AWS_EC2_METADATA_SERVICE_ENDPOINT``."""
        return self.url + "/"

    def env(self) -> dict[str, str]:
        return env_for(self.url)

    # -- observation -------------------------------------------------------

    def calls(self, op: str | None = None) -> int:
        """How many requests ``op`` got; None counts ecr + ecr-public, "sts" every STS action, "*" everything."""
        with self._lock:
            return _count(self._calls, op)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def issued(self) -> list[str]:
        """Every registry password issued, in order."""
        with self._lock:
            return list(self._issued)

    @property
    def issued_secrets(self) -> list[str]:
        """Every secret access key and session token issued, in order."""
        with self._lock:
            return list(self._issued_secrets)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "url": self.url if self._server is not None else None,
                "calls": dict(self._calls),
                "requests": [r.to_json() for r in self._requests],
                "issued": list(self._issued),
                "issued_secrets": list(self._issued_secrets),
                "faults": {op: [f.to_json() for f in q] for op, q in self._faults.items() if q},
                "config": self._config(),
            }

    def _config(self) -> dict[str, Any]:
        return {
            "token_lifetime": self.token_lifetime,
            "password": self.password,
            "latency": self.latency,
            "password_length": self.password_length,
            "account": self.account,
            "credential_lifetime": self.credential_lifetime,
            "imds_drop_token_response": self.imds_drop_token_response,
            "sso_require_issued_token": self.sso_require_issued_token,
        }

    # -- control -----------------------------------------------------------

    def configure(self, **kw: Any) -> None:
        """Change token_lifetime, password, latency, password_length, account or credential_lifetime."""
        unknown = set(kw) - _CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            for key, value in kw.items():
                if key in _BOOL_CONFIG_KEYS:
                    if not isinstance(value, bool):
                        raise ValueError(f"{key} must be true or false")
                    setattr(self, key, value)
                elif key in ("token_lifetime", "latency", "credential_lifetime"):
                    number = float(value)
                    if key == "latency" and number < 0:
                        raise ValueError("latency must be >= 0")
                    setattr(self, key, number)
                elif key == "password":
                    if value is not None and not isinstance(value, str):
                        raise ValueError("password must be a string or None")
                    self.password = value
                elif key == "password_length":
                    length = int(value)
                    if length < 1:
                        raise ValueError("password_length must be >= 1")
                    self.password_length = length
                else:
                    if not (isinstance(value, str) and re.fullmatch(r"\d{12}", value)):
                        raise ValueError("account must be 12 digits")
                    self.account = value

    def add_fault(self, op: str, kind: str, *, times: int | None = 1, delay: float = 0.0) -> None:
        """Queue a fault for ``op`` (or family "sts"); ``times=None`` means forever."""
        if op not in OPS and op != "sts":
            raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)} or 'sts'")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if kind in _TOKEN_ONLY_FAULTS and op not in TOKEN_OPS:
            raise ValueError(f"fault {kind!r} only applies to {' and '.join(TOKEN_OPS)}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        if delay < 0:
            raise ValueError("delay must be >= 0")
        with self._lock:
            self._faults.setdefault(op, collections.deque()).append(_Fault(kind, times, float(delay)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- identity checks (MFA, web identity trust, CI and SSO token endpoints) ---------

    def require_mfa(
        self, role_arn: str, serial_number: str, code: str, *, max_session_duration: float = 3600.0
    ) -> None:
        """AssumeRole of ``role_arn`` needs this MFA device and code, and at most ``max_session_duration``."""
        if not serial_number or not code:
            raise ValueError("serial_number and code are required")
        with self._lock:
            self._mfa[role_arn] = (serial_number, code, float(max_session_duration))

    def add_oidc_provider(self, issuer: str, audiences: tuple[str, ...] | list[str]) -> None:
        """Register an IAM OIDC identity provider (``issuer`` URL, its client id list = accepted audiences).

        From the first provider on, every AssumeRoleWithWebIdentity is checked against them.
        """
        with self._lock:
            self._oidc_providers[_issuer_key(issuer)] = tuple(audiences)

    def trust_web_identity(self, role_arn: str, issuer: str, subject: str = "*") -> None:
        """Let tokens of ``issuer`` whose ``sub`` matches the IAM StringLike glob ``subject`` assume ``role_arn``."""
        with self._lock:
            self._web_trust.setdefault(role_arn, []).append((_issuer_key(issuer), subject))

    def github_oidc(self, request_token: str, claims: Mapping[str, Any]) -> None:
        """Serve GitHub-Actions-style OIDC tokens at :attr:`github_token_url` to bearers of ``request_token``.

        Tokens carry ``claims`` plus ``iss`` (GitHub's issuer unless given), ``aud`` (the ``audience``
        query parameter, else ``https://github.com/<owner>`` as GitHub does), ``iat``, ``nbf`` and ``exp``.
        """
        with self._lock:
            self._github = {"request_token": request_token, "claims": dict(claims)}

    @property
    def github_token_url(self) -> str:
        """Value for ``ACTIONS_ID_TOKEN_REQUEST_URL`` (it already has a query, as GitHub's does)."""
        return self.url + GITHUB_TOKEN_PATH + "?api-version=2.0"

    def add_sso_client(self, refresh_token: str, client_id: str, client_secret: str) -> None:
        """Let SSO OIDC ``CreateToken`` (grant ``refresh_token``) accept this refresh token from this client."""
        with self._lock:
            self._sso_clients[refresh_token] = (client_id, client_secret)

    @property
    def sso_access_tokens(self) -> list[str]:
        """Access tokens CreateToken issued (secrets of the fake only; for assertions)."""
        with self._lock:
            return sorted(self._sso_access_tokens)

    def reset(self) -> None:
        """Forget counters, the request log, issued secrets and queued faults (settings stay)."""
        with self._lock:
            self._calls.clear()
            self._requests.clear()
            self._issued.clear()
            self._issued_secrets.clear()
            self._faults.clear()

    # -- used by the handler -------------------------------------------------

    def _record(self, req: Request, *, counted: bool = True) -> None:
        with self._lock:
            self._requests.append(req)
            if counted:
                self._calls[req.op] += 1

    def _take_fault(self, op: str) -> _Fault | None:
        with self._lock:
            for key in (op, "sts" if op.startswith("sts:") else None):
                queue = self._faults.get(key) if key else None
                if queue:
                    fault = queue[0]
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            queue.popleft()
                    return _Fault(fault.kind, fault.times, fault.delay)
            return None

    def _new_password(self) -> str:
        with self._lock:
            password, length = self.password, self.password_length
        if password is None:
            password = secrets.token_urlsafe(length)[:length]
        with self._lock:
            self._issued.append(password)
        return password

    def _new_credentials(self, role_arn: str, who: _Identity, lifetime: float | None = None) -> dict[str, Any]:
        """Temporary credentials for ``role_arn``: the key id is derived from the role, the secrets are random."""
        with self._lock:
            default_lifetime = self.credential_lifetime
        key = access_key_for_role(role_arn)
        secret = secrets.token_urlsafe(30)[:40]
        token = "FwoGZXIvYXdzE" + secrets.token_urlsafe(300)
        with self._lock:
            self._issued_secrets.extend((secret, token))
            self._identities[key] = who
        return {
            "AccessKeyId": key,
            "SecretAccessKey": secret,
            "SessionToken": token,
            "Expiration": time.time() + (default_lifetime if lifetime is None else lifetime),
        }

    def _identity(self, access_key_id: str) -> _Identity:
        with self._lock:
            known = self._identities.get(access_key_id)
            account = self.account
        if known is not None:
            return known
        return _Identity(
            f"arn:aws:iam::{account}:user/fake-user", _user_id_for(access_key_id or "anonymous", "AIDA"), account
        )

    def _new_imds_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(40)
        with self._lock:
            self._imds_tokens[token] = time.monotonic() + ttl
        return token

    def _refusal(self, op: str, form: Mapping[str, str], role_arn: str, access_key: str) -> tuple[int, str, str] | None:
        """(status, code, message) when STS would refuse this AssumeRole / AssumeRoleWithWebIdentity, else None."""
        with self._lock:
            mfa = self._mfa.get(role_arn)
            providers = dict(self._oidc_providers)
            trust = list(self._web_trust.get(role_arn, ()))
        if op == "sts:AssumeRole" and mfa is not None:
            return self._mfa_refusal(form, role_arn, access_key, mfa)
        if op == "sts:AssumeRoleWithWebIdentity" and providers:
            return _web_identity_refusal(_jwt_claims(form.get("WebIdentityToken", "")), providers, trust)
        return None

    def _mfa_refusal(
        self, form: Mapping[str, str], role_arn: str, access_key: str, mfa: tuple[str, str, float]
    ) -> tuple[int, str, str] | None:
        serial, code, longest = mfa
        try:
            duration = float(form.get("DurationSeconds") or 0)
        except ValueError:
            duration = 0.0
        if duration > longest:
            return 400, "ValidationError", STS_DURATION_TOO_LONG
        if not form.get("SerialNumber") or not form.get("TokenCode"):
            who = self._identity(access_key).arn
            message = f"User: {who} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
            return 403, "AccessDenied", message
        if form.get("SerialNumber") != serial or form.get("TokenCode") != code:
            return 403, "AccessDenied", STS_BAD_MFA_CODE
        return None

    def _refresh_sso_token(self, refresh_token: str, client_id: str, client_secret: str) -> dict[str, Any] | None:
        with self._lock:
            client = self._sso_clients.get(refresh_token)
            if client is None or client != (client_id, client_secret):
                return None
            access, rotated = "sso-access-" + secrets.token_urlsafe(24), "sso-refresh-" + secrets.token_urlsafe(24)
            del self._sso_clients[refresh_token]  # rotated: the old refresh token is spent
            self._sso_clients[rotated] = client
            self._sso_access_tokens.add(access)
            self._issued_secrets.extend((access, rotated))
        return {"accessToken": access, "tokenType": "Bearer", "expiresIn": 3600, "refreshToken": rotated}

    def _sso_token_accepted(self, token: str) -> bool:
        with self._lock:
            return not self.sso_require_issued_token or token in self._sso_access_tokens

    def _imds_token_valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._imds_tokens.get(token)
        return expiry is not None and expiry > time.monotonic()


# -- error tables -------------------------------------------------------------

# kind -> (HTTP status, code, message) for the JSON protocols (and container / IMDS bodies).
_JSON_ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "server-error": (500, "ServerException", "Internal server error (injected by fakeecr)"),
    "access-denied": (400, "AccessDeniedException", ""),
    "expired-token": (400, "ExpiredTokenException", "The security token included in the request is expired"),
    "unrecognized-client": (
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid",
    ),
}
# The same for STS, which answers in XML with its own (query protocol) codes.
_STS_ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "server-error": (500, "InternalFailure", "An internal error occurred (injected by fakeecr)"),
    "access-denied": (403, "AccessDenied", ""),
    "expired-token": (400, "ExpiredToken", "The security token included in the request is expired"),
    "unrecognized-client": (403, "InvalidClientTokenId", "The security token included in the request is invalid."),
}
# AssumeRoleWithWebIdentity is unsigned: its token problems are about the web identity token.
_WEB_IDENTITY_ERRORS: dict[str, tuple[int, str, str]] = {
    "expired-token": (400, "ExpiredTokenException", "Token expired: current date/time must be before the expiration"),
    "unrecognized-client": (400, "InvalidIdentityToken", "Couldn't retrieve verification key from your provider"),
}
_TARGET_OPS = {ECR_TARGET: "ecr", ECR_PUBLIC_TARGET: "ecr-public"}
_PATH_OPS = {
    ("GET", "/federation/credentials"): "sso",
    ("GET", "/container-credentials"): "container",
    ("PUT", "/latest/api/token"): "imds",
    ("POST", SSO_OIDC_TOKEN_PATH): "sso-oidc",
    ("GET", GITHUB_TOKEN_PATH): "github-oidc",
}
_ACTIONS = {
    "ecr": "ecr:GetAuthorizationToken",
    "ecr-public": "ecr-public:GetAuthorizationToken",
    "sso": "sso:GetRoleCredentials",
    "container": "container:GetCredentials",
    "imds": "ec2:GetInstanceCredentials",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeecr/1"

    # -- plumbing ----------------------------------------------------------

    @property
    def fake(self) -> FakeAWS:
        return cast(_Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no request log on stderr."""

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _send(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, data: Any, content_type: str = "application/x-amz-json-1.1") -> None:
        self._send(status, json.dumps(data).encode(), content_type)

    def _send_json_error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"__type": code, "message": message}).encode()
        self._send(status, body, "application/x-amz-json-1.1", {"x-amzn-ErrorType": code})

    def _send_xml(self, status: int, xml: str) -> None:
        self._send(status, ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode(), "text/xml")

    def _send_sts_error(self, status: int, code: str, message: str) -> None:
        kind = "Receiver" if status >= 500 else "Sender"
        self._send_xml(
            status,
            f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>",
        )

    def _reset_connection(self) -> None:
        """Close the socket with RST and no answer."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # -- dispatch ----------------------------------------------------------

    def _handle(self) -> None:
        try:
            body = self._read_body()
            path = urlsplit(self.path).path
            if path == "/_fake" or path.startswith("/_fake/"):
                self._control(path, body)
                return
            self._service(path, body)
        except _Abort:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _classify(self, path: str, body: bytes) -> tuple[str, dict[str, str]]:
        """(op, STS form params) for a request; op "unknown" when nothing matches."""
        target = self.headers.get("X-Amz-Target", "")
        op, form = "unknown", {}
        if self.command == "POST" and target:
            op = _TARGET_OPS.get(target, "unknown")
        elif self.command == "POST" and path == "/":
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            action = form.get("Action", "")
            op = f"sts:{action}" if f"sts:{action}" in STS_OPS else "unknown"
        elif (self.command, path) in _PATH_OPS:
            op = _PATH_OPS[self.command, path]
        elif self.command == "GET" and path.startswith("/latest/meta-data/"):
            op = "imds"
        return op, form

    def _service(self, path: str, body: bytes) -> None:
        fake = self.fake
        op, form = self._classify(path, body)
        auth = self.headers.get("Authorization", "")
        match = _CREDENTIAL_RE.search(auth)
        access_key, region, service = (match.group(1), match.group(3), match.group(4)) if match else ("", "", "")
        counted = op != "unknown"
        fault = fake._take_fault(op) if counted else None
        fake._record(
            Request(
                op=op,
                method=self.command,
                path=self.path,
                target=self.headers.get("X-Amz-Target", ""),
                access_key_id=access_key,
                region=region,
                service=service,
                session_token=bool(self.headers.get("X-Amz-Security-Token")),
                user_agent=self.headers.get("User-Agent", ""),
                time=time.time(),
                fault=fault.kind if fault else None,
                params=self._loggable_params(op, form),
            ),
            counted=counted,
        )
        if op == "unknown":
            if form:
                self._send_sts_error(400, "InvalidAction", f"Could not find operation {form.get('Action', '')!r}")
            else:
                self._send_json_error(404, "UnknownOperationException", f"fakeecr does not serve {self.command} {path}")
            return
        with fake._lock:
            latency = fake.latency
        if latency > 0 and fake._stop.wait(latency):
            raise _Abort
        if fault is not None and self._answered_by_fault(op, fault, access_key):
            return
        kind = fault.kind if fault else None
        if op in TOKEN_OPS:
            self._token(op, body, region, auth_present=bool(match), fault=kind)
        elif op.startswith("sts:"):
            self._sts(op, form, access_key, auth_present=bool(match))
        elif op == "sso":
            self._sso()
        elif op == "container":
            self._container()
        elif op == "sso-oidc":
            self._sso_oidc(body)
        elif op == "github-oidc":
            self._github_oidc()
        else:
            self._imds(path)

    def _answered_by_fault(self, op: str, fault: _Fault, access_key: str) -> bool:
        """Act out ``fault``; True when that was the whole answer (or the lack of one)."""
        stop = self.fake._stop
        if fault.kind == "hang":
            stop.wait()
            raise _Abort
        if fault.kind == "slow":
            if stop.wait(fault.delay):
                raise _Abort
            return False
        if fault.kind in _TOKEN_ONLY_FAULTS:
            return False  # shapes the normal answer
        if fault.kind == "reset":
            self._reset_connection()
        elif fault.kind == "malformed":
            self._send(200, b'{"authorizationData": [{"authorizationToken": ', "application/x-amz-json-1.1")
        else:
            self._send_fault_error(op, fault.kind, access_key)
        return True

    def _loggable_params(self, op: str, form: Mapping[str, str]) -> dict[str, str]:
        params: dict[str, str] = {}
        if op.startswith("sts:") or (op == "unknown" and form):
            for key in ("Action", "Version", "RoleArn", "RoleSessionName", "ExternalId", "DurationSeconds"):
                if key in form:
                    params[key] = form[key]
            for key in ("SourceIdentity", "SerialNumber", "ProviderId"):
                if key in form:
                    params[key] = form[key]
            for key in ("WebIdentityToken", "Policy", "TokenCode"):
                if key in form:
                    params[key] = "present"
        elif op == "sso":
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            params = {k: query[k] for k in ("role_name", "account_id") if k in query}
            params["bearer_token"] = "present" if self.headers.get("x-amz-sso_bearer_token") else "absent"
        elif op == "container":
            params["authorization"] = "present" if self.headers.get("Authorization") else "absent"
        elif op == "github-oidc":
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            params = {k: query[k] for k in ("audience", "api-version") if k in query}
            params["bearer_token"] = "present" if self.headers.get("Authorization") else "absent"
        elif op == "imds":
            params["imds_token"] = "present" if self.headers.get("x-aws-ec2-metadata-token") else "absent"
            ttl = self.headers.get("x-aws-ec2-metadata-token-ttl-seconds")
            if ttl is not None:
                params["ttl"] = ttl
        return params

    def _send_fault_error(self, op: str, kind: str, access_key: str) -> None:
        if op.startswith("sts:"):
            table = dict(_STS_ERRORS)
            if op == "sts:AssumeRoleWithWebIdentity":
                table.update(_WEB_IDENTITY_ERRORS)
            status, code, message = table[kind]
        else:
            status, code, message = _JSON_ERRORS[kind]
        if kind == "access-denied":
            action = _ACTIONS.get(op, op)
            who = self.fake._identity(access_key).arn
            message = (
                f"User: {who} is not authorized to perform: {action} on resource: * "
                f"because no identity-based policy allows the {action} action"
            )
        if op.startswith("sts:"):
            self._send_sts_error(status, code, message)
        elif op in ("container", "imds"):
            self._send_json(status, {"Code": code, "Message": message}, "application/json")
        else:
            self._send_json_error(status, code, message)

    # -- ECR ---------------------------------------------------------------

    def _token(self, op: str, body: bytes, region: str, *, auth_present: bool, fault: str | None) -> None:
        fake = self.fake
        if not auth_present:
            self._send_json_error(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token (no SigV4 Authorization header)",
            )
            return
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            self._send_json_error(400, "SerializationException", "Request body is not valid JSON")
            return
        if fault == "empty":
            self._send_json(200, {"authorizationData": [] if op == "ecr" else {}})
            return
        with fake._lock:
            lifetime, account = fake.token_lifetime, fake.account
        expires = time.time() + lifetime
        domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"

        def entry() -> dict[str, Any]:
            password = fake._new_password()
            if fault == "bad-token":
                token = BAD_BASE64_TOKEN
            elif fault == "no-colon":
                token = base64.b64encode(b"AWS" + password.encode()).decode()
            else:
                token = base64.b64encode(b"AWS:" + password.encode()).decode()
            data: dict[str, Any] = {"authorizationToken": token}
            if fault != "no-expiry":
                data["expiresAt"] = expires
            return data

        if op == "ecr-public":
            self._send_json(200, {"authorizationData": entry()})
            return
        registry_ids = payload.get("registryIds") if isinstance(payload, dict) else None
        accounts = [str(r) for r in registry_ids] if isinstance(registry_ids, list) and registry_ids else [account]
        items = []
        for acct in accounts:
            item = entry()
            item["proxyEndpoint"] = f"https://{acct}.dkr.ecr.{region}.{domain}"
            items.append(item)
        self._send_json(200, {"authorizationData": items})

    # -- STS ---------------------------------------------------------------

    def _sts(self, op: str, form: Mapping[str, str], access_key: str, *, auth_present: bool) -> None:
        fake = self.fake
        action = op.split(":", 1)[1]
        if op != "sts:AssumeRoleWithWebIdentity" and not auth_present:
            self._send_sts_error(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
            return
        if op == "sts:GetCallerIdentity":
            who = fake._identity(access_key)
            self._sts_result(
                action,
                f"<Arn>{escape(who.arn)}</Arn><UserId>{escape(who.user_id)}</UserId>"
                f"<Account>{escape(who.account)}</Account>",
            )
            return
        role_arn = form.get("RoleArn", "")
        session = form.get("RoleSessionName", "")
        role = re.fullmatch(r"arn:aws[\w-]*:iam::(\d{12}):role/(?:[\w+=,.@/-]*/)?([\w+=,.@-]+)", role_arn)
        if role is None or not session:
            what = "roleArn" if role is None else "roleSessionName"
            self._send_sts_error(400, "ValidationError", f"1 validation error detected: Value at '{what}' is not valid")
            return
        if op == "sts:AssumeRoleWithWebIdentity" and not form.get("WebIdentityToken"):
            self._send_sts_error(400, "ValidationError", "1 validation error detected: webIdentityToken is required")
            return
        refusal = fake._refusal(op, form, role_arn, access_key)
        if refusal is not None:
            self._send_sts_error(*refusal)
            return
        try:
            duration = float(form.get("DurationSeconds") or 0) or None
        except ValueError:
            duration = None
        account, role_name = role.group(1), role.group(2)
        role_id = _user_id_for(role_arn, "AROA")
        assumed_arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}"
        # The key id follows the role, not the session, so tests can tell roles apart.
        creds = fake._new_credentials(role_arn, _Identity(assumed_arn, f"{role_id}:{session}", account), duration)
        inner = (
            f"<Credentials><AccessKeyId>{creds['AccessKeyId']}</AccessKeyId>"
            f"<SecretAccessKey>{escape(creds['SecretAccessKey'])}</SecretAccessKey>"
            f"<SessionToken>{escape(creds['SessionToken'])}</SessionToken>"
            f"<Expiration>{_iso(creds['Expiration'])}</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>{escape(role_id)}:{escape(session)}</AssumedRoleId>"
            f"<Arn>{escape(assumed_arn)}</Arn></AssumedRoleUser>"
        )
        if op == "sts:AssumeRoleWithWebIdentity":
            claims = _jwt_claims(form.get("WebIdentityToken", ""))
            inner += (
                f"<SubjectFromWebIdentityToken>{escape(str(claims.get('sub', 'fake-subject')))}"
                f"</SubjectFromWebIdentityToken>"
                f"<Audience>{escape(str(claims.get('aud', 'sts.amazonaws.com')))}</Audience>"
                f"<Provider>{escape(str(claims.get('iss', 'fakeecr')))}</Provider>"
            )
        self._sts_result(action, inner)

    def _sts_result(self, action: str, inner: str) -> None:
        self._send_xml(
            200,
            f'<{action}Response xmlns="{STS_NAMESPACE}"><{action}Result>{inner}</{action}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>",
        )

    # -- SSO, container, IMDS -----------------------------------------------

    def _sso(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if not self.headers.get("x-amz-sso_bearer_token"):
            self._send_json_error(401, "UnauthorizedException", "Session token not found or invalid")
            return
        role_name, account_id = query.get("role_name", ""), query.get("account_id", "")
        if not role_name or not re.fullmatch(r"\d{12}", account_id):
            self._send_json_error(400, "InvalidRequestException", "role_name and a 12 digit account_id are required")
            return
        if not self.fake._sso_token_accepted(self.headers.get("x-amz-sso_bearer_token", "")):
            self._send_json_error(401, "UnauthorizedException", "Session token not found or invalid")
            return
        role_arn = f"arn:aws:iam::{account_id}:role/{role_name}"
        creds = self.fake._new_credentials(role_arn, _assumed(role_arn, account_id, role_name, "fake-sso-user"))
        self._send_json(
            200,
            {
                "roleCredentials": {
                    "accessKeyId": creds["AccessKeyId"],
                    "secretAccessKey": creds["SecretAccessKey"],
                    "sessionToken": creds["SessionToken"],
                    "expiration": int(creds["Expiration"] * 1000),
                }
            },
            "application/json",
        )

    def _role_credentials(self, role_name: str) -> dict[str, Any]:
        account = self.fake.account
        role_arn = f"arn:aws:iam::{account}:role/{role_name}"
        creds = self.fake._new_credentials(role_arn, _assumed(role_arn, account, role_name, "fake-session"))
        return {
            "AccessKeyId": creds["AccessKeyId"],
            "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds["SessionToken"],
            "Expiration": _iso(creds["Expiration"]),
        }

    def _container(self) -> None:
        role_arn = f"arn:aws:iam::{self.fake.account}:role/{CONTAINER_ROLE}"
        self._send_json(200, {**self._role_credentials(CONTAINER_ROLE), "RoleArn": role_arn}, "application/json")

    def _imds(self, path: str) -> None:
        fake = self.fake
        if self.command == "PUT":
            with fake._lock:
                dropped = fake.imds_drop_token_response
            if dropped:  # hop limit 1 seen from a container: the answer dies one hop short of the caller
                fake._stop.wait()
                raise _Abort
            raw_ttl = self.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not raw_ttl.isdigit() or not 1 <= int(raw_ttl) <= 21600:
                self._send(400, b"", "text/plain")
                return
            token = fake._new_imds_token(int(raw_ttl))
            self._send(200, token.encode(), "text/plain", {"x-aws-ec2-metadata-token-ttl-seconds": raw_ttl})
            return
        if not fake._imds_token_valid(self.headers.get("x-aws-ec2-metadata-token", "")):
            self._send(401, b"", "text/plain")  # IMDSv2 only
            return
        prefix = "/latest/meta-data/iam/security-credentials/"
        if path == prefix:
            self._send(200, IMDS_ROLE.encode(), "text/plain")
        elif path == prefix + IMDS_ROLE:
            creds = self._role_credentials(IMDS_ROLE)
            now = _iso(time.time())
            self._send_json(200, {"Code": "Success", "LastUpdated": now, "Type": "AWS-HMAC", **creds}, "text/plain")
        elif path.rstrip("/") == "/latest/meta-data/placement/availability-zone":
            self._send(200, (DEFAULT_REGION + "a").encode(), "text/plain")
        elif path.rstrip("/") == "/latest/meta-data/placement/region":
            self._send(200, DEFAULT_REGION.encode(), "text/plain")
        else:
            self._send(404, b"Not Found", "text/plain")

    def _sso_oidc(self, body: bytes) -> None:
        """SSO OIDC CreateToken (rest-json), the ``refresh_token`` grant botocore's SSO token provider uses."""
        try:
            payload = _json_object(body)
        except (ValueError, TypeError):
            self._send_json_error(400, "InvalidRequestException", "Request body is not a JSON object")
            return
        if payload.get("grantType") != "refresh_token":
            self._send_json_error(400, "UnsupportedGrantTypeException", "Unsupported grant type")
            return
        answer = self.fake._refresh_sso_token(
            str(payload.get("refreshToken", "")), str(payload.get("clientId", "")), str(payload.get("clientSecret", ""))
        )
        if answer is None:
            self._send_json_error(400, "InvalidGrantException", "Invalid refresh token provided")
            return
        self._send_json(200, answer, "application/json")

    def _github_oidc(self) -> None:
        """GitHub Actions' ID token endpoint: bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN, ``audience`` in the query."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        scheme, _, bearer = self.headers.get("Authorization", "").partition(" ")
        with self.fake._lock:
            config = self.fake._github
        if config is None:
            self._send_json(404, {"message": "fakeecr: no GitHub OIDC configured"}, "application/json")
            return
        if scheme.lower() != "bearer" or not bearer or bearer.strip() != config["request_token"]:
            self._send_json(401, {"message": "Bad credentials"}, "application/json")
            return
        claims = dict(config["claims"])
        now = int(time.time())
        audience = query.get("audience") or f"https://github.com/{claims.get('repository_owner', '')}"
        token = make_jwt({"iss": GITHUB_ISSUER, "iat": now, "nbf": now, "exp": now + 300, **claims, "aud": audience})
        self._send_json(200, {"count": len(token), "value": token}, "application/json")

    # -- control plane -----------------------------------------------------

    def _control(self, path: str, body: bytes) -> None:
        fake = self.fake
        host = self.client_address[0]
        if not (host.startswith("127.") or host == "::1"):
            self._send_json(403, {"error": "control plane is loopback only"}, "application/json")
            return
        try:
            data = _json_object(body)
            route = (self.command, path.rstrip("/"))
            if route == ("GET", "/_fake/state"):
                self._send_json(200, fake.state(), "application/json")
                return
            if route == ("GET", "/_fake/calls"):
                with fake._lock:
                    counts = dict(fake._calls)
                self._send_json(200, {"calls": counts}, "application/json")
                return
            if route == ("POST", "/_fake/config"):
                fake.configure(**data)
            elif route == ("POST", "/_fake/fault"):
                times = data.get("times", 1)
                fake.add_fault(
                    str(data.get("op", "")),
                    str(data.get("kind", "")),
                    times=None if times is None else int(times),
                    delay=float(data.get("delay", 0.0)),
                )
            elif route == ("POST", "/_fake/clear-faults"):
                fake.clear_faults()
            elif route == ("POST", "/_fake/reset"):
                fake.reset()
            elif self.command == "POST" and path.rstrip("/") in _IDENTITY_ROUTES:
                _IDENTITY_ROUTES[path.rstrip("/")](fake, data)
            else:
                self._send_json(404, {"error": f"no control route {self.command} {path}"}, "application/json")
                return
        except (ValueError, TypeError, KeyError) as exc:
            self._send_json(400, {"error": str(exc)}, "application/json")
            return
        self._send_json(200, {"ok": True}, "application/json")


def _control_mfa(fake: FakeAWS, data: Mapping[str, Any]) -> None:
    longest = float(data.get("max_session_duration", 3600.0))
    fake.require_mfa(str(data["role_arn"]), str(data["serial_number"]), str(data["code"]), max_session_duration=longest)


# POST /_fake/<route> for the identity checks: route -> what it does with the JSON body.
_IDENTITY_ROUTES: dict[str, Any] = {
    "/_fake/mfa": _control_mfa,
    "/_fake/oidc-provider": lambda fake, d: fake.add_oidc_provider(str(d["issuer"]), [str(a) for a in d["audiences"]]),
    "/_fake/trust": lambda fake, d: fake.trust_web_identity(
        str(d["role_arn"]), str(d["issuer"]), str(d.get("subject", "*"))
    ),
    "/_fake/github-oidc": lambda fake, d: fake.github_oidc(str(d["request_token"]), dict(d.get("claims", {}))),
    "/_fake/sso-client": lambda fake, d: fake.add_sso_client(
        str(d["refresh_token"]), str(d["client_id"]), str(d["client_secret"])
    ),
}


def _json_object(body: bytes) -> dict[str, Any]:
    data = json.loads(body or b"{}")
    if not isinstance(data, dict):
        raise TypeError("body must be a JSON object")
    return data


def _assumed(role_arn: str, account: str, role_name: str, session: str) -> _Identity:
    return _Identity(
        f"arn:aws:sts::{account}:assumed-role/{role_name}/{session}",
        f"{_user_id_for(role_arn, 'AROA')}:{session}",
        account,
    )


def _web_identity_refusal(
    claims: Mapping[str, Any], providers: Mapping[str, tuple[str, ...]], trust: list[tuple[str, str]]
) -> tuple[int, str, str] | None:
    """STS's checks of a web identity token, in its order: provider, audience, expiry, the role's trust in ``sub``."""
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or _issuer_key(issuer) not in providers:
        return 400, "InvalidIdentityToken", STS_NO_PROVIDER.format(iss=issuer)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if not any(a in providers[_issuer_key(issuer)] for a in audiences):
        return 400, "InvalidIdentityToken", STS_BAD_AUDIENCE
    expiry, now = claims.get("exp"), time.time()
    if isinstance(expiry, (int, float)) and expiry <= now:
        when = f"current date/time {int(now)} must be before the expiration date/time{int(expiry)}"
        return 400, "ExpiredTokenException", f"Token expired: {when}"
    subject = claims.get("sub")
    for key, pattern in trust:
        if key == _issuer_key(issuer) and isinstance(subject, str) and _string_like(pattern, subject):
            return None
    return 403, "AccessDenied", STS_SUB_REFUSED


def _issuer_key(issuer: str) -> str:
    """An issuer URL as IAM names its OIDC provider: no scheme, no trailing slash."""
    return issuer.removeprefix("https://").rstrip("/")


def _string_like(pattern: str, value: str) -> bool:
    """IAM's StringLike: ``*`` any run of characters, ``?`` one character, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


@contextlib.contextmanager
def running_fake(**kw: Any) -> Iterator[FakeAWS]:
    """Start a FakeAWS (keyword arguments as for FakeAWS) for the duration of a with block."""
    fake = FakeAWS(**kw).start()
    try:
        yield fake
    finally:
        fake.stop()


class FakeAWSClient:
    """Drive a FakeAWS running in another process through its /_fake/ control plane."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # Never route loopback control traffic through a proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, route: str, payload: Mapping[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_fake/{route}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise RuntimeError(f"fakeecr control {method} {route}: HTTP {exc.code}: {detail}") from None

    def state(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "state"))

    def calls(self, op: str | None = None) -> int:
        return _count(self._call("GET", "calls")["calls"], op)

    def requests(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.state()["requests"])

    def issued(self) -> list[str]:
        return cast(list[str], self.state()["issued"])

    def env(self) -> dict[str, str]:
        return env_for(self.url)

    def configure(self, **kw: Any) -> None:
        self._call("POST", "config", kw)

    def add_fault(self, op: str, kind: str, *, times: int | None = 1, delay: float = 0.0) -> None:
        self._call("POST", "fault", {"op": op, "kind": kind, "times": times, "delay": delay})

    def clear_faults(self) -> None:
        self._call("POST", "clear-faults", {})

    def reset(self) -> None:
        self._call("POST", "reset", {})

    def require_mfa(
        self, role_arn: str, serial_number: str, code: str, *, max_session_duration: float = 3600.0
    ) -> None:
        payload = {"role_arn": role_arn, "serial_number": serial_number, "code": code}
        self._call("POST", "mfa", {**payload, "max_session_duration": max_session_duration})

    def add_oidc_provider(self, issuer: str, audiences: list[str]) -> None:
        self._call("POST", "oidc-provider", {"issuer": issuer, "audiences": audiences})

    def trust_web_identity(self, role_arn: str, issuer: str, subject: str = "*") -> None:
        self._call("POST", "trust", {"role_arn": role_arn, "issuer": issuer, "subject": subject})

    def github_oidc(self, request_token: str, claims: Mapping[str, Any]) -> None:
        self._call("POST", "github-oidc", {"request_token": request_token, "claims": dict(claims)})

    def add_sso_client(self, refresh_token: str, client_id: str, client_secret: str) -> None:
        payload = {"refresh_token": refresh_token, "client_id": client_id, "client_secret": client_secret}
        self._call("POST", "sso-client", payload)


# -- standalone ----------------------------------------------------------------


def _export_lines(env: Mapping[str, str]) -> str:
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake AWS endpoints (ECR, ECR Public, STS, SSO, container, IMDS).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--password", default=None, help="fixed registry password (default: random per call)")
    parser.add_argument("--lifetime", type=float, default=43200.0, help="token lifetime in seconds")
    parser.add_argument("--latency", type=float, default=0.0, help="delay before every answer, in seconds")
    parser.add_argument("--account", default="123456789012", help="default AWS account id")
    parser.add_argument("--ready-file", help="write the URL to this file once serving")
    parser.add_argument("--print-env", action="store_true", help="print shell export lines instead of the URL line")
    parser.add_argument("--env-file", help="write shell export lines for env() to this file")
    args = parser.parse_args(argv)

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    fake = FakeAWS(
        port=args.port,
        token_lifetime=args.lifetime,
        password=args.password,
        account=args.account,
        latency=args.latency,
    ).start()
    try:
        exports = _export_lines(fake.env())
        if args.env_file:
            _write_atomically(args.env_file, exports)
        if args.ready_file:
            _write_atomically(args.ready_file, fake.url + "\n")
        # Last, so whoever reads this line finds the files above already written.
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.write(exports if args.print_env else f"FAKE_AWS_URL={fake.url}\n")
            sys.stdout.flush()
        while not done.wait(1.0):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
