"""The store: every secret this helper keeps on disk, in one directory, on one set of rules.

What it holds, each in its own JSON file of one schema family
(``{"schema": "docker-credential-ecr/<kind>", "version": N, ...}``):

* ``cache.json``: ECR tokens (:class:`Token`), keyed by :func:`token_key`;
* ``credentials.json``: temporary AWS credentials (:class:`AwsCredentials`) that a credential source
  got from STS (an assumed role; MFA sessions and CI web identities go here too), keyed by
  :func:`credentials_key`;
* ``config.json``: the config file's parsed copy (:mod:`config` decides what is in it).

The rules, the same for every file:

* The directory is ours alone (0700, our uid, not a symlink); every file is 0600, ours, regular,
  opened without following links (:mod:`safefile`'s opener and writer, shared with the other files
  this helper touches). Anything else makes the store unusable (:class:`StoreError`): a miss, never
  a failure, never a path written through.
* Reads take no lock: writers publish a complete temp file with ``os.replace``
  (:func:`storewrite.publish`, the one writer), so a reader sees the old file or the new one, never
  half of one. Anything that is not the current schema and version (another version, the Go
  helper's file, junk, a truncated write of some other tool) reads as empty and is replaced by the
  next write.
* Writes (:mod:`storewrite`, imported only to write) re-read the file under that file's lock
  (``locks/<name>.lock``: :mod:`storelock`, through ``filelock``, imported only then), change it and
  publish it. Every lock wait is bounded by what the caller passes, which on a `get` is a share of
  what is left of its deadline (:func:`lock_wait`); a wait that runs out is a :class:`StoreError`:
  the caller goes on without the store.

Freshness (half the lifetime, the Go helper's rule) and the stale-token margin live here too, with
the clock injected. Nothing here imports more than the standard library at module level.
"""

from __future__ import annotations

import os

from docker_credential_ecr import jsonwire, safefile
from docker_credential_ecr.errors import StoreError
from docker_credential_ecr.safefile import RefusedError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import TypeVar

    from docker_credential_ecr.deadline import Deadline
    from docker_credential_ecr.registry import Registry

    _R = TypeVar("_R", "Token", "AwsCredentials")

SCHEMA = "docker-credential-ecr/token-cache"
VERSION = 1
FILE_NAME = "cache.json"
CREDENTIALS_SCHEMA = "docker-credential-ecr/aws-credentials"
CREDENTIALS_VERSION = 1
CREDENTIALS_FILE_NAME = "credentials.json"
CONFIG_COPY_NAME = "config.json"
MAX_FILE_BYTES = 4 << 20
# Serve a stale token (refresh failed) only while it has this much life left: a pull started with a
# token about to expire would fail half-way.
STALE_MARGIN = 60.0
# Clocks step backwards (NTP, suspended laptops); an entry "issued" far in the future is suspect.
CLOCK_SKEW = 300.0
# Lock waits: at most this long to publish something already in hand (a token, credentials), and at
# most this share of what is left of the deadline; the rest is for the work itself.
WRITE_WAIT = 5.0
WRITE_SHARE = 0.25
# The shortest wait worth trying at all (a lock free right now is taken at once).
MIN_WAIT = 0.05
# Times beyond this (about year 5138) are corrupt, not cached tokens.
_MAX_TIME = 1e11
# The lock of each file; "cache-file" is the token file's since 0.1.0 (old and new helpers may share a dir).
_FILE_LOCKS = {FILE_NAME: "cache-file", CREDENTIALS_FILE_NAME: "credentials-file"}


def lock_wait(deadline: Deadline | None, longest: float = WRITE_WAIT, share: float = WRITE_SHARE) -> float:
    """How long one lock wait may take: ``longest``, cut to ``share`` of what is left of ``deadline``."""
    if deadline is None:
        return longest
    return max(MIN_WAIT, min(longest, deadline.remaining() * share))


# -- the records ------------------------------------------------------------------------------------
class Token:
    """An ECR authorization token. ``hosts`` are the registries it was served for (what `list` reports).

    ``repr`` never shows the password.
    """

    __slots__ = ("expires_at", "hosts", "issued_at", "password", "username")

    def __init__(
        self, *, username: str, password: str, issued_at: float, expires_at: float, hosts: tuple[str, ...] = ()
    ) -> None:
        self.username = username
        self.password = password
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.hosts = hosts

    def __repr__(self) -> str:
        return f"Token(username={self.username!r}, expires_at={self.expires_at}, hosts={self.hosts!r})"

    def is_fresh(self, now: float) -> bool:
        """Served without asking AWS until half its lifetime has passed (the Go helper's rule)."""
        return _is_fresh(self.issued_at, self.expires_at, now)

    def is_usable(self, now: float) -> bool:
        """Still good enough to serve when a refresh fails."""
        return now < self.expires_at - STALE_MARGIN

    def to_json(self) -> dict[str, object]:
        return {
            "username": self.username,
            "password": self.password,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "hosts": list(self.hosts),
        }

    @classmethod
    def from_json(cls, data: object) -> Token | None:
        """A token from its JSON form; None for anything of the wrong shape."""
        if not isinstance(data, dict):
            return None
        username, password, hosts = data.get("username"), data.get("password"), data.get("hosts", [])
        if not (isinstance(username, str) and isinstance(password, str) and username and password):
            return None
        times = _times(data)
        if times is None or not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)):
            return None
        return cls(username=username, password=password, issued_at=times[0], expires_at=times[1], hosts=tuple(hosts))


