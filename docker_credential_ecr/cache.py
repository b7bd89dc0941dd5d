"""The token cache: one JSON file, read without locks, written atomically under a lock.

Layout: ``<dir>/cache.json`` (0600) in ``<dir>`` (0700), plus ``<dir>/locks/`` for the lock files.
The document is ``{"schema": SCHEMA, "version": VERSION, "entries": {key: entry}}``; anything else
(another version, the Go helper's format, junk, a truncated write from a crash of some other tool)
reads as an empty cache and is replaced by the next write. Readers never lock: writers publish a
complete temp file with ``os.replace``, so a reader sees the old file or the new one, never half.

The directory and file must be ours and closed to others: a symlink, another owner, or group/world
write access makes the cache unusable (:class:`CacheError`), never a path we write through.
"""

from __future__ import annotations

import os
import stat

from docker_credential_ecr import jsonwire
from docker_credential_ecr.errors import CacheError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from docker_credential_ecr.registry import Registry

SCHEMA = "docker-credential-ecr/token-cache"
VERSION = 1
FILE_NAME = "cache.json"
MAX_FILE_BYTES = 4 << 20
# Serve a stale token (refresh failed) only while it has this much life left: a pull started with a
# token about to expire would fail half-way.
STALE_MARGIN = 60.0
# Clocks step backwards (NTP, suspended laptops); an entry "issued" far in the future is suspect.
CLOCK_SKEW = 300.0
# Times beyond this (about year 5138) are corrupt, not cached tokens.
_MAX_TIME = 1e11
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# Opening a FIFO for reading blocks until a writer comes: never on the hot path, which has no deadline.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class Entry:
    """One cached token. ``hosts`` are the registries it was served for (what `list` reports)."""

    __slots__ = ("expires_at", "hosts", "issued_at", "password", "username")

    def __init__(
        self, *, username: str, password: str, issued_at: float, expires_at: float, hosts: tuple[str, ...]
    ) -> None:
        self.username = username
        self.password = password
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.hosts = hosts

    def __repr__(self) -> str:  # never the password
        return f"Entry(username={self.username!r}, expires_at={self.expires_at}, hosts={self.hosts!r})"

    def is_fresh(self, now: float) -> bool:
        """Served without asking AWS until half its lifetime has passed (the Go helper's rule)."""
        return self.issued_at - CLOCK_SKEW <= now < (self.issued_at + self.expires_at) / 2

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
    def from_json(cls, data: object) -> Entry | None:
        """An entry from its JSON form; None for anything of the wrong shape."""
        if not isinstance(data, dict):
            return None
        username, password = data.get("username"), data.get("password")
        issued_at, expires_at, hosts = data.get("issued_at"), data.get("expires_at"), data.get("hosts", [])
        if not (isinstance(username, str) and isinstance(password, str) and username and password):
            return None
        issued, expires = _time(issued_at), _time(expires_at)
        if issued is None or expires is None:
            return None
        if not (isinstance(hosts, list) and all(isinstance(h, str) for h in hosts)):
            return None
        return cls(username=username, password=password, issued_at=issued, expires_at=expires, hosts=tuple(hosts))


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


def cache_key(principal: str, registry: Registry) -> str:
    """One token per (principal, partition/region, FIPS, dual-stack): ECR tokens are regional."""
    return "/".join(
        (
            principal,
            registry.service,
            registry.region,
            "fips" if registry.fips else "",
            "dualstack" if registry.dualstack else "",
        )
    )


def parse_document(text: str) -> dict[str, Entry]:
    """The entries of a cache document; empty for anything that is not our current schema."""
    try:
        doc = jsonwire.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or doc.get("version") != VERSION:
        return {}
    raw = doc.get("entries")
    if not isinstance(raw, dict):
        return {}
    entries = {}
    for key, value in raw.items():
        entry = Entry.from_json(value)
        if entry is not None:
            entries[key] = entry
    return entries


def render_document(entries: dict[str, Entry]) -> str:
    import json

    return json.dumps(
        {"schema": SCHEMA, "version": VERSION, "entries": {k: e.to_json() for k, e in sorted(entries.items())}},
        indent=1,
    )


