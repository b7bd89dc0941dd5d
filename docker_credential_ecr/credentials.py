"""Credential sources: who a `get` is, and on a miss the AWS credentials it asks ECR with.

A source gives two things:

* :meth:`Source.identity_key`: the "who" of the store's keys, a hash of local inputs only (no network,
  no secret; see :mod:`identity`): a hit costs no more than reading a few small files;
* :meth:`Source.credentials`: on a miss, the :class:`~docker_credential_ecr.store.AwsCredentials` to
  call ECR with, or None to let botocore resolve its own chain for :attr:`Source.profile`. A source
  whose credentials are worth keeping (an assumed role) keeps them through the ``keeper`` it is given,
  which is the store under the caller's deadline.

The sources, first match wins (:data:`SOURCES`):

* :class:`kubelet.KubeletWebIdentity`: the service account token of a kubelet request, for a role
  (KEP-4412);
* :class:`webidentity.CiWebIdentity`: a CI's OIDC token (``AWS_ECR_WEB_IDENTITY``, a table's
  ``web_identity``);
* :class:`mfa.MfaSession`: a profile whose role needs an MFA code, through the session ``login`` kept;
* :class:`AssumedRole`: a ``[[registry]]`` table's ``role_arn``, assumed from its profile or the chain;
* :class:`DefaultChain`: botocore's chain for a profile: environment keys, the profile (static keys,
  SSO, ``credential_process``, ``role_arn`` profiles), web identity from ``AWS_WEB_IDENTITY_TOKEN_FILE``,
  container credentials, instance metadata. They are one source because botocore picks among them at
  run time; their identity inputs are each listed in :mod:`identity`.

Adding a source is a class with those methods and one line in :data:`SOURCES` saying when it
applies (see docs/architecture.md). The sources every hit may need live here; the three that only
some requests use live beside the code they need and are imported by their line in :data:`SOURCES`
when they apply, so a hit creates none of their classes. Imports only the standard library; :mod:`aws`
is imported inside :meth:`Source.credentials`, on a miss.
"""

from __future__ import annotations

from docker_credential_ecr import identity

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Protocol

    from docker_credential_ecr.config import RegistryTable
    from docker_credential_ecr.kubelet import WebIdentity
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


def _mfa_session(context: Context) -> Source | None:
    if not identity.files_mention(context.environ, "mfa_serial"):
        return None  # no profile asks for an MFA code: a hit need not import mfa to find that out
    profile = context.table.profile if context.table is not None else None
    from docker_credential_ecr import mfa

    chain = mfa.find_chain(context.environ, profile)
    return None if chain is None else mfa.MfaSession(context.environ, chain, profile)


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
    if setting is None:
        return None
    from docker_credential_ecr.webidentity import CiWebIdentity

    return CiWebIdentity(context.environ, setting, context.table)


def _kubelet(context: Context) -> Source | None:
    if context.web_identity is None:
        return None
    from docker_credential_ecr.kubelet import KubeletWebIdentity

    return KubeletWebIdentity(context.environ, context.web_identity)


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
