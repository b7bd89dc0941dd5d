"""CI identity tokens: where a runner's OIDC token comes from, what it says, and the STS session name.

``AWS_ECR_WEB_IDENTITY`` (or ``web_identity`` in a ``[[registry]]`` table) names the source:

* ``github``: GitHub Actions' token service, asked at ``ACTIONS_ID_TOKEN_REQUEST_URL`` with
  ``ACTIONS_ID_TOKEN_REQUEST_TOKEN`` as bearer and ``audience=sts.amazonaws.com`` (the job needs
  ``permissions: id-token: write``);
* ``env:NAME``: the token in environment variable NAME (GitLab ``id_tokens``, CircleCI
  ``CIRCLE_OIDC_TOKEN_V2``, Bitbucket ``BITBUCKET_STEP_OIDC_TOKEN``);
* ``file:PATH``: the token in a file;
* ``auto``: the source of the CI this runs in, told by the CI's own variables.

The token is a secret: it is read, sent to STS and dropped; never stored, logged or put in a message.
Its claims are read unverified (STS verifies the token): the stable ones (``iss``, ``sub``, ``aud``)
name the identity in the cache key, so a token rotated by the CI costs no cache miss. For ``github``
the token exists only behind a network call, which a cache hit must not make: there the job's own
token request URL (one per job, never a secret: the bearer is) stands for the identity instead, a
finer key than the claims.

Standard library only; :func:`identity_inputs` runs on the hot path and makes no network call.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

WEB_IDENTITY_ENV = "AWS_ECR_WEB_IDENTITY"
AUDIENCE = "sts.amazonaws.com"
DEFAULT_SESSION_NAME = "docker-credential-ecr"
GITHUB_URL_ENV = "ACTIONS_ID_TOKEN_REQUEST_URL"
GITHUB_BEARER_ENV = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
GITLAB_TOKEN_ENV = "GITLAB_OIDC_TOKEN"  # noqa: S105 - the id_tokens name GitLab's own docs use
CIRCLECI_TOKEN_ENV = "CIRCLE_OIDC_TOKEN_V2"  # noqa: S105
BITBUCKET_TOKEN_ENV = "BITBUCKET_STEP_OIDC_TOKEN"  # noqa: S105
MAX_TOKEN_BYTES = 64 * 1024
# STS RoleSessionName: [\w+=,.@-]{2,64}, \w being ASCII letters, digits and underscore.
SESSION_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-")
SESSION_NAME_MAX = 64
SPEC_FORMS = "github, env:NAME, file:PATH or auto"


class OIDCError(Exception):
    """The token cannot be had; the text is one line saying what to change, never the token."""


class Source:
    """Where the token comes from: ``kind`` is github, env or file; ``detail`` the variable or path."""

    __slots__ = ("ci", "detail", "kind")

    def __init__(self, kind: str, detail: str = "", ci: str = "") -> None:
        self.kind = kind
        self.detail = detail
        self.ci = ci  # the CI `auto` detected, for messages

    def __repr__(self) -> str:
        return f"Source({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Source) and (self.kind, self.detail) == (other.kind, other.detail)

    def __hash__(self) -> int:
        return hash((self.kind, self.detail))

    @property
    def spec(self) -> str:
        return self.kind if self.kind == "github" else f"{self.kind}:{self.detail}"

    def describe(self) -> str:
        where = {
            "github": f"GitHub Actions' OIDC token service ({GITHUB_URL_ENV})",
            "env": f"environment variable {self.detail}",
            "file": f"file {self.detail}",
        }[self.kind]
        return f"{where}, detected {self.ci}" if self.ci else where


def check_spec(spec: str) -> str | None:
    """None when ``spec`` is a valid source setting, else what is wrong with it (for config errors)."""
    kind, sep, detail = spec.partition(":")
    if spec in ("github", "auto"):
        return None
    if sep and kind == "env" and detail and all(c.isalnum() or c == "_" for c in detail) and detail.isascii():
        return None
    if sep and kind == "file" and detail and "\0" not in detail:
        return None
    return f"{spec!r} is not a token source: expected {SPEC_FORMS}"


def parse_source(spec: str, environ: Mapping[str, str]) -> Source:
    """The source ``spec`` names (``auto`` resolved against ``environ``). Raises OIDCError."""
    spec = spec.strip()
    problem = check_spec(spec)
    if problem is not None:
        raise OIDCError(f"{WEB_IDENTITY_ENV}: {problem}")
    if spec == "auto":
        found = detect(environ)
        if found is None:
            raise OIDCError(
                f"{WEB_IDENTITY_ENV}=auto: no CI detected (GitHub Actions, GitLab CI, CircleCI, Bitbucket Pipelines): "
                "name the token source as github, env:NAME or file:PATH"
            )
        return found
    kind, _, detail = spec.partition(":")
    if kind == "file":
        detail = _expand(detail, environ)
    return Source(kind, detail)


def detect(environ: Mapping[str, str]) -> Source | None:
    """The token source of the CI this runs in, from the CI's own variables; None outside a known CI."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return Source("github", ci="GitHub Actions")
    if environ.get("GITLAB_CI") == "true":
        return Source("env", GITLAB_TOKEN_ENV, ci="GitLab CI")
    if environ.get("CIRCLECI") == "true":
        return Source("env", CIRCLECI_TOKEN_ENV, ci="CircleCI")
    if environ.get("BITBUCKET_BUILD_NUMBER"):
        return Source("env", BITBUCKET_TOKEN_ENV, ci="Bitbucket Pipelines")
    return None