class AwsCredentials:
    """Temporary AWS credentials (an assumed role, a web identity, an MFA session).

    ``repr`` shows the key id only, never the secret or the session token.
    """

    __slots__ = ("access_key_id", "expires_at", "issued_at", "secret_access_key", "session_token")

    def __init__(
        self, *, access_key_id: str, secret_access_key: str, session_token: str, issued_at: float, expires_at: float
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.issued_at = issued_at
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, expires_at={self.expires_at})"

    def is_fresh(self, now: float) -> bool:
        """Used as they are until half their lifetime has passed, then got again."""
        return _is_fresh(self.issued_at, self.expires_at, now)

    def to_json(self) -> dict[str, object]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: object) -> AwsCredentials | None:
        if not isinstance(data, dict):
            return None
        key, secret, session = data.get("access_key_id"), data.get("secret_access_key"), data.get("session_token")
        times = _times(data)
        if not (isinstance(key, str) and isinstance(secret, str) and isinstance(session, str)):
            return None
        if not (key and secret and session) or times is None:
            return None
        return cls(
            access_key_id=key, secret_access_key=secret, session_token=session, issued_at=times[0], expires_at=times[1]
        )


def _is_fresh(issued_at: float, expires_at: float, now: float) -> bool:
    return issued_at - CLOCK_SKEW <= now < (issued_at + expires_at) / 2


def _times(data: dict[str, object]) -> tuple[float, float] | None:
    issued, expires = _time(data.get("issued_at")), _time(data.get("expires_at"))
    return None if issued is None or expires is None else (issued, expires)


