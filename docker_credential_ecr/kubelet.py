"""The kubelet image credential provider protocol (``credentialprovider.kubelet.k8s.io``), on :class:`Helper`.

The kubelet runs the provider named in its ``CredentialProviderConfig`` for every image that matches
``matchImages``, writes a ``CredentialProviderRequest`` on its stdin and reads a
``CredentialProviderResponse`` from its stdout (kubernetes pkg/credentialprovider/plugin/plugin.go):

* The response must carry the request's ``apiVersion`` (the kubelet compares them) and is decoded
  *strictly*: an unknown field makes the kubelet drop the whole answer. So the response has exactly
  ``apiVersion``, ``kind``, ``cacheKeyType``, ``cacheDuration`` and ``auth`` in all three versions.
* ``auth`` is keyed by the registry host as the image spells it (with its port, if any): the kubelet
  matches keys against images part by part, with equal ports, and keys its own ``Registry`` cache by
  that same first path component.
* ``cacheDuration`` is a Go ``time.Duration`` string (``6h0m0s``), half the token's remaining life as
  AWS's own provider answers; ``0s`` means "do not cache".
* A failure is a non-zero exit; the kubelet logs our stderr and pulls without credentials. An image
  that is not in an ECR registry is not a failure: exit 0 with an empty ``auth`` and ``0s``.

Kubernetes 1.33+ may add ``serviceAccountToken`` and ``serviceAccountAnnotations`` (KEP-4412). With
both a token and a role (annotation ``eks.amazonaws.com/ecr-role-arn``, else ``AWS_ECR_ROLE_ARN``),
the token is exchanged for the role's credentials with STS AssumeRoleWithWebIdentity and those fetch
the ECR token; with a token and no role the node's own credentials are used, as AWS's provider does.
How the kubelet caches such answers is set in its config (``tokenAttributes.cacheType``), not in
the response: released kubelets have no response field for it.

Caching in the web-identity path: the STS credentials are never written anywhere (they can do
whatever the role can, not only pull); the ECR token they fetch is cached like any other, under
an identity key made of the node's own, the role ARN and a hash of the service account's
identity (issuer, subject, audience, UID), so neither the node's token nor another service
account's is ever served for it, and a service account that the role's trust policy does not admit
always meets STS. The service account token itself is never stored, logged or put in a message.
"""

from __future__ import annotations

import time

from docker_credential_ecr import identity, jsonwire
from docker_credential_ecr.credentials import Source
from docker_credential_ecr.errors import CredentialsNotFoundError
from docker_credential_ecr.helper import Helper

try:  # as in identity.py: the builtin BLAKE2 module spares loading OpenSSL
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - some builds only ship hashlib
    from hashlib import blake2b

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from docker_credential_ecr.credentials import Keeper
    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.settings import Settings
    from docker_credential_ecr.store import AwsCredentials, Token

API_GROUP = "credentialprovider.kubelet.k8s.io"
# Newest first; the kubelet sends the version its config names and wants the same one back.
API_VERSIONS = (f"{API_GROUP}/v1", f"{API_GROUP}/v1beta1", f"{API_GROUP}/v1alpha1")
REQUEST_KIND = "CredentialProviderRequest"
RESPONSE_KIND = "CredentialProviderResponse"
CACHE_KEY_TYPE = "Registry"
# A request is an image reference, a service account token (about 1 KiB) and a few annotations.
MAX_REQUEST_BYTES = 1 << 20
ROLE_ANNOTATION = "eks.amazonaws.com/ecr-role-arn"
ROLE_ENV = "AWS_ECR_ROLE_ARN"
DEFAULT_SESSION_NAME = "ecr-credential-provider"
_SESSION_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-")


class RequestError(ValueError):
    """The request cannot be served as sent; the text is one line for the kubelet's log."""


