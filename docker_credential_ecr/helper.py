"""get / list / store / erase: the credential helper's semantics, on the store and the credential sources.

The miss path is one line: helper -> store (miss) -> credentials (the source for this registry: its
identity key, and on a miss its AWS credentials) -> aws (GetAuthorizationToken) -> store -> answer.
The hot path is ``get`` on a hit: resolve the host (once: the registry, the alias, the config table),
hash the source's identity inputs from local files, read one JSON file, answer. Nothing here imports
botocore, filelock or platformdirs; the miss itself is :mod:`refresh`'s (with :mod:`aws`,
:mod:`deadline` and the store's writing half), imported only then.

Two different things are called a fallback elsewhere and are kept apart here: the *other helper*
that hosts which are not ECR are handed to (config ``fallback``, :mod:`fallback`), and the *stale
token* served when a refresh fails (:mod:`refresh`).
"""

from __future__ import annotations

import sys
import time

from docker_credential_ecr import config as configs
from docker_credential_ecr import credentials, log
from docker_credential_ecr.errors import (
    BadRequestError,
    ConfigError,
    CredentialsNotFoundError,
    DeadlineExceededError,
    NotImplementedByHelperError,
    StoreBusyError,
    StoreError,
)
from docker_credential_ecr.protocol import Credentials
from docker_credential_ecr.store import Store, Token, lock_wait, token_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from docker_credential_ecr.config import Config, RegistryTable, Resolution
    from docker_credential_ecr.deadline import Deadline
    from docker_credential_ecr.kubelet import WebIdentity
    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.settings import Settings

    Fetcher = Callable[[Registry], Token]
    _T = TypeVar("_T")

PROGRAM = "docker-credential-ecr-login"
# A hit for a host not yet recorded (for `list`) waits at most this long for the token file's lock.
HOST_LOCK_TIMEOUT = 1.0