def _time(value: object) -> float | None:
    """A timestamp read from JSON; None unless a finite number of sane size.

    ``1e999`` reads as inf (an entry fresh for ever), ``10**999`` cannot become a float at all
    (OverflowError): either is a corrupt file, which must read as a miss, not a crash.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if -_MAX_TIME < number < _MAX_TIME else None  # NaN fails the comparison too


# -- keys -------------------------------------------------------------------------------------------
def token_key(identity_key: str, registry: Registry) -> str:
    """One token per (identity, partition/region, FIPS, dual-stack): ECR tokens are regional."""
    return "/".join(
        (
            identity_key,
            registry.service,
            registry.region,
            "fips" if registry.fips else "",
            "dualstack" if registry.dualstack else "",
        )
    )


def credentials_key(identity_key: str, kind: str, scope: str) -> str:
    """Credentials of ``kind`` (``sts``: an assumed role) for ``identity_key`` in ``scope`` (a partition)."""
    return f"{identity_key}/{kind}/{scope}"


# -- documents --------------------------------------------------------------------------------------
def parse_document(text: str) -> dict[str, Token]:
    """The tokens of a token-file document; empty for anything that is not our current schema."""
    return _parse_entries(text, SCHEMA, VERSION, Token.from_json)


def parse_credentials(text: str) -> dict[str, AwsCredentials]:
    return _parse_entries(text, CREDENTIALS_SCHEMA, CREDENTIALS_VERSION, AwsCredentials.from_json)


def _parse_entries(text: str, schema: str, version: int, record: Callable[[object], _R | None]) -> dict[str, _R]:
    try:
        doc = jsonwire.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != schema or doc.get("version") != version:
        return {}
    raw = doc.get("entries")
    if not isinstance(raw, dict):
        return {}
    entries = {}
    for key, value in raw.items():
        entry = record(value)
        if entry is not None:
            entries[key] = entry
    return entries


def _refused(what: str, path: str, exc: RefusedError) -> StoreError:
    """The message for a file of the store that the safe opener refused."""
    if exc.reason == safefile.SYMLINK:  # as the system says it (ELOOP)
        return StoreError(f"{what} {path} cannot be opened: {exc.strerror}")
    if exc.reason == safefile.OTHER_OWNER and exc.st is not None:
        return StoreError(f"{what} {path} belongs to another user (uid {exc.st.st_uid})")
    if exc.reason == safefile.REFUSED_MODE:
        return StoreError(f"{what} {path} is writable by other users")
    if exc.reason == safefile.NOT_DIRECTORY:
        return StoreError(f"{what} {path} is not a directory (a symlink or a file)")
    return StoreError(f"{what} {path} is not a regular file")


# -- the directory ----------------------------------------------------------------------------------
class Store:
    """The store in ``directory``. Methods raise :class:`StoreError` only (and what ``change`` raises)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)  # the token file
        self.credentials_path = os.path.join(directory, CREDENTIALS_FILE_NAME)
        self.config_copy_path = os.path.join(directory, CONFIG_COPY_NAME)

    # -- reading: lock-free, on the hot path ------------------------------------------------------
    def _check_directory(self) -> bool:
        """False when the directory does not exist yet; StoreError when it is not safe to use."""
        try:
            safefile.check_directory(self.directory)
        except FileNotFoundError:
            return False
        except RefusedError as exc:
            raise _refused("cache directory", self.directory, exc) from None
        except OSError as exc:
            raise StoreError(f"cache directory {self.directory} is unreadable: {exc.strerror}") from None
        return True

    def read_private(self, path: str) -> str | None:
        """The text of one of our files; None when absent or too large to be ours. StoreError if not ours."""
        if not self._check_directory():
            return None
        try:
            fd, _ = safefile.open_checked(path)
        except FileNotFoundError:
            return None
        except RefusedError as exc:
            raise _refused("cache file", path, exc) from None
        except OSError as exc:
            raise StoreError(f"cache file {path} cannot be opened: {exc.strerror}") from None
        try:
            data = safefile.read_at_most(fd, MAX_FILE_BYTES)  # one byte more: a larger file is not ours
        except OSError as exc:
            raise StoreError(f"cache file {path} cannot be read: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) > MAX_FILE_BYTES:
            return None
        return data.decode("utf-8", "replace")

    def tokens(self) -> dict[str, Token]:
        """Every valid token; empty when the file is absent or not ours to trust."""
        text = self.read_private(self.path)
        return {} if text is None else parse_document(text)

    def token(self, key: str) -> Token | None:
        return self.tokens().get(key)

    def all_credentials(self) -> dict[str, AwsCredentials]:
        text = self.read_private(self.credentials_path)
        return {} if text is None else parse_credentials(text)

    def credentials(self, key: str) -> AwsCredentials | None:
        return self.all_credentials().get(key)

    # -- writing: storewrite's, imported only to write (a hit loads none of it) -------------------
    def ensure_directory(self) -> None:
        """Create the directory (0700) and its locks/ if needed; StoreError unless it is ours alone."""
        from docker_credential_ecr import storewrite

        storewrite.ensure_directory(self)

    def lock(self, name: str, timeout: float) -> AbstractContextManager[object]:
        """An inter-process lock named ``name`` (a token key, or a file's); StoreError when the wait runs out."""
        from docker_credential_ecr import storewrite

        return storewrite.lock(self, name, timeout)

    def update(self, change: Callable[[dict[str, Token]], None], *, now: float, timeout: float = WRITE_WAIT) -> None:
        """Re-read the token file under its lock, apply ``change``, drop expired tokens, publish."""
        from docker_credential_ecr import storewrite

        storewrite.update(self, change, now=now, timeout=timeout)

    def put_token(self, key: str, token: Token, *, now: float, timeout: float = WRITE_WAIT) -> None:
        from docker_credential_ecr import storewrite

        storewrite.put_token(self, key, token, now=now, timeout=timeout)

    def add_host(self, key: str, host: str, *, now: float, timeout: float = WRITE_WAIT) -> None:
        """Remember that the token under ``key`` was served for ``host`` (for `list`)."""
        from docker_credential_ecr import storewrite

        storewrite.add_host(self, key, host, now=now, timeout=timeout)

    def put_credentials(
        self, key: str, credentials: AwsCredentials, *, now: float, timeout: float = WRITE_WAIT
    ) -> None:
        from docker_credential_ecr import storewrite

        storewrite.put_credentials(self, key, credentials, now=now, timeout=timeout)

    def clear(self) -> int:
        """Remove every token; returns how many there were."""
        from docker_credential_ecr import storewrite

        return storewrite.clear(self)

    def clear_credentials(self, keep: Callable[[str], bool] | None = None) -> int:
        """Remove every stored credential but those whose key ``keep`` accepts; returns how many went."""
        from docker_credential_ecr import storewrite

        return storewrite.clear_credentials(self, keep)

    def publish_config_copy(self, text: str) -> None:
        """Publish the config's parsed copy, on the store's terms. StoreError when it cannot."""
        from docker_credential_ecr import storewrite

        storewrite.publish_config_copy(self, text)