class Request:
    """A parsed CredentialProviderRequest. ``repr`` never shows the service account token."""

    __slots__ = ("annotations", "api_version", "image", "service_account_token")

    def __init__(
        self,
        *,
        api_version: str,
        image: str,
        service_account_token: str = "",
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.api_version = api_version
        self.image = image
        self.service_account_token = service_account_token
        self.annotations = dict(annotations or {})

    def __repr__(self) -> str:
        token = "<hidden>" if self.service_account_token else "''"
        return f"Request(api_version={self.api_version!r}, image={self.image!r}, service_account_token={token})"


def _json_object(data: bytes) -> dict[str, Any]:
    """The request as a JSON object: bounded, UTF-8, well-formed."""
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError(f"request is larger than {MAX_REQUEST_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request is not UTF-8 text") from None
    if not text.strip():
        raise RequestError(f"no {REQUEST_KIND} on stdin (the kubelet writes one; see --help)")
    try:
        body = jsonwire.loads(text)
    except (ValueError, RecursionError):
        raise RequestError(f"request is not JSON: expected a {REQUEST_KIND} object") from None
    if not isinstance(body, dict):
        raise RequestError(f"request is JSON but not an object: expected a {REQUEST_KIND}")
    return body


def parse_request(data: bytes) -> Request:
    """Validate a request; RequestError names the first thing wrong with it (never its secrets)."""
    body = _json_object(data)
    api_version = body.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise RequestError(f"request has no apiVersion; expected one of {', '.join(API_VERSIONS)}")
    if api_version not in API_VERSIONS:
        raise RequestError(f"unsupported apiVersion {_show(api_version)}; expected one of {', '.join(API_VERSIONS)}")
    kind = body.get("kind")
    if kind != REQUEST_KIND:
        shown = "no kind" if kind is None else f"kind {_show(kind)}"
        raise RequestError(f"request has {shown}; expected kind {REQUEST_KIND}")
    image = body.get("image")
    if image is not None and not isinstance(image, str):
        raise RequestError("request's image is not a string")
    if not image or not image.strip():
        raise RequestError("request has no image")
    token = body.get("serviceAccountToken", "")
    if token is None:
        token = ""
    if not isinstance(token, str):
        raise RequestError("request's serviceAccountToken is not a string")
    annotations = body.get("serviceAccountAnnotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise RequestError("request's serviceAccountAnnotations is not a map of strings")
    # Unknown fields are ignored: newer kubelets may send more than this version of the helper knows.
    return Request(
        api_version=api_version, image=image.strip(), service_account_token=token.strip(), annotations=annotations
    )


def _show(value: object, limit: int = 80) -> str:
    """A value from the request, quoted and cut short, for a one-line message."""
    text = repr(value) if not isinstance(value, str) else '"' + value.encode("unicode_escape").decode("ascii") + '"'
    return text if len(text) <= limit else text[: limit - 1] + "…"


def registry_host(image: str) -> str | None:
    """The registry part of an image reference, as spelled there (``host`` or ``host:port``).

    None when the image has none (``nginx``, ``library/nginx:1``: Docker Hub), by the rule Docker and
    containerd apply: the first path component names a registry only if it has a "." or a ":" or is
    ``localhost``. The kubelet's own Registry cache key is this same component.
    """
    first, sep, _ = image.partition("/")
    if not sep or not first:
        return None
    if "." in first or ":" in first or first == "localhost":
        return first
    return None


def go_duration(seconds: float) -> str:
    """``seconds`` as Go's ``time.Duration.String()`` writes it (``6h0m0s``, ``1m30s``, ``1.5s``, ``0s``).

    The kubelet reads ``cacheDuration`` with ``time.ParseDuration`` (metav1.Duration). Nanosecond
    precision, like Go; whole hours stay hours (Go has no larger unit).
    """
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):  # Go writes U+00B5 MICRO SIGN
            if nanos >= size:
                return sign + _with_fraction(nanos, size) + unit
    whole, fraction = divmod(nanos, 1_000_000_000)
    text = _with_fraction(whole * 1_000_000_000 + fraction, 1_000_000_000, whole % 60) + "s"
    minutes = whole // 60
    if minutes:
        hours, minutes = divmod(minutes, 60)
        text = (f"{hours}h" if hours else "") + f"{minutes}m" + text
    return sign + text


def _with_fraction(nanos: int, size: int, integer: int | None = None) -> str:
    """``integer`` (default ``nanos // size``) plus the fraction ``nanos % size / size``, trailing zeros cut."""
    whole = nanos // size if integer is None else integer
    fraction = nanos % size
    if not fraction:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")


def cache_duration(expires_at: float, now: float) -> str:
    """Half the token's remaining life in whole seconds (AWS's provider's rule), ``0s`` once it is spent."""
    half = (expires_at - now) / 2
    return go_duration(max(0, round(half)))


def response(api_version: str, host: str | None, entry: Token | None, now: float) -> dict[str, Any]:
    """The CredentialProviderResponse; no credentials (``auth`` empty, not cached) without ``entry``."""
    answer: dict[str, Any] = {"apiVersion": api_version, "kind": RESPONSE_KIND, "cacheKeyType": CACHE_KEY_TYPE}
    if host is None or entry is None:
        answer["cacheDuration"] = go_duration(0)
        answer["auth"] = {}
    else:
        answer["cacheDuration"] = cache_duration(entry.expires_at, now)
        answer["auth"] = {host: {"username": entry.username, "password": entry.password}}
    return answer


def render(answer: Mapping[str, Any]) -> str:
    import json

    return json.dumps(answer, separators=(",", ":")) + "\n"


# -- the service account token path (KEP-4412) ------------------------------------------------------
class WebIdentity:
    """A role to assume with a service account token. ``repr`` never shows the token."""

    __slots__ = ("identity", "role_arn", "role_from", "session_name", "token")

    def __init__(
        self, *, role_arn: str, token: str, session_name: str, identity: str, role_from: str = ROLE_ENV
    ) -> None:
        self.role_arn = role_arn
        self.role_from = role_from  # what named the role, for messages: the annotation or ROLE_ENV
        self.token = token
        self.session_name = session_name
        self.identity = identity  # a digest naming the service account, never the token

    def __repr__(self) -> str:
        return f"WebIdentity(role_arn={self.role_arn!r}, session_name={self.session_name!r}, token=<hidden>)"

    def redact(self, text: str) -> str:
        """``text`` with the token (and its signature, should a message quote only that) cut out."""
        from docker_credential_ecr.aws import redact

        return redact(text, self.token, "<service account token>")


class KubeletWebIdentity(Source):
    """A pod's role, assumed with the service account token the kubelet sent (AssumeRoleWithWebIdentity).

    The identity key is the node's (endpoints and the like still decide which STS answers), the role
    and a digest of the service account's claims: neither the node's token nor another service
    account's is ever served for it. The STS credentials are never stored (they can do whatever the
    role can, not only pull): only the ECR token they fetch is, cut to their expiry.
    """

    kind = "kubelet web identity"
    caps_token = True

    def __init__(self, environ: Mapping[str, str], web_identity: WebIdentity) -> None:
        super().__init__(environ)
        self.web_identity = web_identity

    def __repr__(self) -> str:
        return f"KubeletWebIdentity({self.web_identity!r})"

    def identity_key(self) -> str:
        if self._key is None:
            node = identity.identity_key(self.environ)
            pieces = ("web-identity", node, self.web_identity.role_arn, self.web_identity.identity)
            digest = blake2b("\0".join(pieces).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
            self._key = "wi-" + digest
        return self._key

    @property
    def who(self) -> str:
        return f"web identity role {self.web_identity.role_arn}"

    def credentials(self, registry: Registry, keeper: Keeper) -> AwsCredentials:
        from docker_credential_ecr import aws

        web = self.web_identity
        return aws.assume_role_with_web_identity(
            registry,
            role_arn=web.role_arn,
            role_from=web.role_from,
            session_name=web.session_name,
            token=web.token,
            token_label="<service account token>",  # noqa: S106 - a label for messages, not a secret
            environ=self.environ,
        )


def web_identity(request: Request, environ: Mapping[str, str]) -> WebIdentity | None:
    """The role to assume for this request, or None to use the node's own credentials."""
    token = request.service_account_token
    if not token:
        return None
    annotated = (request.annotations.get(ROLE_ANNOTATION) or "").strip()
    role = annotated or (environ.get(ROLE_ENV) or "").strip()
    if not role:
        return None  # as AWS's provider does: a token without a role to assume is not used
    claims = jwt_claims(token)
    return WebIdentity(
        role_arn=role,
        role_from=f"annotation {ROLE_ANNOTATION}" if annotated else ROLE_ENV,
        token=token,
        session_name=session_name(claims),
        identity=service_account_identity(token, claims),
    )


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (STS verifies it); empty for anything that is not one."""
    import base64
    import binascii

    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = jsonwire.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)).decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _service_account(claims: Mapping[str, Any]) -> dict[str, Any]:
    k8s = claims.get("kubernetes.io")
    account = k8s.get("serviceaccount") if isinstance(k8s, dict) else None
    return account if isinstance(account, dict) else {}


def service_account_identity(token: str, claims: Mapping[str, Any]) -> str:
    """A digest naming whose token this is: issuer, subject, audience and service account UID.

    Taken from the unverified claims: only the kubelet writes requests, and it got the token from the
    API server; the first use of every identity still goes through STS, which verifies the token and
    the role's trust policy. A token that is not a JWT names only itself (its hash: never the token).
    """
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        return blake2b(b"token\0" + token.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    audience = claims.get("aud")
    audiences = sorted(str(a) for a in audience) if isinstance(audience, list) else [str(audience or "")]
    pieces = [
        "claims",
        str(claims.get("iss", "")),
        subject,
        ",".join(audiences),
        str(_service_account(claims).get("uid", "")),
    ]
    return blake2b("\0".join(pieces).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def session_name(claims: Mapping[str, Any]) -> str:
    """``<namespace>.<service account>`` (CloudTrail shows it), cut to STS's alphabet and 64 characters."""
    k8s = claims.get("kubernetes.io")
    namespace = k8s.get("namespace") if isinstance(k8s, dict) else None
    name = _service_account(claims).get("name")
    if not (isinstance(namespace, str) and isinstance(name, str) and namespace and name):
        return DEFAULT_SESSION_NAME
    cleaned = "".join(c if c in _SESSION_NAME_CHARS else "-" for c in f"{namespace}.{name}")[:64]
    return cleaned if len(cleaned) >= 2 else DEFAULT_SESSION_NAME


# -- the whole exchange -----------------------------------------------------------------------------
def provide(
    request: Request,
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    warn: Callable[[str], None] | None = None,
    fetch: Callable[[Registry], Token] | None = None,
) -> dict[str, Any]:
    """Answer ``request`` through :meth:`Helper.token`: the same parsing, cache, lock and config as `get`.

    Raises CredentialsNotFoundError (with a hint) when an ECR registry's token cannot be had.
    """
    host = registry_host(request.image)
    if host is None:
        return response(request.api_version, None, None, clock())
    identity = web_identity(request, settings.environ)
    helper = Helper(settings, clock=clock, warn=warn, fetch=fetch, web_identity=identity)
    try:
        entry = helper.token(host)
    except CredentialsNotFoundError as exc:
        if exc.hint is None:  # not an ECR registry (nor an alias of one): no credentials, no error
            return response(request.api_version, None, None, clock())
        raise
    return response(request.api_version, host, entry, clock())
