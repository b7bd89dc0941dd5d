"""MFA sessions: ``login`` asks for the code once on a terminal; ``get`` (no terminal) uses the session.

Docker's daemon and BuildKit run the helper with no terminal, so a profile whose role needs an MFA
code (``mfa_serial`` in the AWS config) could never be used: botocore would prompt with ``getpass``
and get an ``EOFError``. Here the profile's role chain is read from the AWS config files; the first
profile in it with ``mfa_serial`` and ``role_arn`` is the MFA profile. ``login`` resolves that
profile's source credentials (botocore), asks for the code, calls STS AssumeRole with
``SerialNumber``/``TokenCode`` and keeps the role's session in the store (its credentials file,
0600, kind ``mfa``) for its lifetime. ``get`` then assumes the rest of the chain (if the selected profile
sits above the MFA profile) from that session, with no prompt; without a live session it answers
not-found and one line: ``profile 'P' needs an MFA code: run `docker-credential-ecr-login login
--profile P```. ``cache clear`` keeps sessions; ``logout`` forgets one.

Sessions are keyed by the MFA profile's name and a digest of its settings (and of the profiles it
chains to, secrets left out), the AWS files' paths and the STS endpoint: the same login serves every
process that would resolve the same role, whichever way the profile was selected.
"""

from __future__ import annotations

