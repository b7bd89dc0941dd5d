"""A miss: single flight, credentials -> aws, store, and the stale token when the refresh fails.

:mod:`helper` answers a hit by itself and calls :func:`refresh` only when the cached token is absent
or past its half-life, so a hit never loads this module. Here the miss runs under one deadline
(``AWS_ECR_TIMEOUT``): one process per (identity, region) fetches while the others wait for it (a
share of what is left: :data:`SINGLE_FLIGHT_SHARE`), the token is stored in what time remains, and a
refresh that fails serves the cached token while it has not expired (the *stale token*, not the
config's ``fallback`` helper).
"""

from __future__ import annotations

from docker_credential_ecr.errors import (
    CredentialsNotFoundError,
    DeadlineExceededError,
    StoreError,
    TokenFetchError,
)
from docker_credential_ecr.store import lock_wait

TYPE_CHECKING = False
if TYPE_CHECKING:
    from docker_credential_ecr.config import Resolution
    from docker_credential_ecr.deadline import Deadline
    from docker_credential_ecr.helper import Helper
    from docker_credential_ecr.store import AwsCredentials, Token

# A miss waits for another process fetching the same token for at most this share of what is left.
SINGLE_FLIGHT_SHARE = 0.5
SINGLE_FLIGHT_WAIT = 60.0


def refresh(helper: Helper, resolution: Resolution, key: str, cached: Token | None) -> Token:
    """A miss: one process per (identity, region) fetches; the others wait and read its result.

    Raises CredentialsNotFoundError (with the failure on stderr) when there is no token to serve.
    """
    from docker_credential_ecr.deadline import Deadline
    from docker_credential_ecr.helper import timeout_line

    try:
        with Deadline(helper.settings.timeout) as deadline:
            try:
                return _refresh_locked(helper, resolution, key, cached, deadline)
            except TokenFetchError as exc:
                failure = str(exc)
    except DeadlineExceededError as exc:
        failure = timeout_line(resolution.registry, exc)
    return _serve_stale(helper, key, cached, failure)


def fetch(helper: Helper, resolution: Resolution, deadline: Deadline | None) -> Token:
    """credentials -> aws: a new token for ``resolution``'s registry (not stored here). Raises TokenFetchError."""
    from docker_credential_ecr import aws

    registry = resolution.registry
    source = helper.source(resolution)
    creds = source.credentials(registry, _Keeper(helper, deadline))
    token = aws.fetch_token(registry, environ=helper.environ, profile=source.profile, credentials=creds, who=source.who)
    if creds is not None and source.caps_token:
        token.expires_at = min(token.expires_at, creds.expires_at)
    return token


def _serve_stale(helper: Helper, key: str, cached: Token | None, failure: str) -> Token:
    """The refresh failed: the latest cached token if it has not expired (and say so), else not found."""
    latest = helper._store_call(lambda s: s.token(key)) or cached
    if latest is not None and latest.is_usable(helper.clock()):
        minutes = int((latest.expires_at - helper.clock()) // 60)
        helper.warn(f"{failure}; using the cached token, which expires in {minutes} min")
        return latest
    helper.warn(failure)
    raise CredentialsNotFoundError(failure)


def _refresh_locked(
    helper: Helper, resolution: Resolution, key: str, cached: Token | None, deadline: Deadline
) -> Token:
    store, host = helper._store, resolution.host
    if store is None:
        return _fetch_token(helper, resolution, deadline)
    try:
        # Leave time to fetch ourselves if the lock holder is stuck.
        wait = lock_wait(deadline, SINGLE_FLIGHT_WAIT, SINGLE_FLIGHT_SHARE)
        with store.lock(key, timeout=wait):
            latest = store.token(key)  # another process may have fetched while we waited
            if latest is not None and latest.is_fresh(helper.clock()):
                if host not in latest.hosts:
                    helper._remember_host(key, host, deadline)
                return latest
            token = _fetch_token(helper, resolution, deadline, previous=latest or cached)
            _put(helper, key, token, deadline)
            return token
    except StoreError as exc:
        helper.warn(f"token cache: {exc}; fetching without it")
        return _fetch_token(helper, resolution, deadline)


def _fetch_token(helper: Helper, resolution: Resolution, deadline: Deadline, previous: Token | None = None) -> Token:
    """A new token; the host asked for (the registry's, or the alias) joins the hosts `list` reports."""
    token = helper.fetch(resolution, deadline)
    helper.fetches += 1  # a token got, not a try: a failed one ends in the stale token or not-found
    hosts = previous.hosts if previous is not None else ()
    token.hosts = hosts if resolution.host in hosts else (*hosts, resolution.host)
    return token


def _put(helper: Helper, key: str, token: Token, deadline: Deadline) -> None:
    """Store a token just fetched: best effort, in a share of what is left of ``deadline``.

    The token is good whatever happens here: a writer stuck on the file's lock (or a slow disk) must
    not turn it into a timeout, so the wait is cut to a share of the deadline, and the deadline
    itself, should it fire while writing, only costs the caching.
    """
    now, timeout = helper.clock(), lock_wait(deadline)
    try:
        helper._store_call(lambda s: s.put_token(key, token, now=now, timeout=timeout))
    except DeadlineExceededError:
        helper.warn("token cache: no time left to store the token")


class _Keeper:
    """The store as a credential source sees it: fresh credentials recalled, new ones kept, each
    write waiting only a share of what is left of the deadline (then going on without the store)."""

    def __init__(self, helper: Helper, deadline: Deadline | None) -> None:
        self._helper = helper
        self._deadline = deadline

    def recall(self, key: str) -> AwsCredentials | None:
        found = self._helper._store_call(lambda s: s.credentials(key))
        return found if found is not None and found.is_fresh(self._helper.clock()) else None

    def keep(self, key: str, credentials: AwsCredentials) -> None:
        now, timeout = self._helper.clock(), lock_wait(self._deadline)
        self._helper._store_call(lambda s: s.put_credentials(key, credentials, now=now, timeout=timeout))
