"""get / list / store / erase: the credential helper's semantics, on top of the cache and AWS.

The hot path is ``get`` on a cache hit: parse the host, fingerprint the principal from local files,
read one JSON file, answer. Nothing here imports botocore, filelock or platformdirs; :mod:`aws`
and :mod:`deadline` are imported only on a miss.
"""

from __future__ import annotations

import sys
import time

from docker_credential_ecr import config as configs
from docker_credential_ecr import log
from docker_credential_ecr.cache import Entry, TokenCache, cache_key
from docker_credential_ecr.errors import (
    BadRequestError,
    CacheError,
    ConfigError,
    CredentialsNotFoundError,
    DeadlineExceededError,
    NotImplementedByHelperError,
    TokenFetchError,
)
from docker_credential_ecr.principal import fingerprint
from docker_credential_ecr.protocol import Credentials

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from docker_credential_ecr.aws import Token
    from docker_credential_ecr.config import Config, Resolution, Rule
    from docker_credential_ecr.deadline import Deadline
    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.settings import Settings

    Fetcher = Callable[[Registry], Token]

PROGRAM = "docker-credential-ecr-login"
# A hit for a host not yet recorded (for `list`) waits at most this long for the cache-file lock.
HOST_LOCK_TIMEOUT = 1.0


class Helper:
    """The helper's four actions. The clock, the token fetcher and stderr are injectable."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        fetch: Fetcher | None = None,
        warn: Callable[[str], None] | None = None,
        config: Config | None = None,
    ) -> None:
        self.settings = settings
        self.environ = settings.environ
        self.clock = clock
        self._fetch = fetch
        self._warn = warn or _stderr_line
        self._warned: set[str] = set()
        self._config = config
        self._principals: dict[Rule | None, str] = {}
        self.fetches = 0
        self._cache: TokenCache | None = (
            TokenCache(settings.cache_dir) if settings.cache_file and settings.cache_dir else None
        )

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
        """The ECR registry (direct or through an alias) and its config settings. Raises ConfigError."""
        return self.config.resolve(server_url)

    def fallback_name(self) -> str | None:
        """The helper that hosts which are not ECR are handed to (config ``fallback``), or None."""
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

    def _cache_call(self, what: Callable[[TokenCache], Entry | None]) -> Entry | None:
        """Run a cache operation; an unusable cache is reported once and turned off for this process."""
        if self._cache is None:
            return None
        try:
            return what(self._cache)
        except CacheError as exc:
            self.warn(f"not using the token cache: {exc}")
            self._cache = None
            return None

    def principal(self, registry: Registry) -> str:
        """The fingerprint of who asks for ``registry``: the environment plus its config table, if any."""
        rule = self.config.rule_for(registry)
        if rule not in self._principals:
            if rule is None:
                self._principals[rule] = fingerprint(self.environ)
            else:
                self._principals[rule] = fingerprint(self.environ, profile=rule.profile, extra=rule.principal_inputs())
        return self._principals[rule]

    def fetch(self, registry: Registry) -> Token:
        if self._fetch is not None:
            return self._fetch(registry)
        from docker_credential_ecr import aws

        rule = self.config.rule_for(registry)
        if rule is not None and rule.role_arn:
            return aws.fetch_token_as_role(
                registry,
                rule,
                environ=self.environ,
                cache_dir=self.settings.cache_dir if self._cache is not None else None,
                principal=self.principal(registry),
                now=self.clock(),
            )
        return aws.fetch_token(registry, environ=self.environ, profile=rule.profile if rule else None)

    # -- actions ----------------------------------------------------------------------------------
    def get(self, server_url: str) -> Credentials:
        entry = self.token(server_url)
        return Credentials(server_url, entry.username, entry.password)

    def token(self, server_url: str) -> Entry:
        """`get`, returning the cache entry (with its expiry: the kubelet provider needs it).

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
        registry, host = resolution.registry, resolution.host
        key = cache_key(self.principal(registry), registry)
        entry = self._cache_call(lambda c: c.lookup(key))
        if entry is not None and entry.is_fresh(self.clock()):
            if host not in entry.hosts:
                self._remember_host(key, host)
            log.info("get %s: hit (%.1f ms)", host, (time.monotonic() - started) * 1000)
            return entry
        fetches = self.fetches
        try:
            entry = self._refresh(registry, key, entry, host)
        except CredentialsNotFoundError:
            log.info("get %s: failed (%.1f ms)", host, (time.monotonic() - started) * 1000)
            raise
        if self.fetches > fetches:
            outcome = "miss, fetched"
        elif entry.is_fresh(self.clock()):
            outcome = "miss, fetched by another process"
        else:
            outcome = "stale, served after a failed refresh"
        log.info("get %s: %s (%.1f ms)", host, outcome, (time.monotonic() - started) * 1000)
        return entry

    def _refresh(self, registry: Registry, key: str, cached: Entry | None, host: str | None = None) -> Entry:
        """A miss: one process per (principal, region) fetches; the others wait and read its result."""
        from docker_credential_ecr.deadline import Deadline

        try:
            with Deadline(self.settings.timeout) as deadline:
                try:
                    return self._refresh_locked(registry, key, cached, deadline, host or registry.host)
                except TokenFetchError as exc:
                    failure = str(exc)
        except DeadlineExceededError as exc:
            failure = timeout_line(registry, exc)
        latest = self._cache_call(lambda c: c.lookup(key)) or cached
        if latest is not None and latest.is_usable(self.clock()):
            minutes = int((latest.expires_at - self.clock()) // 60)
            self.warn(f"{failure}; using the cached token, which expires in {minutes} min")
            return latest
        self.warn(failure)
        raise CredentialsNotFoundError(failure)

    def _refresh_locked(
        self, registry: Registry, key: str, cached: Entry | None, deadline: Deadline, host: str
    ) -> Entry:
        cache = self._cache
        if cache is None:
            return self._fetch_entry(registry, host=host)
        try:
            # Leave time to fetch ourselves if the lock holder is stuck.
            lock = cache.lock(key, timeout=max(0.1, deadline.remaining() * 0.5))
            with lock:
                entry = cache.lookup(key)  # another process may have fetched while we waited
                if entry is not None and entry.is_fresh(self.clock()):
                    if host not in entry.hosts:
                        self._remember_host(key, host, deadline)
                    return entry
                entry = self._fetch_entry(registry, previous=entry or cached, host=host)
                self._store(key, entry, deadline)
                return entry
        except CacheError as exc:
            self.warn(f"token cache: {exc}; fetching without it")
            return self._fetch_entry(registry, host=host)

    def _fetch_entry(self, registry: Registry, previous: Entry | None = None, host: str | None = None) -> Entry:
        """A new token; ``host`` (the registry's, or the alias asked for) joins the hosts `list` reports."""
        self.fetches += 1
        token = self.fetch(registry)
        host = host or registry.host
        hosts = previous.hosts if previous is not None else ()
        if host not in hosts:
            hosts = (*hosts, host)
        return Entry(
            username=token.username,
            password=token.password,
            issued_at=token.issued_at,
            expires_at=token.expires_at,
            hosts=hosts,
        )

    def _store(self, key: str, entry: Entry, deadline: Deadline) -> None:
        """Cache a token just fetched: best effort, in what is left of ``deadline``.

        The token is good whatever happens here: a writer stuck on the cache-file lock (or a slow
        disk) must not turn it into a timeout, so the wait is cut to the deadline and the deadline
        itself, should it fire while writing, only costs the caching.
        """
        now, timeout = self.clock(), _lock_timeout(deadline, 10.0)
        try:
            self._cache_call(lambda c: c.store(key, entry, now=now, timeout=timeout))
        except DeadlineExceededError:
            self.warn("token cache: no time left to store the token")

    def _remember_host(self, key: str, host: str, deadline: Deadline | None = None) -> None:
        """Record ``host`` for `list`: worth a short wait for the cache-file lock, not a slow hit."""
        now, timeout = self.clock(), _lock_timeout(deadline, HOST_LOCK_TIMEOUT)
        try:
            self._cache_call(lambda c: c.add_host(key, host, now=now, timeout=timeout))
        except DeadlineExceededError:
            pass

    def list(self) -> dict[str, str]:
        """Registries served from the cache that `get` would still answer from it now. No network."""
        if self._cache is None:
            return {}
        cache = self._cache
        try:
            config = self.config
            entries = cache.read()
        except ConfigError as exc:  # which principal asks for which host is unknown: list nothing
            self.warn(str(exc))
            return {}
        except CacheError as exc:
            self.warn(f"not using the token cache: {exc}")
            return {}
        now = self.clock()
        servers: dict[str, str] = {}
        for key, entry in sorted(entries.items()):
            if not entry.is_usable(now):
                continue
            for host in entry.hosts:  # registry hosts, and aliases served (listed while they still resolve)
                resolution = config.resolve(host)
                if resolution is None or resolution.host != host:
                    continue
                if cache_key(self.principal(resolution.registry), resolution.registry) == key:
                    servers["https://" + host] = entry.username
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


def _lock_timeout(deadline: Deadline | None, longest: float) -> float:
    """How long to wait for the cache-file lock: ``longest``, cut to what is left of ``deadline``."""
    if deadline is None:
        return longest
    return max(0.05, min(longest, deadline.remaining() - 0.25))


def _stderr_line(message: str) -> None:
    try:
        sys.stderr.write(f"{PROGRAM}: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed by the caller: nothing more to do
        pass
