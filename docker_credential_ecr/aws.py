"""The one module that talks to AWS: a botocore client for a registry, and a decoded token.

Imported only on a cache miss (and by the extra commands): botocore costs about ten interpreter
starts to import and a client several more. botocore is used directly rather than through boto3's
resource layer, which adds import time and nothing this helper needs; the credential chain, endpoint
rules (partitions, FIPS, dual-stack, ``AWS_ENDPOINT_URL_*``), retries, proxies and ``AWS_CA_BUNDLE``
are botocore's own.
"""

from __future__ import annotations

import base64
import binascii
import os
import time

import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from docker_credential_ecr import __version__
from docker_credential_ecr.errors import TokenFetchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from docker_credential_ecr.config import Rule
    from docker_credential_ecr.registry import Registry

ECR_PUBLIC_REGION = "us-east-1"
# Each attempt is bounded by these; three attempts in all (botocore "standard" retries: throttling,
# 5xx, connection errors; ``total_max_attempts`` counts the first request, botocore's ``max_attempts``
# would count only the retries) stay well inside the helper's overall deadline, which also bounds
# credential providers (STS, SSO, IMDS) whose own timeouts we cannot set.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 6.0
MAX_ATTEMPTS = 3


class Token:
    """A decoded authorization token. ``repr`` never shows the password."""

    __slots__ = ("expires_at", "issued_at", "password", "username")

    def __init__(self, username: str, password: str, issued_at: float, expires_at: float) -> None:
        self.username = username
        self.password = password
        self.issued_at = issued_at
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"Token(username={self.username!r}, expires_at={self.expires_at})"


# The service-specific endpoint variable of each client this helper builds (botocore's naming).
_ENDPOINT_VARIABLES = {
    "ecr": "AWS_ENDPOINT_URL_ECR",
    "ecr-public": "AWS_ENDPOINT_URL_ECR_PUBLIC",
    "sts": "AWS_ENDPOINT_URL_STS",
}