from docker_credential_ecr.credentials import Source
from docker_credential_ecr.errors import StoreError, TokenFetchError
from docker_credential_ecr.identity import (
    _profile_material,
    _read_sections,
    aws_file_paths,
    selected_profile,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker_credential_ecr.credentials import Keeper
    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.store import AwsCredentials

SESSION_KIND = "mfa"  # stored credentials of this kind are MFA sessions: `cache clear` keeps them
PROGRAM = "docker-credential-ecr-login"
DEFAULT_SESSION_NAME = "docker-credential-ecr"
# A session this close to its end is not handed out: the ECR call after it must still be signed in time.
MIN_LEFT = 60.0
_MAX_CHAIN = 16
_KEY_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_USE_FIPS_ENDPOINT", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


class Role:
    """A profile that assumes a role: its settings from the AWS config file."""

    __slots__ = ("duration", "external_id", "mfa_serial", "name", "region", "role_arn", "session_name", "source")

    def __init__(self, name: str, settings: Mapping[str, str]) -> None:
        self.name = name
        self.role_arn = settings.get("role_arn", "")
        self.source = settings.get("source_profile", "")
        self.mfa_serial = settings.get("mfa_serial", "")
        self.external_id = settings.get("external_id", "")
        self.session_name = settings.get("role_session_name", "") or DEFAULT_SESSION_NAME
        self.region = settings.get("region", "")
        try:
            self.duration = int(settings.get("duration_seconds", "") or 0) or None
        except ValueError:
            self.duration = None

    def __repr__(self) -> str:
        return f"Role(name={self.name!r}, role_arn={self.role_arn!r}, mfa_serial={self.mfa_serial!r})"


class Chain:
    """The selected profile's role chain down to its MFA profile: ``above`` are assumed from its session."""

    __slots__ = ("above", "key", "mfa", "selected")

    def __init__(self, selected: str, mfa: Role, above: list[Role], key: str) -> None:
        self.selected = selected
        self.mfa = mfa
        self.above = above  # from the MFA profile's child up to the selected profile
        self.key = key


class MfaSession(Source):
    """A profile whose role chain needs an MFA code: the session ``login`` kept (see :mod:`mfa`).

    Never a prompt: without a live session the miss fails with the line saying to run ``login``. The
    identity key is the profile's (its settings and chain, as for any profile); the session lives in
    the store's credentials file, kept by ``cache clear``, and the ECR token is cut to its expiry.
    """

    kind = "MFA session"
    caps_token = True

    def __init__(self, environ: Mapping[str, str], chain: Chain, profile: str | None) -> None:
        super().__init__(environ, profile)
        self.chain = chain

    def __repr__(self) -> str:
        return f"MfaSession(profile={self.chain.selected!r}, mfa_profile={self.chain.mfa.name!r})"

    @property
    def who(self) -> str:
        return f"profile {self.chain.selected!r} (MFA session of profile {self.chain.mfa.name!r})"

    def credentials(self, registry: Registry, keeper: Keeper) -> AwsCredentials:
        import time

        from docker_credential_ecr.settings import Settings

        region = "us-east-1" if registry.service == "ecr-public" else registry.region
        cache_dir = Settings.from_environ(self.environ).cache_dir
        return credentials_for(self.chain, self.environ, cache_dir, time.time(), region)


def _settings(
    name: str, config: dict[str, list[tuple[str, str]]] | None, credentials: dict[str, list[tuple[str, str]]] | None
) -> dict[str, str] | None:
    """A profile's settings as botocore merges them: the config file's, over the credentials file's."""
    merged: dict[str, str] = {}
    found = False
    if credentials is not None and name in credentials:
        merged.update(credentials[name])
        found = True
    if config is not None:
        items = config.get("default" if name == "default" else f"profile {name}")
        if items is None and name == "default":
            items = config.get("profile default")
        if items is not None:
            merged.update(items)
            found = True
    return merged if found else None


def find_chain(environ: Mapping[str, str], profile: str | None = None) -> Chain | None:
    """The MFA profile ``profile`` (or the selected profile) chains to, or None when none needs MFA."""
    selected = selected_profile(environ, profile)
    config_path, credentials_path = aws_file_paths(environ)
    config, credentials = _read_sections(config_path), _read_sections(credentials_path)
    above: list[Role] = []
    name, seen = selected, set[str]()
    while name and name not in seen and len(seen) < _MAX_CHAIN:
        seen.add(name)
        settings = _settings(name, config, credentials)
        if settings is None or not settings.get("role_arn"):
            return None
        role = Role(name, settings)
        if role.mfa_serial:
            above.reverse()
            return Chain(selected, role, above, _session_key(environ, role, config, credentials))
        above.append(role)
        name = role.source
    return None


def _session_key(
    environ: Mapping[str, str],
    role: Role,
    config: dict[str, list[tuple[str, str]]] | None,
    credentials: dict[str, list[tuple[str, str]]] | None,
) -> str:
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - some builds only ship hashlib
        from hashlib import blake2b

    pieces = [*aws_file_paths(environ), *(f"{k}={environ.get(k, '')}" for k in _KEY_ENV)]
    pieces.extend(_profile_material(role.name, config, credentials))
    digest = blake2b("\0".join(pieces).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    from docker_credential_ecr.store import credentials_key

    return credentials_key(digest, SESSION_KIND, role.name)


def needs_login_line(profile: str) -> str:
    return f"profile '{profile}' needs an MFA code: run `{PROGRAM} login --profile {profile}`"


# -- the session store ------------------------------------------------------------------------------
def is_session_key(key: str) -> bool:
    """Whether a stored credentials key is an MFA session's (``<digest>/mfa/<profile>``)."""
    return key.split("/")[1:2] == [SESSION_KIND]


def load(cache_dir: str | None, key: str, now: float) -> AwsCredentials | None:
    """The live session under ``key``, or None (missing, expiring within a minute, unreadable)."""
    from docker_credential_ecr.store import Store

    if cache_dir is None:
        return None
    try:
        creds = Store(cache_dir).credentials(key)
    except StoreError:
        return None
    return creds if creds is not None and creds.expires_at - now >= MIN_LEFT else None


def save(cache_dir: str, chain: Chain, creds: AwsCredentials, now: float) -> str:
    """Keep ``creds`` as the MFA profile's session; returns the file. Raises StoreError."""
    from docker_credential_ecr.store import Store

    store = Store(cache_dir)
    store.put_credentials(chain.key, creds, now=now)
    return store.credentials_path


def forget(cache_dir: str, key: str, now: float) -> bool:
    """Drop the session under ``key``; whether there was one. Raises StoreError."""
    from docker_credential_ecr import storewrite
    from docker_credential_ecr.store import Store

    found = []

    def change(entries: dict[str, AwsCredentials]) -> None:
        found.append(entries.pop(key, None) is not None)

    storewrite.update_credentials(Store(cache_dir), change, now=now)
    return bool(found and found[0])


# -- get: credentials from the session --------------------------------------------------------------
def credentials_for(
    chain: Chain, environ: Mapping[str, str], cache_dir: str | None, now: float, region: str
) -> AwsCredentials:
    """Credentials of the selected profile from its MFA session, the profiles above it assumed from it.

    Raises TokenFetchError with the one line saying to log in when there is no live session: never a
    prompt (there is no terminal to answer it).
    """
    creds = load(cache_dir, chain.key, now)
    if creds is None:
        raise TokenFetchError(needs_login_line(chain.selected))
    from docker_credential_ecr import aws

    for role in chain.above:  # profiles that chain onto the MFA profile: assumed from its session
        creds = aws.assume_role_as(
            role.role_arn,
            session_name=role.session_name,
            external_id=role.external_id,
            region=role.region or region,
            environ=environ,
            credentials=creds,
        )
    return creds


def login(chain: Chain, environ: Mapping[str, str], code: str, duration: int | None, region: str) -> AwsCredentials:
    """AssumeRole of the MFA profile with its source profile's credentials and the code. Raises TokenFetchError."""
    from docker_credential_ecr import aws

    role = chain.mfa
    return aws.assume_role_as(
        role.role_arn,
        session_name=role.session_name,
        external_id=role.external_id,
        region=role.region or region,
        environ=environ,
        profile=role.source,
        mfa_serial=role.mfa_serial,
        mfa_code=code,
        duration=duration or role.duration,
    )