def _expand(path: str, environ: Mapping[str, str]) -> str:
    if path.startswith("~") and environ.get("HOME"):
        return environ["HOME"] + path[1:]
    return path


class Setting:
    """Web identity for one registry: the token source setting, the role and the session name."""

    __slots__ = ("origin", "role_arn", "session_name", "spec")

    def __init__(self, spec: str, role_arn: str, session_name: str, origin: str) -> None:
        self.spec = spec
        self.role_arn = role_arn
        self.session_name = session_name
        self.origin = origin  # where the setting came from, for messages

    def __repr__(self) -> str:
        return f"Setting(spec={self.spec!r}, role_arn={self.role_arn!r}, session_name={self.session_name!r})"


def setting_for(environ: Mapping[str, str], rule: Any = None) -> Setting | None:
    """Web identity for a registry whose ``[[registry]]`` table is ``rule`` (None: no table).

    The table's ``web_identity`` wins; else ``AWS_ECR_WEB_IDENTITY``, unless the table names a
    ``profile`` (another principal on purpose). The role: the table's ``role_arn``, else AWS_ROLE_ARN.
    """
    spec = getattr(rule, "web_identity", None) or ""
    origin = "web_identity" if spec else WEB_IDENTITY_ENV
    if not spec and not getattr(rule, "profile", None):
        spec = environ.get(WEB_IDENTITY_ENV, "").strip()
    if not spec:
        return None
    role = getattr(rule, "role_arn", None) or environ.get("AWS_ROLE_ARN", "").strip()
    name = getattr(rule, "session_name", None) or session_name(environ)
    return Setting(spec, role, name, origin)


def principal_inputs(setting: Setting, environ: Mapping[str, str]) -> list[str]:
    """Cache-key inputs of a web identity: role, session name and whose token (see :func:`identity_inputs`)."""
    pieces = [f"web-identity-role={setting.role_arn}", f"web-identity-session={setting.session_name}"]
    if check_spec(setting.spec) is not None:
        return [*pieces, f"web-identity-invalid={setting.spec}"]
    try:
        source = parse_source(setting.spec, environ)
    except OIDCError:
        return [*pieces, f"web-identity-unresolved={setting.spec}"]
    return [*pieces, *identity_inputs(source, environ)]


