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
* Reads take no lock: writers publish a complete temp file with ``os.replace`` (:func:`publish`, the
  one writer), so a reader sees the old file or the new one, never half of one. Anything that is not
  the current schema and version (another version, the Go helper's file, junk, a truncated write of
  some other tool) reads as empty and is replaced by the next write.
* Writes re-read the file under that file's lock (``locks/<name>.lock``: :mod:`storelock`, through
  ``filelock``, both imported only then), change it and publish it. Every lock wait is bounded by
  what the caller passes, which on a `get` is a share of what is left of its deadline
  (:func:`lock_wait`); a wait that runs out is a :class:`StoreError`: the caller goes on without
  the store.

Freshness (half the lifetime, the Go helper's rule) and the stale-token margin live here too, with
the clock injected. Nothing here imports more than the standard library at module level.
"""

from __future__ import annotations

import os
import stat

from docker_credential_ecr import jsonwire, safefile
from docker_credential_ecr.errors import StoreError
from docker_credential_ecr.safefile import RefusedError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
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
# The durability steps of the writer, by their old names here (tests/test_store.py calls them).
_unlink_quietly = safefile.unlink_quietly
_fsync_directory = safefile.fsync_directory
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


def render_document(entries: dict[str, Token]) -> str:
    return _render_entries(SCHEMA, VERSION, entries)


def parse_credentials(text: str) -> dict[str, AwsCredentials]:
    return _parse_entries(text, CREDENTIALS_SCHEMA, CREDENTIALS_VERSION, AwsCredentials.from_json)


def render_credentials(entries: dict[str, AwsCredentials]) -> str:
    return _render_entries(CREDENTIALS_SCHEMA, CREDENTIALS_VERSION, entries)


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


def _render_entries(schema: str, version: int, entries: Mapping[str, Token | AwsCredentials]) -> str:
    import json

    body = {k: e.to_json() for k, e in sorted(entries.items())}
    return json.dumps({"schema": schema, "version": version, "entries": body}, indent=1)


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

    # -- writing: under a lock, atomically --------------------------------------------------------
    def ensure_directory(self) -> None:
        """Create the directory (0700) and its locks/ if needed; StoreError unless it is ours alone."""
        try:
            if not self._check_directory():
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                self._check_directory()
            st = os.stat(self.directory)
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.chmod(self.directory, 0o700)  # ours and not writable by others: close it to readers too
            locks = os.path.join(self.directory, "locks")
            try:
                os.mkdir(locks, 0o700)
            except FileExistsError:
                pass
            # makedirs(exist_ok=True) follows a symlink: lock files would be created wherever it points.
            try:
                safefile.check_directory(locks)
            except RefusedError as exc:
                raise _refused("lock directory", locks, exc) from None
        except OSError as exc:
            # The directory may exist: what failed may be creating locks/ or a lock file in it.
            raise StoreError(f"cache directory {self.directory} is not writable: {exc.strerror or exc}") from None

    def lock(self, name: str, timeout: float) -> AbstractContextManager[object]:
        """An inter-process lock named ``name`` (a token key, or a file's); StoreError when the wait runs
        out (:mod:`storelock`, imported only here: writes and misses)."""
        self.ensure_directory()
        from docker_credential_ecr import storelock

        return storelock.lock(os.path.join(self.directory, "locks"), name, timeout)

    def update(self, change: Callable[[dict[str, Token]], None], *, now: float, timeout: float = WRITE_WAIT) -> None:
        """Re-read the token file under its lock, apply ``change``, drop expired tokens, publish."""
        with self.lock(_FILE_LOCKS[FILE_NAME], timeout):
            self._sweep_temp_files(FILE_NAME)
            entries = self.tokens()
            change(entries)
            for key in [k for k, e in entries.items() if e.expires_at <= now]:
                del entries[key]
            publish(self.path, render_document(entries))

    def update_credentials(
        self, change: Callable[[dict[str, AwsCredentials]], None], *, now: float, timeout: float = WRITE_WAIT
    ) -> None:
        """The same for the credentials file."""
        with self.lock(_FILE_LOCKS[CREDENTIALS_FILE_NAME], timeout):
            self._sweep_temp_files(CREDENTIALS_FILE_NAME)
            entries = self.all_credentials()
            change(entries)
            for key in [k for k, e in entries.items() if e.expires_at <= now]:
                del entries[key]
            publish(self.credentials_path, render_credentials(entries))

    def _sweep_temp_files(self, file_name: str) -> None:
        """Remove temp files of writers killed before their rename (kill -9, OOM, power loss).

        Only a writer holding the file's lock creates one, and the lock dies with its holder, so under
        that lock every temp file left is an orphan: it would otherwise keep a secret on disk and eat
        the space the next write needs. Unlinking never follows a symlink.
        """
        prefix, suffix = file_name + ".", ".tmp"
        try:
            with os.scandir(self.directory) as names:
                orphans = [e.name for e in names if e.name.startswith(prefix) and e.name.endswith(suffix)]
        except OSError:
            return
        for name in orphans:
            _unlink_quietly(os.path.join(self.directory, name))

    def put_token(self, key: str, token: Token, *, now: float, timeout: float = WRITE_WAIT) -> None:
        def change(entries: dict[str, Token]) -> None:
            entries[key] = token

        self.update(change, now=now, timeout=timeout)

    def add_host(self, key: str, host: str, *, now: float, timeout: float = WRITE_WAIT) -> None:
        """Remember that the token under ``key`` was served for ``host`` (for `list`)."""

        def change(entries: dict[str, Token]) -> None:
            entry = entries.get(key)
            if entry is not None and host not in entry.hosts:
                entry.hosts = (*entry.hosts, host)

        self.update(change, now=now, timeout=timeout)

    def put_credentials(
        self, key: str, credentials: AwsCredentials, *, now: float, timeout: float = WRITE_WAIT
    ) -> None:
        def change(entries: dict[str, AwsCredentials]) -> None:
            entries[key] = credentials

        self.update_credentials(change, now=now, timeout=timeout)

    def clear(self) -> int:
        """Remove every token; returns how many there were."""
        removed = 0

        def change(entries: dict[str, Token]) -> None:
            nonlocal removed
            removed = len(entries)
            entries.clear()

        self.update(change, now=0.0)
        return removed

    def clear_credentials(self, keep: Callable[[str], bool] | None = None) -> int:
        """Remove every stored credential but those whose key ``keep`` accepts; returns how many went."""
        removed = 0

        def change(entries: dict[str, AwsCredentials]) -> None:
            nonlocal removed
            gone = [key for key in entries if keep is None or not keep(key)]
            removed = len(gone)
            for key in gone:
                del entries[key]

        self.update_credentials(change, now=0.0)
        return removed

    def publish_config_copy(self, text: str) -> None:
        """Publish the config's parsed copy, on the store's terms. StoreError when it cannot."""
        self.ensure_directory()
        publish(self.config_copy_path, text)


def publish(path: str, text: str) -> None:
    """Write ``text`` as a new 0600 file beside ``path``, fsync it, rename it over ``path``
    (:func:`safefile.write_atomically`: never through a planted symlink; on any failure the old file
    is left as it was and no temp file stays). Raises StoreError."""
    try:
        safefile.write_atomically(path, text.encode("utf-8"))
    except OSError as exc:
        raise StoreError(f"cache file {path} cannot be written: {exc.strerror}") from None