def _endpoint_overridden(service: str, environ: Mapping[str, str]) -> bool:
    if (environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") or "").lower() == "true":
        return False
    return bool(environ.get(_ENDPOINT_VARIABLES[service]) or environ.get("AWS_ENDPOINT_URL"))


def bounded_config(**options: Any) -> Config:
    """A client config with this helper's timeouts and retries (every AWS call it makes is bounded)."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        **options,
    )


def sts_client(
    session: botocore.session.Session,
    region: str,
    *,
    environ: Mapping[str, str],
    fips: bool = False,
    unsigned: bool = False,
) -> Any:
    """An STS client in ``region`` (FIPS unless the endpoint is overridden); ``unsigned`` for web identity."""
    options: dict[str, Any] = {"use_fips_endpoint": fips and not _endpoint_overridden("sts", environ)}
    if unsigned:
        options["signature_version"] = botocore.UNSIGNED
    return session.create_client("sts", region_name=region, config=bounded_config(**options))


def make_session(profile: str | None = None) -> botocore.session.Session:
    session = botocore.session.Session(profile=profile)
    session.user_agent_extra = f"docker-credential-ecr/{__version__}"
    return session


def make_client(registry: Registry, session: botocore.session.Session, environ: Mapping[str, str]) -> Any:
    """An ECR or ECR Public client for ``registry``'s region, FIPS and dual-stack endpoint.

    A ``-fips`` host gets the FIPS endpoint and a dual-stack host the dual-stack one. An explicit
    endpoint override (``AWS_ENDPOINT_URL_ECR`` ...) wins: botocore refuses FIPS or dual-stack with a
    custom endpoint, and whoever set one meant it.
    """
    overridden = _endpoint_overridden(registry.service, environ)
    config = bounded_config(
        use_fips_endpoint=registry.fips and not overridden,
        use_dualstack_endpoint=registry.dualstack and not overridden,
    )
    region = ECR_PUBLIC_REGION if registry.service == "ecr-public" else registry.region
    return session.create_client(registry.service, region_name=region, config=config)


def decode_token(encoded: object) -> tuple[str, str]:
    """``base64("user:password")`` -> (user, password); TokenFetchError for anything else."""
    if not isinstance(encoded, str):
        raise TokenFetchError("ECR returned no authorization token")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise TokenFetchError("ECR returned an authorization token that is not base64 'user:password'") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        raise TokenFetchError("ECR returned an authorization token that is not base64 'user:password'")
    return user, password


def _expiry(value: object, issued_at: float) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    # No expiry: assume the shortest real lifetime rather than trusting it forever.
    return issued_at + 3600.0


def fetch_token(
    registry: Registry,
    *,
    environ: Mapping[str, str],
    profile: str | None = None,
    session: botocore.session.Session | None = None,
    who: str | None = None,
) -> Token:
    """Call GetAuthorizationToken for ``registry`` and decode the answer.

    ``who`` names the principal in error lines when it is not what the environment and ``profile``
    say (an assumed role). Raises :class:`TokenFetchError` whose text is one line a person can act
    on, never a secret.
    """
    issued_at = time.time()
    try:
        client = make_client(registry, session or make_session(profile), environ)
        response = client.get_authorization_token()
    except Exception as exc:  # every failure becomes one actionable line
        raise TokenFetchError(explain(exc, registry, profile=profile, environ=environ, who=who)) from None
    data = response.get("authorizationData")
    if isinstance(data, list):  # ECR: a list (one entry per requested registry); ECR Public: one object
        data = data[0] if data else None
    if not isinstance(data, dict):
        raise TokenFetchError(f"{registry.service} GetAuthorizationToken returned no authorization data")
    user, password = decode_token(data.get("authorizationToken"))
    return Token(user, password, issued_at, _expiry(data.get("expiresAt"), issued_at))


NO_CREDENTIALS = (
    "no AWS credentials found (looked at AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws/config and credentials, "
    "web identity, container and instance credentials): run `aws configure` or set AWS_PROFILE"
)


def credentials_problem(environ: Mapping[str, str], profile: str | None = None) -> str | None:
    """None when botocore's credential chain yields credentials for ``profile``; else the line that says
    which source failed and what to do. Resolves them as a call would (an assumed role calls STS, the
    container and instance sources their endpoints); calls no ECR API. Never a secret in the line."""
    from docker_credential_ecr.registry import Registry

    try:
        credentials = make_session(profile).get_credentials()
        if credentials is None:
            return NO_CREDENTIALS
        credentials.get_frozen_credentials()
    except Exception as exc:  # the same lines `get` prints for the same failures
        anywhere = Registry(
            service="ecr-public", account=None, region=ECR_PUBLIC_REGION, fips=False, dualstack=False, host=""
        )
        line = explain(exc, anywhere, profile=profile, environ=environ)
        return line.replace("ECR Public (us-east-1) GetAuthorizationToken failed: ", "loading AWS credentials failed: ")
    return None


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def explain(  # noqa: PLR0911, PLR0912 - one return per kind of failure reads best
    exc: BaseException,
    registry: Registry,
    *,
    profile: str | None,
    environ: Mapping[str, str],
    who: str | None = None,
    role_arn: str | None = None,
    sts_region: str | None = None,
) -> str:
    """Turn a botocore failure into the one line a person needs to fix it.

    ``who`` names the principal when the environment does not (an assumed role); ``role_arn`` and
    ``sts_region`` say the failure was STS AssumeRole rather than GetAuthorizationToken.
    """
    from docker_credential_ecr.principal import describe, selected_profile

    where = f"ECR Public ({ECR_PUBLIC_REGION})" if registry.service == "ecr-public" else f"ECR ({registry.region})"
    action = "ecr-public:GetAuthorizationToken" if registry.service == "ecr-public" else "ecr:GetAuthorizationToken"
    call = "GetAuthorizationToken"
    if role_arn is not None:
        where, action, call = f"STS ({sts_region})", f"sts:AssumeRole on {role_arn}", "AssumeRole"
    principal = who or describe(environ, profile)
    name = selected_profile(environ, profile)
    if isinstance(exc, (SSOTokenLoadError, UnauthorizedSSOTokenError, TokenRetrievalError)):
        return f"the SSO session for profile {name!r} has expired or is missing: run `aws sso login --profile {name}`"
    if isinstance(exc, ProfileNotFound):
        return (
            f"AWS profile {name!r} is not in the AWS config or credentials files: run `aws configure --profile {name}`"
        )
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return NO_CREDENTIALS
    if isinstance(exc, CredentialRetrievalError):
        return f"could not load AWS credentials ({principal}): {_one_line(exc)}"
    if isinstance(exc, SSLError):
        return (
            f"the TLS certificate of the {where} endpoint is not trusted ({_one_line(exc, 160)}): behind a "
            "TLS-inspecting proxy, point AWS_CA_BUNDLE at its CA certificate"
        )
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError)):
        return f"cannot reach the {where} endpoint ({_one_line(exc)}): check the network, proxy and region"
    if isinstance(exc, NoRegionError):
        return f"no region for {where}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), _one_line(error.get("Message", ""))
        if code in ("AccessDeniedException", "AccessDenied"):
            return f"access denied: {principal} may not call {action} ({message})"
        if code in ("ExpiredTokenException", "ExpiredToken", "RequestExpired"):
            return f"the AWS credentials ({principal}) have expired: refresh them and retry"
        if code in ("UnrecognizedClientException", "InvalidSignatureException", "InvalidClientTokenId"):
            return f"AWS rejected the credentials ({principal}): {code}: check the access key"
        if code in ("ThrottlingException", "Throttling", "TooManyRequestsException"):
            return f"{where} is throttling {call}: retry in a minute"
        return f"{where} {call} failed: {code}: {message}"
    if isinstance(exc, BotoCoreError):
        return f"{where} {call} failed: {_one_line(exc)}"
    return f"{where} {call} failed: {type(exc).__name__}: {_one_line(exc)}"


# -- per-registry roles (the config file's role_arn) ------------------------------------------------
ROLE_CACHE_DIR = "roles"  # under the token cache directory: <cache>/roles/cache.json, same rules


class RoleCredentials:
    """Temporary credentials of an assumed role. ``repr`` never shows the secret or the session token."""

    __slots__ = ("access_key_id", "expires_at", "secret_access_key", "session_token")

    def __init__(self, access_key_id: str, secret_access_key: str, session_token: str, expires_at: float) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"RoleCredentials(access_key_id={self.access_key_id!r}, expires_at={self.expires_at})"


def assume_role(
    registry: Registry, rule: Rule, *, environ: Mapping[str, str], session: botocore.session.Session
) -> RoleCredentials:
    """STS AssumeRole for ``rule.role_arn`` with the credentials of ``session`` (the rule's profile).

    STS is asked in ``rule.region``, else the registry's region (a regional endpoint in the
    registry's own partition), over FIPS for a ``-fips`` registry. Raises :class:`TokenFetchError`.
    """
    from docker_credential_ecr.config import DEFAULT_SESSION_NAME

    assert rule.role_arn is not None
    region = rule.sts_region(registry)
    issued_at = time.time()
    try:
        client = sts_client(session, region, environ=environ, fips=registry.fips)
        params = {"RoleArn": rule.role_arn, "RoleSessionName": rule.session_name or DEFAULT_SESSION_NAME}
        if rule.external_id:
            params["ExternalId"] = rule.external_id
        creds = client.assume_role(**params)["Credentials"]
        return RoleCredentials(
            creds["AccessKeyId"],
            creds["SecretAccessKey"],
            creds["SessionToken"],
            _expiry(creds.get("Expiration"), issued_at),
        )
    except Exception as exc:  # every failure becomes one actionable line
        line = explain(exc, registry, profile=rule.profile, environ=environ, role_arn=rule.role_arn, sts_region=region)
        raise TokenFetchError(line) from None


def fetch_token_as_role(
    registry: Registry,
    rule: Rule,
    *,
    environ: Mapping[str, str],
    cache_dir: str | None,
    principal: str,
    now: float | None = None,
) -> Token:
    """GetAuthorizationToken as ``rule.role_arn``, assumed from the rule's profile (or the default chain).

    The role's credentials are kept in ``<cache_dir>/roles/cache.json`` (0600, like tokens) under
    ``principal`` (which covers the source identity and the role settings) and the partition, and
    re-assumed once half their lifetime has passed; ``cache_dir=None`` assumes the role every time.
    """
    session = make_session(rule.profile)
    key = f"{principal}/sts/{registry.partition}"
    creds = _cached_role(cache_dir, key, time.time() if now is None else now)
    if creds is None:
        creds = assume_role(registry, rule, environ=environ, session=session)
        _store_role(cache_dir, key, creds, time.time() if now is None else now)
    session.set_credentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    return fetch_token(registry, environ=environ, profile=rule.profile, session=session, who=f"role {rule.role_arn}")


def _cached_role(cache_dir: str | None, key: str, now: float) -> RoleCredentials | None:
    from docker_credential_ecr import jsonwire
    from docker_credential_ecr.cache import TokenCache
    from docker_credential_ecr.errors import CacheError

    if cache_dir is None:
        return None
    try:
        entry = TokenCache(os.path.join(cache_dir, ROLE_CACHE_DIR)).lookup(key)
        secrets = jsonwire.loads(entry.password) if entry is not None and entry.is_fresh(now) else None
    except (CacheError, ValueError):
        return None
    if entry is None or not isinstance(secrets, dict):
        return None
    secret, token = secrets.get("secret"), secrets.get("token")
    if not (isinstance(secret, str) and isinstance(token, str) and secret and token):
        return None
    return RoleCredentials(entry.username, secret, token, entry.expires_at)


def _store_role(cache_dir: str | None, key: str, creds: RoleCredentials, now: float) -> None:
    from docker_credential_ecr import jsonwire
    from docker_credential_ecr.cache import Entry, TokenCache
    from docker_credential_ecr.errors import CacheError

    if cache_dir is None:
        return
    entry = Entry(
        username=creds.access_key_id,
        password=jsonwire.dumps_object({"secret": creds.secret_access_key, "token": creds.session_token}),
        issued_at=now,
        expires_at=creds.expires_at,
        hosts=(),
    )
    try:
        TokenCache(os.path.join(cache_dir, ROLE_CACHE_DIR)).store(key, entry, now=now)
    except CacheError:
        pass  # no cache for roles: the role is assumed again on the next miss