class Helper:
    """The helper's four actions. The clock, the token fetcher and stderr are injectable.

    ``fetch`` replaces credentials + aws (tests); ``web_identity`` is a kubelet request's service
    account token, which makes :class:`~docker_credential_ecr.kubelet.KubeletWebIdentity` the source.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        fetch: Fetcher | None = None,
        warn: Callable[[str], None] | None = None,
        config: Config | None = None,
        web_identity: WebIdentity | None = None,
    ) -> None:
        self.settings = settings
        self.environ = settings.environ
        self.clock = clock
        self._fetch = fetch
        self._warn = warn or _stderr_line
        self._warned: set[str] = set()
        self._config = config
        self._web_identity = web_identity
        self._sources: dict[RegistryTable | None, credentials.Source] = {}
        self.fetches = 0
        self._store: Store | None = Store(settings.cache_dir) if settings.cache_file and settings.cache_dir else None

    # -- plumbing ---------------------------------------------------------------------------------
    def warn(self, message: str) -> None:
        """One line on stderr, at most once per message per process."""
        if "@" in message:  # a proxy or endpoint URL with its password, should a library print one
            message = log.redact_userinfo(message)
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)
            self._warn(message)

    @property
    def config(self) -> Config:
        """The config file's settings, read once (cheap: see :mod:`config`). Raises ConfigError."""
        if self._config is None:
            config = configs.load(self.settings)
            if config.refused:  # a file someone else could write: as if there were none
                self.warn(config.refused)
            self._config = config
        return self._config

    def start_logging(self) -> None:
        """Turn on file logging if the environment or the config file asks for it (see :mod:`log`)."""
        try:
            config: Config | None = self.config
        except ConfigError:
            config = None  # reported by the action itself
        log.setup(self.settings, config)
        refused = log.refused()
        if refused is not None:  # someone else's file or directory: logging stays off, get goes on
            self.warn(refused)

    def resolve(self, server_url: str) -> Resolution | None:
        """The ECR registry (direct or through an alias) and its config table. Raises ConfigError."""
        return self.config.resolve(server_url)

    def fallback_name(self) -> str | None:
        """The other helper that hosts which are not ECR are handed to (config ``fallback``), or None."""
        if self.environ.get(configs.PASSED_THROUGH_ENV):
            return None
        try:
            return self.config.fallback
        except ConfigError:
            return None  # get answers not-found, store/erase the error: see _checked_config

    def _checked_config(self) -> Config:
        try:
            return self.config
        except ConfigError as exc:
            self.warn(str(exc))
            raise BadRequestError(str(exc)) from None

    def _store_call(self, what: Callable[[Store], _T]) -> _T | None:
        """Run a store operation; an unusable store is reported once and turned off for this process.

        A lock that stays busy for the wait allowed only skips this operation: the store stays on.
        """
        if self._store is None:
            return None
        try:
            return what(self._store)
        except StoreBusyError as exc:
            self.warn(f"token cache: {exc}; going on without it")
            return None
        except StoreError as exc:
            self.warn(f"not using the token cache: {exc}")
            self._store = None
            return None

    def source(self, resolution: Resolution) -> credentials.Source:
        """The credential source for ``resolution`` (one per config table per process)."""
        table = resolution.table
        if table not in self._sources:
            context = credentials.Context(self.environ, table, self._web_identity)
            self._sources[table] = credentials.select(context)
        return self._sources[table]

    def identity_key(self, resolution: Resolution) -> str:
        """The store's "who" for ``resolution``: its source's identity key."""
        return self.source(resolution).identity_key()

    def fetch(self, resolution: Resolution, deadline: Deadline | None = None) -> Token:
        """credentials -> aws: a new token for ``resolution``'s registry (the token is not stored here).

        Raises TokenFetchError.
        """
        if self._fetch is not None:
            return self._fetch(resolution.registry)
        from docker_credential_ecr import refresh

        return refresh.fetch(self, resolution, deadline)

    # -- actions ----------------------------------------------------------------------------------
    def get(self, server_url: str) -> Credentials:
        token = self.token(server_url)
        return Credentials(server_url, token.username, token.password)

    def token(self, server_url: str) -> Token:
        """`get`, returning the token (with its expiry: the kubelet provider needs it).

        Raises CredentialsNotFoundError without a hint for a host that is not ours, with one for a failure
        (a bad config file included).
        """
        started = time.monotonic()
        try:
            resolution = self.resolve(server_url)
        except ConfigError as exc:
            self.warn(str(exc))
            raise CredentialsNotFoundError(str(exc)) from None
        if resolution is None:
            log.debug("get %s: not an ECR registry or alias", server_url)
            raise CredentialsNotFoundError  # not ours: silent, docker goes anonymous
        host = resolution.host
        key = token_key(self.identity_key(resolution), resolution.registry)
        cached = self._store_call(lambda s: s.token(key))
        if cached is not None and cached.is_fresh(self.clock()):
            if host not in cached.hosts:
                self._remember_host(key, host)
            log.info("get %s: hit (%.1f ms)", host, (time.monotonic() - started) * 1000)
            return cached
        from docker_credential_ecr import refresh

        fetches = self.fetches
        try:
            token = refresh.refresh(self, resolution, key, cached)
        except CredentialsNotFoundError:
            log.info("get %s: failed (%.1f ms)", host, (time.monotonic() - started) * 1000)
            raise
        if self.fetches > fetches:
            outcome = "miss, fetched"
        elif token.is_fresh(self.clock()):
            outcome = "miss, fetched by another process"
        else:
            outcome = "stale, served after a failed refresh"
        log.info("get %s: %s (%.1f ms)", host, outcome, (time.monotonic() - started) * 1000)
        return token

    def _remember_host(self, key: str, host: str, deadline: Deadline | None = None) -> None:
        """Record ``host`` for `list`: worth a short wait for the token file's lock, not a slow hit."""
        now, timeout = self.clock(), lock_wait(deadline, HOST_LOCK_TIMEOUT)
        try:
            self._store_call(lambda s: s.add_host(key, host, now=now, timeout=timeout))
        except DeadlineExceededError:
            pass

    def list(self) -> dict[str, str]:
        """Registries served from the cache that `get` would still answer from it now. No network."""
        if self._store is None:
            return {}
        store = self._store
        try:
            config = self.config
            tokens = store.tokens()
        except ConfigError as exc:  # which identity asks for which host is unknown: list nothing
            self.warn(str(exc))
            return {}
        except StoreError as exc:
            self.warn(f"not using the token cache: {exc}")
            return {}
        now = self.clock()
        servers: dict[str, str] = {}
        for key, token in sorted(tokens.items()):
            if not token.is_usable(now):
                continue
            for host in token.hosts:  # registry hosts, and aliases served (listed while they still resolve)
                resolution = config.resolve(host)
                if resolution is None or resolution.host != host:
                    continue
                if token_key(self.identity_key(resolution), resolution.registry) == key:
                    servers["https://" + host] = token.username
        return servers

    def store(self, creds: Credentials) -> None:
        self._checked_config()
        if not self.settings.ignore_creds_storage:
            raise NotImplementedByHelperError
        # Told to accept and drop: ECR tokens are fetched, never stored.

    def erase(self, server_url: str) -> None:
        self._checked_config()
        if not self.settings.ignore_creds_storage:
            raise NotImplementedByHelperError


def timeout_line(registry: Registry, exc: DeadlineExceededError) -> str:
    """The stderr line for a `get` that ran out of time (``AWS_ECR_TIMEOUT``)."""
    where = "ECR Public" if registry.service == "ecr-public" else f"ECR ({registry.region})"
    return f"{where}: no token in time ({exc}; AWS_ECR_TIMEOUT); check the network and proxy"


def _stderr_line(message: str) -> None:
    try:
        sys.stderr.write(f"{PROGRAM}: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed by the caller: nothing more to do
        pass
