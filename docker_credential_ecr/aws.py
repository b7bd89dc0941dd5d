"""The one module that talks to AWS: ECR, ECR Public and STS calls, each returning what it got.

Imported only on a cache miss (and by the extra commands): boto3 and botocore cost about ten
interpreter starts to import and a client several more. Clients are built through boto3's
:class:`boto3.session.Session` (the design card's choice, and what a boto3 user configures); its
resource layer is never touched, and the session adds a few milliseconds to a cold ``get`` over
botocore's own (see README, Performance). The credential chain, endpoint rules (partitions, FIPS,
dual-stack, ``AWS_ENDPOINT_URL_*``), retries, proxies and ``AWS_CA_BUNDLE`` are botocore's own.
Nothing here reads or writes the store: :mod:`helper` and the credential sources (:mod:`credentials`)
keep what these functions return.
"""

from __future__ import annotations

import base64
import binascii
import os
import time

import boto3.session
import botocore
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
from docker_credential_ecr.store import AwsCredentials, Token

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from botocore.credentials import Credentials

    from docker_credential_ecr.config import RegistryTable
    from docker_credential_ecr.registry import Registry

ECR_PUBLIC_REGION = "us-east-1"
# Each attempt is bounded by these; three attempts in all (botocore "standard" retries: throttling,
# 5xx, connection errors; ``total_max_attempts`` counts the first request, botocore's ``max_attempts``
# would count only the retries) stay well inside the helper's overall deadline, which also bounds
# credential providers (STS, SSO, IMDS) whose own timeouts we cannot set.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 6.0
MAX_ATTEMPTS = 3


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
        user_agent_extra=f"docker-credential-ecr/{__version__}",
        **options,
    )


def sts_client(
    session: boto3.session.Session,
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
    return session.client("sts", region_name=region, config=bounded_config(**options))


class PromptRefusedError(Exception):
    """botocore wanted to prompt for an MFA code: never here (no terminal); see mfa.py and ``login``."""


def _refuse_prompt(prompt: str) -> str:
    raise PromptRefusedError(prompt)


def make_session(profile: str | None = None, credentials: AwsCredentials | None = None) -> boto3.session.Session:
    """A boto3 session for ``profile`` (None: the environment's), signing with ``credentials`` if given."""
    if credentials is not None:
        return boto3.session.Session(
            profile_name=profile,
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
        )
    session = boto3.session.Session(profile_name=profile)
    # botocore's assume-role provider asks for MFA codes with getpass: with no terminal that prints a
    # GetPassWarning and the prompt, then fails with EOFError. Refuse instead (explain() says: login).
    try:
        provider = session._session.get_component("credential_provider").get_provider("assume-role")
        provider._prompter = _refuse_prompt
    except Exception:  # noqa: S110 - an unknown botocore: its own prompt, as before
        pass
    return session


def make_client(registry: Registry, session: boto3.session.Session, environ: Mapping[str, str]) -> Any:
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
    return session.client(registry.service, region_name=region, config=config)  # type: ignore[call-overload]


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
    credentials: AwsCredentials | None = None,
    who: str | None = None,
) -> Token:
    """Call GetAuthorizationToken for ``registry`` and decode the answer.

    With ``credentials`` (from a credential source) the call is signed with them; without, botocore
    resolves its chain for ``profile``. ``who`` names the principal in error lines when it is not what
    the environment and ``profile`` say. Raises :class:`TokenFetchError` whose text is one line a
    person can act on, never a secret.
    """
    issued_at = time.time()
    try:
        session = make_session(profile, credentials)
        response = make_client(registry, session, environ).get_authorization_token()
    except Exception as exc:  # every failure becomes one actionable line
        raise TokenFetchError(explain(exc, registry, profile=profile, environ=environ, who=who)) from None
    data = response.get("authorizationData")
    if isinstance(data, list):  # ECR: a list (one entry per requested registry); ECR Public: one object
        data = data[0] if data else None
    if not isinstance(data, dict):
        raise TokenFetchError(f"{registry.service} GetAuthorizationToken returned no authorization data")
    user, password = decode_token(data.get("authorizationToken"))
    return Token(
        username=user, password=password, issued_at=issued_at, expires_at=_expiry(data.get("expiresAt"), issued_at)
    )


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
        # Optional, whatever the stubs say: older botocore-stubs (the newest for Python 3.9) do not.
        credentials: Credentials | None = make_session(profile).get_credentials()
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