# -- the token ---------------------------------------------------------------------------------------
def local_token(source: Source, environ: Mapping[str, str]) -> str:
    """The token of an env or file source (no network). Raises OIDCError."""
    if source.kind == "env":
        token = environ.get(source.detail, "").strip()
        if not token:
            raise OIDCError(f"no OIDC token in environment variable {source.detail}: {_env_remedy(source)}")
        return token
    if source.kind == "file":
        return _read_token_file(source.detail)
    raise OIDCError(f"{source.spec} has no local token")


def _env_remedy(source: Source) -> str:
    name = source.detail
    if name == GITLAB_TOKEN_ENV:
        return f"declare it in the job: `id_tokens: {name}: aud: {AUDIENCE}`"
    if name.startswith("CIRCLE_OIDC_TOKEN"):
        return "run the job in a CircleCI context-enabled project (CircleCI sets it for every job)"
    if name == BITBUCKET_TOKEN_ENV:
        return "add `oidc: true` to the step"
    return "set it, or point AWS_ECR_WEB_IDENTITY at the variable that holds the token"


def _read_token_file(path: str) -> str:
    """The token in ``path``: a regular file owned by this user or root and not writable by others.

    The one file here opened *through* a symlink: Kubernetes projects a service account token as a
    symlink into a ``..data`` directory it swaps atomically on rotation, and CI runners do the like;
    refusing links would refuse every such token. What the link leads to is checked instead (its
    type, owner, mode and size, on the descriptor opened), and a FIFO still cannot stall the open.
    Of the mode, only world-writable is refused (a group-writable file is accepted, as it always was).
    """
    import stat

    from docker_credential_ecr import safefile

    try:
        data = safefile.read_checked(
            path, MAX_TOKEN_BYTES, follow_links=True, root_may_own=True, refused_modes=stat.S_IWOTH
        )
    except safefile.RefusedError as exc:
        if exc.reason == safefile.NOT_REGULAR:
            raise OIDCError(f"the OIDC token file {path} is not a regular file") from None
        if exc.reason == safefile.TOO_LARGE:
            raise OIDCError(
                f"the OIDC token file {path} is larger than {MAX_TOKEN_BYTES // 1024} KiB: not a token"
            ) from None
        uid = exc.st.st_uid if exc.st is not None else "?"
        raise OIDCError(
            f"the OIDC token file {path} is not this user's (owned by uid {uid} or writable by anyone)"
        ) from None
    except OSError as exc:
        raise OIDCError(f"cannot read the OIDC token file {path}: {exc.strerror}") from None
    token = data.decode("utf-8", "replace").strip()
    if not token:
        raise OIDCError(f"the OIDC token file {path} is empty")
    return token


