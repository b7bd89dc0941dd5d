"""The store's inter-process locks: one file per lock in the store's ``locks/`` directory, through
``filelock`` (imported only here, so only by writes and misses: never by a cache hit).

A lock file is another file someone may have planted: it is created or opened by :mod:`safefile`'s
opener (no symlink followed, no FIFO waited on, ours alone) before ``filelock`` touches it, because
``filelock`` opens it with ``O_NOFOLLOW`` only in its recent versions: 3.19, the newest for Python 3.9,
follows a symlink and truncates its target, and waits out its timeout on a file it cannot open.
Every wait is bounded by the caller (:func:`store.lock_wait`); a wait that runs out is
:class:`StoreBusyError`, any other failure :class:`StoreError`: the caller goes on without the store.
"""

from __future__ import annotations

import os

from docker_credential_ecr import safefile
from docker_credential_ecr.errors import StoreBusyError, StoreError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextlib import AbstractContextManager


def lock(directory: str, name: str, timeout: float) -> AbstractContextManager[object]:
    """The lock named ``name`` (a token key, or a file's) in ``directory`` (the store's ``locks/``,
    already checked), to be entered; entering waits at most ``timeout`` seconds."""
    import filelock

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = os.path.join(directory, safe + ".lock")
    prepare_lock_file(path)
    return _Lock(filelock.FileLock(path, timeout=timeout, mode=0o600), name, timeout)


def prepare_lock_file(path: str) -> None:
    """Create or open the lock file without following a link, and check it is a private file of ours."""
    try:
        fd, _ = safefile.open_checked(path, os.O_RDWR | os.O_CREAT)
    except safefile.RefusedError as exc:
        raise StoreError(f"cache lock cannot be taken: {_refusal(path, exc)}") from None
    except OSError as exc:
        raise StoreError(f"cache lock cannot be taken: {path}: {exc.strerror}") from None
    os.close(fd)


def _refusal(path: str, exc: safefile.RefusedError) -> str:
    if exc.reason == safefile.SYMLINK:  # as the system says it (ELOOP)
        return f"{path}: {exc.strerror}"
    if exc.reason == safefile.OTHER_OWNER and exc.st is not None:
        return f"lock file {path} belongs to another user (uid {exc.st.st_uid})"
    if exc.reason == safefile.REFUSED_MODE:
        return f"lock file {path} is writable by other users"
    return f"{path} is not a regular file"


class _Lock:
    """filelock's lock with its Timeout turned into StoreBusyError (so callers catch one type)."""

    def __init__(self, lock: object, name: str, timeout: float) -> None:
        self._lock = lock
        self._name = name
        self._timeout = timeout

    def __enter__(self) -> object:
        import filelock

        try:
            return self._lock.__enter__()  # type: ignore[attr-defined]
        except filelock.Timeout:
            raise StoreBusyError(f"gave up waiting {self._timeout:.1f} s for the {self._name} lock") from None
        except OSError as exc:
            raise StoreError(f"cache lock cannot be taken: {exc.strerror}") from None

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(*exc)  # type: ignore[attr-defined]