def one_line(text: object, limit: int = 300) -> str:
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
    from docker_credential_ecr.identity import describe, selected_profile

    where = f"ECR Public ({ECR_PUBLIC_REGION})" if registry.service == "ecr-public" else f"ECR ({registry.region})"
    action = "ecr-public:GetAuthorizationToken" if registry.service == "ecr-public" else "ecr:GetAuthorizationToken"
    call = "GetAuthorizationToken"
    if role_arn is not None:
        where, action, call = f"STS ({sts_region})", f"sts:AssumeRole on {role_arn}", "AssumeRole"
    principal = who or describe(environ, profile)
    name = selected_profile(environ, profile)
    if isinstance(exc, PromptRefusedError):
        from docker_credential_ecr.mfa import needs_login_line

        return needs_login_line(name)
    if isinstance(exc, (SSOTokenLoadError, UnauthorizedSSOTokenError, TokenRetrievalError)):
        return f"the SSO session for profile {name!r} has expired or is missing: run `aws sso login --profile {name}`"
    if isinstance(exc, ProfileNotFound):
        return (
            f"AWS profile {name!r} is not in the AWS config or credentials files: run `aws configure --profile {name}`"
        )
    if isinstance(exc, NoCredentialsError):
        from docker_credential_ecr import imds

        # Instance metadata was the chain's last hope: why did it fail? botocore read the process's
        # environment for it, so the probe does too (``environ`` wins where it says otherwise).
        cause = imds.diagnose({**os.environ, **environ})
        if cause is not None:
            return cause
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return NO_CREDENTIALS
    if isinstance(exc, CredentialRetrievalError):
        return f"could not load AWS credentials ({principal}): {one_line(exc)}"
    if isinstance(exc, SSLError):
        return (
            f"the TLS certificate of the {where} endpoint is not trusted ({one_line(exc, 160)}): behind a "
            "TLS-inspecting proxy, point AWS_CA_BUNDLE at its CA certificate"
        )
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError)):
        return f"cannot reach the {where} endpoint ({one_line(exc)}): check the network, proxy and region"
    if isinstance(exc, NoRegionError):
        return f"no region for {where}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), one_line(error.get("Message", ""))
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
        return f"{where} {call} failed: {one_line(exc)}"
    return f"{where} {call} failed: {type(exc).__name__}: {one_line(exc)}"


# -- STS: credentials for the sources of :mod:`credentials` ------------------------------------------
def _aws_credentials(answer: Mapping[str, Any], issued_at: float, what: str) -> AwsCredentials:
    creds = answer.get("Credentials")
    if not isinstance(creds, dict) or not all(
        isinstance(creds.get(k), str) and creds.get(k) for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")
    ):
        raise TokenFetchError(f"{what} returned no credentials")
    return AwsCredentials(
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
        issued_at=issued_at,
        expires_at=_expiry(creds.get("Expiration"), issued_at),
    )


def assume_role(registry: Registry, table: RegistryTable, *, environ: Mapping[str, str]) -> AwsCredentials:
    """STS AssumeRole for ``table.role_arn`` with the credentials of the table's profile (or the chain).

    STS is asked in ``table.region``, else the registry's region (a regional endpoint in the
    registry's own partition), over FIPS for a ``-fips`` registry. Raises :class:`TokenFetchError`.
    """
    from docker_credential_ecr.config import DEFAULT_SESSION_NAME

    assert table.role_arn is not None
    region = table.sts_region(registry)
    issued_at = time.time()
    try:
        client = sts_client(make_session(table.profile), region, environ=environ, fips=registry.fips)
        params = {"RoleArn": table.role_arn, "RoleSessionName": table.session_name or DEFAULT_SESSION_NAME}
        if table.external_id:
            params["ExternalId"] = table.external_id
        answer = client.assume_role(**params)
    except Exception as exc:  # every failure becomes one actionable line
        line = explain(
            exc, registry, profile=table.profile, environ=environ, role_arn=table.role_arn, sts_region=region
        )
        raise TokenFetchError(line) from None
    return _aws_credentials(answer, issued_at, f"STS AssumeRole for {table.role_arn}")


