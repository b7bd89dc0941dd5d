"""Credential sources: who a `get` is, and on a miss the AWS credentials it asks ECR with.

A source gives two things:

* :meth:`Source.identity_key`: the "who" of the store's keys, a hash of local inputs only (no network,
  no secret; see :mod:`identity`): a hit costs no more than reading a few small files;
* :meth:`Source.credentials`: on a miss, the :class:`~docker_credential_ecr.store.AwsCredentials` to
  call ECR with, or None to let botocore resolve its own chain for :attr:`Source.profile`. A source
  whose credentials are worth keeping (an assumed role) keeps them through the ``keeper`` it is given,
  which is the store under the caller's deadline.

The sources, first match wins (:data:`SOURCES`):

* :class:`KubeletWebIdentity`: the service account token of a kubelet request, for a role (KEP-4412);
* :class:`CiWebIdentity`: a CI's OIDC token (``AWS_ECR_WEB_IDENTITY``, a table's ``web_identity``);
* :class:`MfaSession`: a profile whose role needs an MFA code, through the session ``login`` kept;
* :class:`AssumedRole`: a ``[[registry]]`` table's ``role_arn``, assumed from its profile or the chain;
* :class:`DefaultChain`: botocore's chain for a profile: environment keys, the profile (static keys,
  SSO, ``credential_process``, ``role_arn`` profiles), web identity from ``AWS_WEB_IDENTITY_TOKEN_FILE``,
  container credentials, instance metadata. They are one source because botocore picks among them at
  run time; their identity inputs are each listed in :mod:`identity`.

Adding a source is one change here: a class with those methods, and one line in :data:`SOURCES`
saying when it applies (see docs/architecture.md). Imports only the standard library; :mod:`aws` is
imported inside :meth:`Source.credentials`, on a miss.
"""

from __future__ import annotations

from docker_credential_ecr import identity

try:  # as in identity.py: the builtin BLAKE2 module spares loading OpenSSL
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - some builds only ship hashlib
    from hashlib import blake2b

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Protocol

    from docker_credential_ecr.config import RegistryTable
    from docker_credential_ecr.kubelet import WebIdentity
    from docker_credential_ecr.mfa import Chain
    from docker_credential_ecr.oidc import Setting
    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.store import AwsCredentials

    class Keeper(Protocol):
        """Where a source keeps credentials between runs (the store, under the caller's deadline)."""

        def recall(self, key: str) -> AwsCredentials | None: ...

        def keep(self, key: str, credentials: AwsCredentials) -> None: ...


class Context:
    """What decides the source of one request: the environment, the registry's config table, and
    what the request itself brought (the kubelet's service account token)."""

    __slots__ = ("environ", "table", "web_identity")

    def __init__(
        self, environ: Mapping[str, str], table: RegistryTable | None = None, web_identity: WebIdentity | None = None
    ) -> None:
        self.environ = environ
        self.table = table
        self.web_identity = web_identity


class Source:
    """The base: botocore's default chain for :attr:`profile` (None: ``AWS_PROFILE`` or the default)."""

    kind = "default chain"
    # A token fetched with this source's credentials is cut to their expiry (nothing outlives its session).
    caps_token = False

    def __init__(self, environ: Mapping[str, str], profile: str | None = None) -> None:
        self.environ = environ
        self.profile = profile
        self._key: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(profile={self.profile!r})"

    def identity_inputs(self) -> list[str]:
        """What this source adds to the identity key beyond the environment and the profile's files."""
        return []

    def identity_key(self) -> str:
        """The store's "who" for this source (computed once: it reads the AWS config files)."""
        if self._key is None:
            self._key = identity.identity_key(self.environ, profile=self.profile, extra=self.identity_inputs())
        return self._key

    @property
    def who(self) -> str | None:
        """Who the credentials are, for messages, when the environment does not say (None: it does)."""
        return None

    def credentials(self, registry: Registry, keeper: Keeper) -> AwsCredentials | None:
        """The credentials to ask ECR with; None: botocore's chain. Raises TokenFetchError."""
        return None


class DefaultChain(Source):
    """botocore's own chain (see the module docstring); nothing to fetch before ECR."""