def github_token(environ: Mapping[str, str], timeout: float, audience: str = AUDIENCE) -> str:
    """A token from GitHub Actions' token service (one HTTPS request, bounded by ``timeout``)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url, bearer = environ.get(GITHUB_URL_ENV, ""), environ.get(GITHUB_BEARER_ENV, "")
    if not url or not bearer:
        missing = GITHUB_URL_ENV if not url else GITHUB_BEARER_ENV
        raise OIDCError(
            f"GitHub Actions gives this job no OIDC token ({missing} is not set): add `permissions: id-token: write` "
            "to the workflow or job"
        )
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise OIDCError(f"{GITHUB_URL_ENV} is not an https URL: refusing to send the job's request token there")
    query = urllib.parse.urlencode({"audience": audience})
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        f"{url}{'&' if parts.query else '?'}{query}",
        headers={"Authorization": f"bearer {bearer}", "Accept": "application/json; api-version=2.0"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            body = response.read(MAX_TOKEN_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()
        remedy = "the job's request token was refused" if exc.code in (401, 403) else "the token service failed"
        raise OIDCError(f"GitHub Actions' OIDC token service answered HTTP {exc.code} ({remedy})") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OIDCError(f"cannot reach GitHub Actions' OIDC token service: {reason}") from None
    from docker_credential_ecr import jsonwire

    try:
        answer = jsonwire.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        answer = None
    token = answer.get("value") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise OIDCError("GitHub Actions' OIDC token service answered without a token")
    return token


def token(source: Source, environ: Mapping[str, str], timeout: float) -> str:
    """The current token of ``source``. Raises OIDCError."""
    if source.kind == "github":
        return github_token(environ, timeout)
    return local_token(source, environ)


# -- claims ------------------------------------------------------------------------------------------
def claims(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (STS verifies it); empty for anything that is not one."""
    import binascii  # not base64, which imports re: this runs on a cache hit

    from docker_credential_ecr import jsonwire

    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    text = parts[1].translate(_URLSAFE) + "=" * (-len(parts[1]) % 4)
    try:
        payload = jsonwire.loads(binascii.a2b_base64(text.encode("ascii")).decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError, UnicodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


_URLSAFE = str.maketrans("-_", "+/")


def audiences(payload: Mapping[str, Any]) -> list[str]:
    aud = payload.get("aud")
    if isinstance(aud, list):
        return sorted(str(a) for a in aud)
    return [str(aud)] if aud is not None else []


def stable_claims(payload: Mapping[str, Any]) -> dict[str, str]:
    """``iss``, ``sub`` and ``aud`` (comma-joined): who the token speaks for, the same in every rotation."""
    return {
        "iss": str(payload.get("iss", "")),
        "sub": str(payload.get("sub", "")),
        "aud": ",".join(audiences(payload)),
    }


def identity_inputs(source: Source, environ: Mapping[str, str]) -> list[str]:
    """Cache-key inputs naming whose token ``source`` gives, without the token or any network call.

    env and file: the stable claims (a token that is not a JWT counts by its digest, a missing one as
    absent: the miss reports it). github: the job's token request URL and the audience asked for.
    """
    pieces = [f"web-identity={source.spec}"]
    if source.kind == "github":
        return [*pieces, f"github-request-url={environ.get(GITHUB_URL_ENV, '')}", f"audience={AUDIENCE}"]
    try:
        jwt = local_token(source, environ)
    except OIDCError:
        return [*pieces, "token=absent"]
    payload = claims(jwt)
    if not payload.get("sub"):
        try:
            from _blake2 import blake2b
        except ImportError:  # pragma: no cover - some builds only ship hashlib
            from hashlib import blake2b
        return [*pieces, "token-digest=" + blake2b(jwt.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()]
    return [*pieces, *(f"{k}={v}" for k, v in stable_claims(payload).items())]


# -- session name ------------------------------------------------------------------------------------
# (repository, run id) variables of each CI, in the order they are tried.
_CI_RUN = (
    ("GITHUB_REPOSITORY", "GITHUB_RUN_ID"),
    ("CI_PROJECT_PATH", "CI_PIPELINE_ID"),
    ("CIRCLE_PROJECT_REPONAME", "CIRCLE_BUILD_NUM"),
    ("BITBUCKET_REPO_FULL_NAME", "BITBUCKET_BUILD_NUMBER"),
)


def clean_session_name(text: str) -> str:
    """``text`` in STS's RoleSessionName alphabet (others become ``-``, ``/`` becomes ``.``), at most 64."""
    return "".join(c if c in SESSION_NAME_CHARS else "." if c == "/" else "-" for c in text)[:SESSION_NAME_MAX]


def session_name(environ: Mapping[str, str]) -> str:
    """``<repository>@<run id>`` of the CI (CloudTrail shows it), cleaned to what STS accepts.

    ``AWS_ROLE_SESSION_NAME`` wins (botocore's own variable). A long repository name is cut, never the
    run id; anything that leaves fewer than 2 characters gives ``docker-credential-ecr``.
    """
    explicit = clean_session_name(environ.get("AWS_ROLE_SESSION_NAME", "").strip())
    if len(explicit) >= 2:
        return explicit
    for repo_var, run_var in _CI_RUN:
        repo, run = environ.get(repo_var, "").strip(), environ.get(run_var, "").strip()
        if repo and run:
            suffix = "@" + clean_session_name(run)[: SESSION_NAME_MAX // 2]
            name = clean_session_name(repo)[: SESSION_NAME_MAX - len(suffix)] + suffix
            if len(name) >= 2:
                return name
    return DEFAULT_SESSION_NAME