def assume_role_as(
    role_arn: str,
    *,
    session_name: str,
    region: str,
    environ: Mapping[str, str],
    credentials: AwsCredentials | None = None,
    profile: str | None = None,
    external_id: str | None = None,
    mfa_serial: str | None = None,
    mfa_code: str | None = None,
    duration: int | None = None,
) -> AwsCredentials:
    """STS AssumeRole for ``role_arn`` with ``credentials`` (else ``profile``'s chain): MFA sessions and the
    profiles chained onto one (see :mod:`mfa`). Raises :class:`TokenFetchError` (never repeating the code).
    """
    session = make_session(profile, credentials)
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": session_name}
    if external_id:
        params["ExternalId"] = external_id
    if mfa_code is not None:
        params["SerialNumber"] = mfa_serial
        params["TokenCode"] = mfa_code
    if duration:
        params["DurationSeconds"] = duration
    issued_at = time.time()
    try:
        answer = sts_client(session, region, environ=environ).assume_role(**params)
    except Exception as exc:  # one line; the code is single-use and never repeated back
        raise TokenFetchError(_explain_assume(exc, role_arn, region, profile, mfa_serial)) from None
    return _aws_credentials(answer, issued_at, f"STS AssumeRole for {role_arn}")


def _explain_assume(exc: BaseException, role_arn: str, region: str, profile: str | None, mfa_serial: str | None) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), one_line(error.get("Message", ""))
        if "MultiFactorAuthentication failed" in message:
            return f"STS refused the MFA code for {mfa_serial}: check the device and try again"
        if code == "ValidationError" and "DurationSeconds" in message:
            return f"{role_arn} does not allow a session that long ({message}): ask for less with --duration"
        where = f" (profile {profile!r})" if profile else ""
        return f"STS ({region}) AssumeRole for {role_arn}{where} failed: {code}: {message}"
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError)):
        return f"cannot reach STS ({region}) to assume {role_arn} ({one_line(exc)}): check the network and proxy"
    if isinstance(exc, BotoCoreError):
        return f"STS ({region}) AssumeRole for {role_arn}: {one_line(exc)}"
    return f"STS ({region}) AssumeRole for {role_arn} failed: {type(exc).__name__}: {one_line(exc)}"


def is_role_arn(value: str) -> bool:
    return value.startswith("arn:") and ":iam::" in value and ":role/" in value


def assume_role_with_web_identity(
    registry: Registry,
    *,
    role_arn: str,
    role_from: str,
    session_name: str,
    token: str,
    token_label: str = "<web identity token>",  # noqa: S107 - a label for messages, not a secret
    environ: Mapping[str, str],
    claims: Mapping[str, Any] | None = None,
    source_label: str | None = None,
) -> AwsCredentials:
    """STS AssumeRoleWithWebIdentity: ``token`` (a JWT) for ``role_arn`` (named by ``role_from``).

    Unsigned (the token is the credential: no other credentials are resolved or sent), in the
    registry's own region (a role in aws-cn or aws-us-gov is assumed in its partition), FIPS for a
    ``-fips`` registry. Raises :class:`TokenFetchError`, whose text never holds the token. With the
    token's ``claims`` (a CI's token from ``source_label``), a refusal names the claim STS rejected.
    """
    if not is_role_arn(role_arn):
        shown = role_arn if len(role_arn) <= 80 else role_arn[:79] + "…"
        raise TokenFetchError(f"{role_from} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>): {shown!r}")
    region = ECR_PUBLIC_REGION if registry.service == "ecr-public" else registry.region
    issued_at = time.time()
    what = f"STS AssumeRoleWithWebIdentity for {role_arn}"
    try:
        client = sts_client(make_session(), region, environ=environ, fips=registry.fips, unsigned=True)
        answer = client.assume_role_with_web_identity(
            RoleArn=role_arn, RoleSessionName=session_name, WebIdentityToken=token
        )
    except Exception as exc:  # every failure becomes one line; the token is cut out of it
        if claims is not None:
            line = explain_ci_web_identity(exc, role_arn, region, claims, source_label or "the CI")
        else:
            line = explain_web_identity(exc, role_arn, session_name)
        raise TokenFetchError(redact(line, token, token_label)) from None
    return _aws_credentials(answer, issued_at, what)