class AssumedRole(Source):
    """A ``[[registry]]`` table's ``role_arn``, assumed with STS from the table's profile (or the chain).

    The role's credentials are kept in the store under this source's identity key and the partition,
    and assumed again once half their lifetime has passed.
    """

    kind = "assumed role"

    def __init__(self, environ: Mapping[str, str], table: RegistryTable) -> None:
        super().__init__(environ, table.profile)
        self.table = table

    def __repr__(self) -> str:
        return f"AssumedRole(role_arn={self.table.role_arn!r}, profile={self.profile!r})"

    def identity_inputs(self) -> list[str]:
        return self.table.identity_inputs()

    @property
    def who(self) -> str:
        return f"role {self.table.role_arn}"

    def credentials(self, registry: Registry, keeper: Keeper) -> AwsCredentials:
        from docker_credential_ecr.store import credentials_key

        key = credentials_key(self.identity_key(), "sts", registry.partition)
        credentials = keeper.recall(key)
        if credentials is None:
            from docker_credential_ecr import aws

            credentials = aws.assume_role(registry, self.table, environ=self.environ)
            keeper.keep(key, credentials)
        return credentials


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


class CiWebIdentity(Source):
    """A CI's OIDC token for a role (``AWS_ECR_WEB_IDENTITY`` or a table's ``web_identity``; see :mod:`oidc`).

    The identity key holds the role, the session name and whose token it is (its stable claims, or
    for GitHub the job's token request URL), never the token. The role's credentials are kept in the
    store like an assumed role's; the ECR token is cut to their expiry.
    """

    kind = "CI web identity"
    caps_token = True

    def __init__(self, environ: Mapping[str, str], setting: Setting, table: RegistryTable | None) -> None:
        super().__init__(environ)
        self.setting = setting
        self.table = table

    def __repr__(self) -> str:
        return f"CiWebIdentity({self.setting!r})"

    def identity_inputs(self) -> list[str]:
        from docker_credential_ecr import oidc

        table = self.table.identity_inputs() if self.table is not None else []
        return [*table, *oidc.principal_inputs(self.setting, self.environ)]

    @property
    def who(self) -> str:
        return f"role {self.setting.role_arn} (web identity)"

    def credentials(self, registry: Registry, keeper: Keeper) -> AwsCredentials:
        from docker_credential_ecr import webidentity
        from docker_credential_ecr.store import credentials_key

        key = credentials_key(self.identity_key(), "sts", registry.partition)
        return webidentity.credentials(registry, self.setting, environ=self.environ, keeper=keeper, key=key)


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

        from docker_credential_ecr import mfa
        from docker_credential_ecr.settings import Settings

        region = "us-east-1" if registry.service == "ecr-public" else registry.region
        cache_dir = Settings.from_environ(self.environ).cache_dir
        return mfa.credentials_for(self.chain, self.environ, cache_dir, time.time(), region)


def _mfa_session(context: Context) -> Source | None:
    if not identity.files_mention(context.environ, "mfa_serial"):
        return None  # no profile asks for an MFA code: a hit need not import mfa to find that out
    profile = context.table.profile if context.table is not None else None
    from docker_credential_ecr import mfa

    chain = mfa.find_chain(context.environ, profile)
    return None if chain is None else MfaSession(context.environ, chain, profile)


def web_identity_setting(environ: Mapping[str, str], table: RegistryTable | None) -> Setting | None:
    """The CI web identity for a registry (``AWS_ECR_WEB_IDENTITY`` or the table's ``web_identity``), if any."""
    in_table = table is not None and table.web_identity
    from_env = environ.get("AWS_ECR_WEB_IDENTITY") and not (table is not None and table.profile)
    if not (in_table or from_env):
        return None
    from docker_credential_ecr import oidc

    return oidc.setting_for(environ, table)


def _ci_web_identity(context: Context) -> Source | None:
    setting = web_identity_setting(context.environ, context.table)
    return None if setting is None else CiWebIdentity(context.environ, setting, context.table)


def _kubelet(context: Context) -> Source | None:
    return None if context.web_identity is None else KubeletWebIdentity(context.environ, context.web_identity)


def _assumed_role(context: Context) -> Source | None:
    table = context.table
    return AssumedRole(context.environ, table) if table is not None and table.role_arn else None


def _default_chain(context: Context) -> Source:
    return DefaultChain(context.environ, context.table.profile if context.table is not None else None)


# Which source serves a request: the first of these that gives one. The last always does.
SOURCES: tuple[Callable[[Context], Source | None], ...] = (
    _kubelet,
    _ci_web_identity,
    _assumed_role,
    _mfa_session,
    _default_chain,
)


def select(context: Context) -> Source:
    """The source for ``context`` (see :data:`SOURCES`)."""
    for pick in SOURCES:
        source = pick(context)
        if source is not None:
            return source
    raise AssertionError("the default chain always applies")  # pragma: no cover