def _check_private(st: os.stat_result, what: str, path: str) -> None:
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise CacheError(f"{what} {path} belongs to another user (uid {st.st_uid})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(f"{what} {path} is writable by other users")


class TokenCache:
    """The cache file at ``<directory>/cache.json``. Methods raise :class:`CacheError` only."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)

    # -- reading: lock-free, on the hot path ------------------------------------------------------
    def _check_directory(self) -> bool:
        """False when the directory does not exist yet; CacheError when it is not safe to use."""
        try:
            st = os.lstat(self.directory)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise CacheError(f"cache directory {self.directory} is unreadable: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise CacheError(f"cache directory {self.directory} is not a directory (a symlink or a file)")
        _check_private(st, "cache directory", self.directory)
        return True

    def read(self) -> dict[str, Entry]:
        """Every valid entry; empty when the file is absent or not ours to trust."""
        if not self._check_directory():
            return {}
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CacheError(f"cache file {self.path} cannot be opened: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CacheError(f"cache file {self.path} is not a regular file")
            _check_private(st, "cache file", self.path)
            data = os.read(fd, MAX_FILE_BYTES + 1) if st.st_size <= MAX_FILE_BYTES else b""
        except OSError as exc:
            raise CacheError(f"cache file {self.path} cannot be read: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(data) > MAX_FILE_BYTES:
            return {}
        return parse_document(data.decode("utf-8", "replace"))

    def lookup(self, key: str) -> Entry | None:
        return self.read().get(key)

    # -- writing: under a lock, atomically --------------------------------------------------------
    def ensure_directory(self) -> None:
        """Create the directory (0700) and its locks/ if needed; CacheError unless it is ours alone."""
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
            st = os.lstat(locks)
            if not stat.S_ISDIR(st.st_mode):
                raise CacheError(f"lock directory {locks} is not a directory (a symlink or a file)")
            _check_private(st, "lock directory", locks)
        except OSError as exc:
            # The directory may exist: what failed may be creating locks/ or a lock file in it.
            raise CacheError(f"cache directory {self.directory} is not writable: {exc.strerror or exc}") from None

    def lock(self, name: str, timeout: float) -> AbstractContextManager[object]:
        """An inter-process lock named ``name`` (a cache key or "file"); raises CacheError on timeout."""
        self.ensure_directory()
        import filelock

        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        path = os.path.join(self.directory, "locks", safe + ".lock")
        _prepare_lock_file(path)
        return _Lock(filelock.FileLock(path, timeout=timeout, mode=0o600))

    def update(self, change: Callable[[dict[str, Entry]], None], *, now: float, timeout: float = 10.0) -> None:
        """Re-read the file under the file lock, apply ``change``, drop expired entries, publish."""
        with self.lock("cache-file", timeout):
            self._sweep_temp_files()
            entries = self.read()
            change(entries)
            for key in [k for k, e in entries.items() if e.expires_at <= now]:
                del entries[key]
            publish(self.path, render_document(entries))

    def _sweep_temp_files(self) -> None:
        """Remove temp files of writers killed before their rename (kill -9, OOM, power loss).

        Only a writer holding the "cache-file" lock creates one, and the lock dies with its holder, so
        under that lock every temp file left is an orphan: it would otherwise keep a token on disk and
        eat the space the next write needs. Unlinking never follows a symlink.
        """
        prefix, suffix = FILE_NAME + ".", ".tmp"
        try:
            with os.scandir(self.directory) as names:
                orphans = [e.name for e in names if e.name.startswith(prefix) and e.name.endswith(suffix)]
        except OSError:
            return
        for name in orphans:
            _unlink_quietly(os.path.join(self.directory, name))

    def store(self, key: str, entry: Entry, *, now: float, timeout: float = 10.0) -> None:
        def change(entries: dict[str, Entry]) -> None:
            entries[key] = entry

        self.update(change, now=now, timeout=timeout)

    def add_host(self, key: str, host: str, *, now: float, timeout: float = 10.0) -> None:
        """Remember that the token under ``key`` was served for ``host`` (for `list`)."""

        def change(entries: dict[str, Entry]) -> None:
            entry = entries.get(key)
            if entry is not None and host not in entry.hosts:
                entry.hosts = (*entry.hosts, host)

        self.update(change, now=now, timeout=timeout)

    def clear(self) -> int:
        """Remove every entry; returns how many there were."""
        removed = 0

        def change(entries: dict[str, Entry]) -> None:
            nonlocal removed
            removed = len(entries)
            entries.clear()

        self.update(change, now=0.0)
        return removed


def publish(path: str, text: str) -> None:
    """Write ``text`` as a new 0600 file beside ``path``, fsync it, rename it over ``path``.

    The temp file is created with O_EXCL and O_NOFOLLOW (never through a planted symlink); on any
    failure it is removed and the old file is left as it was. Raises CacheError.
    """
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    except OSError as exc:
        raise CacheError(f"cache file {path} cannot be written: {exc.strerror}") from None
    try:
        try:
            data = text.encode("utf-8")
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise CacheError(f"cache file {path} cannot be written: {exc.strerror}") from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_directory(os.path.dirname(path))


def _prepare_lock_file(path: str) -> None:
    """Create or open the lock file without following a link, and check it is a private file of ours.

    filelock opens it with O_NOFOLLOW only in its recent versions; 3.19, the newest for Python 3.9,
    follows a symlink and truncates its target, and waits out its timeout on a file it cannot open.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK, 0o600)
    except OSError as exc:
        raise CacheError(f"cache lock cannot be taken: {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(st.st_mode):
        raise CacheError(f"cache lock cannot be taken: {path} is not a regular file")
    try:
        _check_private(st, "lock file", path)
    except CacheError as exc:
        raise CacheError(f"cache lock cannot be taken: {exc}") from None


class _Lock:
    """filelock's lock with its Timeout turned into CacheError (so callers catch one type)."""

    def __init__(self, lock: object) -> None:
        self._lock = lock

    def __enter__(self) -> object:
        import filelock

        try:
            return self._lock.__enter__()  # type: ignore[attr-defined]
        except filelock.Timeout:
            raise CacheError("timed out waiting for the cache lock") from None
        except OSError as exc:
            raise CacheError(f"cache lock cannot be taken: {exc.strerror}") from None

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)  # type: ignore[attr-defined]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(path: str) -> None:
    """Make the rename durable (a crash after it must not bring the old file back)."""
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