def redact(text: str, token: str, label: str = "<web identity token>") -> str:
    """``text`` with ``token`` (and its signature, should a message quote only that) cut out."""
    for secret in (token, token.rpartition(".")[2]):
        if len(secret) >= 8:
            text = text.replace(secret, label)
    return text


def explain_web_identity(exc: BaseException, role: str, session_name: str) -> str:
    """One actionable line for a failed AssumeRoleWithWebIdentity (the caller cuts the token out)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), one_line(error.get("Message", ""))
        if code == "AccessDenied":
            return (
                f"STS refused AssumeRoleWithWebIdentity for {role} ({message}): the role's trust policy must "
                f"allow the cluster's OIDC provider and session {session_name}"
            )
        if code == "InvalidIdentityToken":
            return (
                f"STS rejected the service account token for {role} ({message}): register the cluster's issuer "
                "as an IAM OIDC provider and set tokenAttributes.serviceAccountTokenAudience to its audience"
            )
        if code in ("ExpiredTokenException", "ExpiredToken"):
            return f"the service account token for {role} has expired ({message})"
        return f"STS AssumeRoleWithWebIdentity for {role} failed: {code}: {message}"
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError)):
        return f"cannot reach STS to assume {role} ({one_line(exc)}): check the network, proxy and region"
    return f"STS AssumeRoleWithWebIdentity for {role} failed: {type(exc).__name__}: {one_line(exc)}"


def explain_ci_web_identity(  # noqa: PLR0911 - one return per refusal reads best
    exc: BaseException, role: str, region: str, claims: Mapping[str, Any], source_label: str
) -> str:
    """The line for a CI token STS refused: which claim (``iss``, ``aud``, ``sub``, expiry) and what to change."""
    aud_claim = claims.get("aud")
    audiences = sorted(str(a) for a in aud_claim) if isinstance(aud_claim, list) else [str(aud_claim or "")]
    iss, sub, aud = str(claims.get("iss") or "(none)"), str(claims.get("sub") or "(none)"), ",".join(audiences)
    aud = aud or "(none)"
    provider = iss[len("https://") :] if iss.startswith("https://") else iss
    provider = provider.rstrip("/")
    if not isinstance(exc, ClientError):
        if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError, EndpointConnectionError, ConnectionClosedError)):
            return f"cannot reach STS ({region}) to assume {role} ({one_line(exc)}): check the network and proxy"
        return f"STS ({region}) AssumeRoleWithWebIdentity for {role} failed: {type(exc).__name__}: {one_line(exc)}"
    error = exc.response.get("Error", {})
    code, message = error.get("Code", "Unknown"), one_line(error.get("Message", ""))
    if code == "InvalidIdentityToken" and "No OpenIDConnect provider" in message:
        return (
            f"STS does not trust the token's issuer (iss {iss}): create an IAM OIDC identity provider for {iss} "
            f"with client id {aud} in the account of {role}"
        )
    if code == "InvalidIdentityToken" and "audience" in message.lower():
        return (
            f"STS refused the token's audience (aud {aud}): add {aud} to the client ids of the IAM OIDC provider "
            f"{provider}, or have the CI issue the token for sts.amazonaws.com"
        )
    if code == "AccessDenied":
        return (
            f"the trust policy of {role} refuses the token's subject (sub {sub}): allow it in the condition on "
            f"{provider}:sub (and {provider}:aud = {aud})"
        )
    if code in ("ExpiredTokenException", "ExpiredToken"):
        return f"the OIDC token from {source_label} has expired: the CI must hand out a fresh one ({message})"
    if code == "InvalidIdentityToken":
        return f"STS refused the OIDC token from {source_label} (iss {iss}): {message}"
    return f"STS ({region}) AssumeRoleWithWebIdentity for {role} failed: {code}: {message}"
