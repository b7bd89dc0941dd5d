"""Files another user may have planted: opened only once known to be ours, written only atomically.

Every file this helper reads or writes (its config file, the store's files and locks, the log, a CI's
token file) sits at a path someone else may have prepared: a symlink to a file of theirs or of ours, a
FIFO that stalls the open, a file of theirs that they can still change. :func:`open_checked` is the one
way in: it opens without following a symlink (unless asked to: a Kubernetes projected token *is* a
symlink), without blocking on a FIFO, then ``fstat``\\s the descriptor it got (not the path, which may
have changed since) and refuses what is not a regular file, belongs to another user, or has a refused
mode bit. What it refuses is a :class:`RefusedError` naming the reason; each caller words it for its
user. :func:`read_at_most` reads a bounded amount: a file larger than its bound is not one of ours.

:func:`write_atomically` is the one writer: a new file beside the target (``O_EXCL|O_NOFOLLOW``, never
through a planted link), fsync, a check of the caller's, ``os.replace``, fsync of the directory. A
reader sees the old file or the new one, never half of one; on any failure the temp file is removed
and the old file is left as it was.

:func:`check_directory` holds a directory to the same rules (the store's, the log's).

On the hot path (every cache hit reads the token file through here): imports ``os`` and ``stat`` only
(``errno`` when an open fails for another reason than a missing file).
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Why a file was refused (:attr:`RefusedError.reason`).
SYMLINK = "symlink"
NOT_REGULAR = "not a regular file"
NOT_DIRECTORY = "not a directory"
OTHER_OWNER = "another owner"
REFUSED_MODE = "refused mode"
TOO_LARGE = "too large"

GROUP_OR_WORLD_WRITABLE = stat.S_IWGRP | stat.S_IWOTH
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# A FIFO opened for reading blocks until a writer comes (for writing: fails with ENXIO at once).
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class RefusedError(OSError):
    """The path names something not to be trusted. ``reason`` is one of this module's reasons; ``st`` is
    the opened file's ``fstat`` (None when nothing was opened). A symlink keeps the open's errno/strerror.
    """

    def __init__(
        self, reason: str, path: str, st: os.stat_result | None = None, code: int = 0, strerror: str = ""
    ) -> None:
        super().__init__(code, strerror or reason, path)
        self.reason = reason
        self.st = st


def refusal(
    st: os.stat_result, *, root_may_own: bool = False, refused_modes: int = GROUP_OR_WORLD_WRITABLE
) -> str | None:
    """Why a file with this ``fstat`` is not to be trusted (one of the reasons), or None. The order is
    fixed: the type first, then the owner (this user; root too when ``root_may_own``, as ssh trusts
    root's files: every check here defaults to the stricter choice), then the mode."""
    if not stat.S_ISREG(st.st_mode):
        return NOT_REGULAR
    return _owner_or_mode(st, root_may_own, refused_modes)


def _owner_or_mode(st: os.stat_result, root_may_own: bool, refused_modes: int) -> str | None:
    if st.st_uid != os.geteuid() and not (root_may_own and st.st_uid == 0):
        return OTHER_OWNER
    if st.st_mode & refused_modes:
        return REFUSED_MODE
    return None


def check_directory(
    path: str, *, root_may_own: bool = False, refused_modes: int = GROUP_OR_WORLD_WRITABLE
) -> os.stat_result:
    """The ``lstat`` of ``path`` once it is a directory itself (a symlink to one is refused: whoever
    can change the link chooses where files go) of the right owner, without a refused mode bit: so
    nobody else can put a link or a FIFO in it. Raises RefusedError (:data:`NOT_DIRECTORY`, ...) or
    the system's OSError."""
    st = os.lstat(path)
    reason = NOT_DIRECTORY if not stat.S_ISDIR(st.st_mode) else _owner_or_mode(st, root_may_own, refused_modes)
    if reason is not None:
        raise RefusedError(reason, path, st)
    return st


def open_checked(
    path: str,
    flags: int = os.O_RDONLY,
    *,
    follow_links: bool = False,
    root_may_own: bool = False,
    refused_modes: int = GROUP_OR_WORLD_WRITABLE,
    create_mode: int = 0o600,
    block: bool = False,
) -> tuple[int, os.stat_result]:
    """A descriptor of ``path`` (opened with ``flags``, plus ``O_CLOEXEC``) and its ``fstat``, once the
    file it names is a regular file of the right owner without a refused mode bit.

    ``O_NOFOLLOW`` unless ``follow_links``; ``O_NONBLOCK`` unless ``block`` (so a FIFO cannot stall the
    open: for reading the open succeeds and the type check refuses it, for writing the open fails with
    ENXIO, refused the same way). ``create_mode`` is for ``O_CREAT``. Raises :class:`RefusedError`, or
    the open's own OSError (FileNotFoundError and friends, as the system says).
    """
    flags |= _CLOEXEC
    if not follow_links:
        flags |= _NOFOLLOW
    if not block:
        flags |= _NONBLOCK
    try:
        fd = os.open(path, flags, create_mode)
    except FileNotFoundError:  # the usual case (no config file): no errno import on the hot path
        raise
    except OSError as exc:
        import errno

        # ELOOP on Linux, EMLINK on FreeBSD; a path that merely has too many links in it is no symlink.
        if not follow_links and exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise RefusedError(SYMLINK, path, None, exc.errno, exc.strerror or "") from None
        if exc.errno == errno.ENXIO:  # a FIFO with nobody reading, a socket, a device without a driver
            raise RefusedError(NOT_REGULAR, path) from None
        raise
    try:
        st = os.fstat(fd)
        reason = refusal(st, root_may_own=root_may_own, refused_modes=refused_modes)
    except BaseException:
        os.close(fd)
        raise
    if reason is not None:
        os.close(fd)
        raise RefusedError(reason, path, st)
    return fd, st


_CHUNK = 1 << 16


def read_at_most(fd: int, limit: int) -> bytes:
    """Up to ``limit`` + 1 bytes from ``fd`` (one more than allowed: a caller sees a larger file as such)."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        # 64 KiB at most per read: a buffer of the whole limit (MiBs) would be mapped and unmapped
        # by the allocator on every hit, for a file of a few kB.
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_checked(
    path: str,
    limit: int,
    *,
    follow_links: bool = False,
    root_may_own: bool = False,
    refused_modes: int = GROUP_OR_WORLD_WRITABLE,
) -> bytes:
    """The content of ``path``, opened read-only through :func:`open_checked` (same keywords); a file
    larger than ``limit`` bytes is refused (:data:`TOO_LARGE`). Raises RefusedError or the system's OSError."""
    fd, st = open_checked(path, follow_links=follow_links, root_may_own=root_may_own, refused_modes=refused_modes)
    try:
        data = read_at_most(fd, limit)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise RefusedError(TOO_LARGE, path, st)
    return data


def write_atomically(
    path: str,
    data: bytes,
    *,
    mode: int = 0o600,
    owner: tuple[int, int] | None = None,
    temp_prefix: str | None = None,
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Make ``data`` the content of ``path``: a new file in the same directory (named ``temp_prefix``,
    default ``<name>.``, then ``<pid>.<random>.tmp``, so a writer killed before its rename leaves a
    file that can be found and swept), ``mode`` (whatever the umask) and ``owner`` (uid, gid) if given,
    written, fsynced, ``before_replace()`` (which may raise to keep the old file), renamed over
    ``path``, then the directory fsynced (best effort: the rename is done).

    The temp file is created with ``O_EXCL|O_NOFOLLOW``: never through a planted symlink. On any
    failure (an OSError, what ``before_replace`` raises, an interrupt) it is removed and ``path`` is
    as it was; the exception goes on.
    """
    directory, name = os.path.split(path)
    prefix = f"{name}." if temp_prefix is None else temp_prefix
    tmp = os.path.join(directory, f"{prefix}{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_directory(directory or ".")


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it can be (never following a symlink: unlink removes the link itself)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_directory(path: str) -> None:
    """Make a rename in ``path`` durable (a crash after it must not bring the old file back); best effort."""
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
