"""The safe-file layer: each refusal of the trusted opener, and the atomic writer's crash behaviour.

Its callers (config, store, log, oidc, Docker's config.json) word the refusals for their users and are
tested in their own files; here is what the layer itself promises, whoever calls it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from docker_credential_ecr import safefile
from docker_credential_ecr.errors import StoreError
from docker_credential_ecr.safefile import RefusedError
from docker_credential_ecr.store import Store, Token

NOBODY = 65534
AS_ROOT = os.geteuid() == 0


def private(path: Path, text: str = "ours\n", mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def refused(path: Path, **kwargs: object) -> RefusedError:
    try:
        fd, _ = safefile.open_checked(str(path), **kwargs)  # type: ignore[arg-type]
    except RefusedError as exc:
        return exc
    os.close(fd)
    raise AssertionError(f"{path} was opened")


# -- the opener -------------------------------------------------------------------------------------
def test_a_regular_private_file_of_ours_opens_with_its_fstat(tmp_path: Path) -> None:
    path = private(tmp_path / "f")
    fd, st = safefile.open_checked(str(path))
    try:
        assert os.read(fd, 100) == b"ours\n"
        assert (st.st_ino, st.st_size) == (path.stat().st_ino, 5)
        assert os.get_inheritable(fd) is False  # O_CLOEXEC: no child process inherits it
    finally:
        os.close(fd)


def test_an_absent_file_is_the_systems_error_not_a_refusal(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        safefile.open_checked(str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError):
        safefile.read_checked(str(tmp_path / "absent"), 10)


@pytest.mark.parametrize("target_mode", [0o600, 0o666])
def test_a_symlink_is_refused_whatever_it_points_to(tmp_path: Path, target_mode: int) -> None:
    target = private(tmp_path / "target", mode=target_mode)
    link = tmp_path / "link"
    link.symlink_to(target)
    exc = refused(link)
    assert exc.reason == safefile.SYMLINK
    assert exc.errno == errno.ELOOP  # the open's own error, for callers that say it as the system does
    assert exc.st is None
    # nor created or written through when opened for writing
    exc = refused(link, flags=os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    assert exc.reason == safefile.SYMLINK
    assert target.read_text() == "ours\n"


def test_a_dangling_symlink_is_refused_not_created_through(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "would-be-created")
    assert refused(link, flags=os.O_WRONLY | os.O_CREAT).reason == safefile.SYMLINK
    assert not (tmp_path / "would-be-created").exists()


def test_a_symlink_in_the_directory_part_is_not_a_refusal(tmp_path: Path) -> None:
    """O_NOFOLLOW is about the last component only: a symlinked parent directory is the user's business."""
    (tmp_path / "real").mkdir()
    private(tmp_path / "real" / "f")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    fd, _ = safefile.open_checked(str(tmp_path / "alias" / "f"))
    os.close(fd)


def test_following_links_checks_what_the_link_leads_to(tmp_path: Path) -> None:
    target = private(tmp_path / "target", mode=0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    assert safefile.read_checked(str(link), 100, follow_links=True) == b"ours\n"
    target.chmod(0o646)
    assert refused(link, follow_links=True).reason == safefile.REFUSED_MODE
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "to-fifo").symlink_to(fifo)
    assert refused(tmp_path / "to-fifo", follow_links=True).reason == safefile.NOT_REGULAR  # and no hang


def test_a_fifo_neither_blocks_nor_passes(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    exc = refused(fifo)  # for reading: the open returns at once (no writer needed), the type check refuses
    assert exc.reason == safefile.NOT_REGULAR
    assert exc.st is not None
    assert stat.S_ISFIFO(exc.st.st_mode)
    exc = refused(fifo, flags=os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # for writing: ENXIO at once
    assert exc.reason == safefile.NOT_REGULAR


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o700)
    assert refused(tmp_path / "d").reason == safefile.NOT_REGULAR


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666, 0o660])
def test_a_file_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = private(tmp_path / "f", mode=mode)
    exc = refused(path)
    assert exc.reason == safefile.REFUSED_MODE
    assert exc.st is not None
    assert stat.S_IMODE(exc.st.st_mode) == mode
    fd, _ = safefile.open_checked(str(path), refused_modes=0)  # a caller that sets the mode itself (the log)
    os.close(fd)


def test_refused_modes_is_what_the_caller_says(tmp_path: Path) -> None:
    path = private(tmp_path / "f", mode=0o620)
    fd, _ = safefile.open_checked(str(path), refused_modes=stat.S_IWOTH)  # group-writable allowed
    os.close(fd)
    path.chmod(0o602)
    assert refused(path, refused_modes=stat.S_IWOTH).reason == safefile.REFUSED_MODE


@pytest.mark.skipif(not AS_ROOT, reason="chown to another user needs root")
def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = private(tmp_path / "f")
    os.chown(path, NOBODY, NOBODY)
    exc = refused(path)
    assert exc.reason == safefile.OTHER_OWNER
    assert exc.st is not None
    assert exc.st.st_uid == NOBODY
    assert refused(path, follow_links=True).reason == safefile.OTHER_OWNER
    # the type is checked first: another user's FIFO is "not a regular file", not "another owner"
    os.mkfifo(tmp_path / "fifo", 0o600)
    os.chown(tmp_path / "fifo", NOBODY, NOBODY)
    assert refused(tmp_path / "fifo").reason == safefile.NOT_REGULAR


# Appended to safefile's own source: run as another uid, which cannot reach the installed package.
CHILD = """
import json
out = {}
for label, name, kwargs in [
    ("root's, root_may_own=True", "root", {"root_may_own": True}),
    ("root's, by default", "root", {}),
    ("own, group-writable", "own-0620", {}),
    ("own, group-writable, S_IWOTH refused", "own-0620", {"refused_modes": stat.S_IWOTH}),
    ("own, private", "own-0600", {}),
]:
    try:
        fd, st = open_checked(os.path.join(sys.argv[1], name), **kwargs)
        os.close(fd)
        out[label] = "opened"
    except RefusedError as exc:
        out[label] = exc.reason
print(json.dumps(out))
"""


@pytest.mark.skipif(not AS_ROOT, reason="runs a child as another uid: needs root")
def test_as_another_user_roots_files_are_trusted_only_where_the_caller_says() -> None:
    """Run as uid 65534 (setpriv): root's file is trusted (as ssh trusts it) where the caller says so."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None or shutil.which("setpriv") is None:
        pytest.skip("needs /usr/bin/python3 and setpriv")
    code = Path(safefile.__file__).read_text() + "\nimport sys\n" + CHILD
    # a directory every uid can reach (pytest's tmp directories are closed to others)
    directory = Path(tempfile.mkdtemp(prefix="safefile-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        directory.chmod(0o755)
        private(directory / "root", mode=0o644)
        for name, mode in (("own-0620", 0o620), ("own-0600", 0o600)):
            private(directory / name, mode=mode)
            os.chown(directory / name, NOBODY, NOBODY)
        proc = subprocess.run(
            [
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                "--",
                python,
                "-I",
                "-c",
                code,
                str(directory),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(directory)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "root's, root_may_own=True": "opened",
        "root's, by default": safefile.OTHER_OWNER,  # the stricter choice unless the caller says
        "own, group-writable": safefile.REFUSED_MODE,
        "own, group-writable, S_IWOTH refused": "opened",
        "own, private": "opened",
    }


def test_a_file_replaced_after_the_open_is_judged_by_what_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is on the descriptor (fstat), not the path: swapping the path after the open changes nothing."""
    path = private(tmp_path / "f")
    real_open = os.open

    def open_then_swap(p: str, flags: int, mode: int = 0o777) -> int:
        fd = real_open(p, flags, mode)
        os.rename(p, str(tmp_path / "opened"))
        private(tmp_path / "f", "planted\n", mode=0o666)
        return fd

    monkeypatch.setattr(os, "open", open_then_swap)
    fd, st = safefile.open_checked(str(path))
    monkeypatch.undo()
    try:
        assert os.read(fd, 100) == b"ours\n"
        assert st.st_ino == (tmp_path / "opened").stat().st_ino
    finally:
        os.close(fd)


def test_a_descriptor_is_closed_when_the_check_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = private(tmp_path / "f", mode=0o666)
    opened: list[int] = []
    real_open = os.open

    def record(p: str, flags: int, mode: int = 0o777) -> int:
        opened.append(real_open(p, flags, mode))
        return opened[-1]

    monkeypatch.setattr(os, "open", record)
    refused(path)

    def fstat_fails(fd: int) -> os.stat_result:
        raise OSError(5, "Input/output error")

    path.chmod(0o600)
    monkeypatch.setattr(os, "fstat", fstat_fails)
    with pytest.raises(OSError, match="Input/output error"):
        safefile.open_checked(str(path))
    monkeypatch.undo()
    assert len(opened) == 2
    for fd in opened:
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)  # closed


def test_an_unrelated_open_error_stays_the_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ELOOP from a path that is no symlink (too many links in a parent) is not called a symlink."""

    def loop(p: str, flags: int, mode: int = 0o777) -> int:
        raise OSError(errno.ELOOP, "Too many levels of symbolic links")

    monkeypatch.setattr(os, "open", loop)
    with pytest.raises(OSError, match="Too many levels") as info:
        safefile.open_checked(str(tmp_path / "f"))
    assert not isinstance(info.value, RefusedError)


def test_blocking_is_the_callers_choice(tmp_path: Path) -> None:
    import fcntl

    path = private(tmp_path / "f")
    for block, expected in ((False, os.O_NONBLOCK), (True, 0)):
        fd, _ = safefile.open_checked(str(path), block=block)
        try:
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK == expected
        finally:
            os.close(fd)


# -- directories ------------------------------------------------------------------------------------
def test_a_private_directory_of_ours_passes(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o700)
    assert safefile.check_directory(str(tmp_path / "d")).st_ino == (tmp_path / "d").stat().st_ino
    (tmp_path / "d").chmod(0o755)  # readable by others is the caller's business (the store closes it)
    safefile.check_directory(str(tmp_path / "d"))


def test_a_symlink_to_a_directory_or_a_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    private(tmp_path / "file")
    for name in ("link", "file"):
        with pytest.raises(RefusedError) as info:
            safefile.check_directory(str(tmp_path / name))
        assert info.value.reason == safefile.NOT_DIRECTORY
    with pytest.raises(FileNotFoundError):
        safefile.check_directory(str(tmp_path / "absent"))


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d").chmod(mode)
    with pytest.raises(RefusedError) as info:
        safefile.check_directory(str(tmp_path / "d"))
    assert info.value.reason == safefile.REFUSED_MODE


@pytest.mark.skipif(not AS_ROOT, reason="chown to another user needs root")
def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o700)
    os.chown(tmp_path / "d", NOBODY, NOBODY)
    with pytest.raises(RefusedError) as info:
        safefile.check_directory(str(tmp_path / "d"), root_may_own=True)
    assert info.value.reason == safefile.OTHER_OWNER


# -- bounded reads ----------------------------------------------------------------------------------
def test_a_file_larger_than_its_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    path.chmod(0o600)
    assert safefile.read_checked(str(path), 100) == b"x" * 100  # the bound itself is fine
    with pytest.raises(RefusedError) as info:
        safefile.read_checked(str(path), 99)
    assert info.value.reason == safefile.TOO_LARGE
    assert info.value.st is not None
    assert info.value.st.st_size == 100


def test_read_at_most_reads_short_reads_to_the_end_and_no_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    real_read = os.read
    sizes: list[int] = []

    def short(fd: int, n: int) -> bytes:
        sizes.append(n)
        return real_read(fd, min(n, 3))  # a pipe-like or network file system: short reads

    monkeypatch.setattr(os, "read", short)
    with open(path, "rb") as f:
        assert safefile.read_at_most(f.fileno(), 20) == b"0123456789"
    with open(path, "rb") as f:
        assert safefile.read_at_most(f.fileno(), 4) == b"01234"  # the bound plus one: "larger" is seen
    assert max(sizes) <= 21


# -- the atomic writer ------------------------------------------------------------------------------
@pytest.fixture
def d(tmp_path: Path) -> Path:
    """A directory of the writer's files alone (tmp_path holds the sealed HOME too)."""
    path = tmp_path / "w"
    path.mkdir()
    return path


def test_a_new_file_gets_the_mode_asked_for_whatever_the_umask(d: Path) -> None:
    old = os.umask(0o077)
    try:
        safefile.write_atomically(str(d / "a"), b"A", mode=0o644)
    finally:
        os.umask(old)
    old = os.umask(0o000)
    try:
        safefile.write_atomically(str(d / "b"), b"B")
    finally:
        os.umask(old)
    assert stat.S_IMODE((d / "a").stat().st_mode) == 0o644
    assert stat.S_IMODE((d / "b").stat().st_mode) == 0o600  # the default: private
    assert (d / "a").read_bytes() == b"A"
    assert sorted(p.name for p in d.iterdir()) == ["a", "b"]


def test_a_rewrite_replaces_the_file_as_a_whole(d: Path) -> None:
    path = d / "f"
    safefile.write_atomically(str(path), b"old " * 1000)
    before = path.stat().st_ino
    safefile.write_atomically(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_ino != before  # a new file renamed over: a reader holding the old one keeps it whole


@pytest.mark.skipif(not AS_ROOT, reason="chown needs root")
def test_the_owner_asked_for_is_given(d: Path) -> None:
    safefile.write_atomically(str(d / "f"), b"x", mode=0o640, owner=(NOBODY, NOBODY))
    st = (d / "f").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o640)


def test_the_temp_file_is_named_for_a_sweep(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names: list[str] = []
    real_open = os.open

    def record(p: str, flags: int, mode: int = 0o777) -> int:
        names.append(os.path.basename(p))
        return real_open(p, flags, mode)

    monkeypatch.setattr(os, "open", record)
    safefile.write_atomically(str(d / "cache.json"), b"{}")
    safefile.write_atomically(str(d / "config.json"), b"{}", temp_prefix=".config.json.")
    temps = [n for n in names if n.endswith(".tmp")]
    assert temps[0].startswith(f"cache.json.{os.getpid()}.")
    assert temps[1].startswith(f".config.json.{os.getpid()}.")


def test_a_planted_symlink_at_the_temp_name_is_never_written_through(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = private(d / "victim", "theirs\n", mode=0o644)
    monkeypatch.setattr(os, "urandom", lambda n: b"\0" * n)  # the temp name, predicted
    (d / f"f.{os.getpid()}.00000000.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        safefile.write_atomically(str(d / "f"), b"secret")
    assert victim.read_text() == "theirs\n"
    assert not (d / "f").exists()


def test_a_failed_write_keeps_the_old_file_and_no_temp(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = d / "f"
    safefile.write_atomically(str(path), b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        safefile.write_atomically(str(path), b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in d.iterdir()] == ["f"]


def test_before_replace_can_keep_the_old_file(d: Path) -> None:
    path = d / "f"
    safefile.write_atomically(str(path), b"old")
    seen: list[bytes] = []

    class Changed(Exception):
        pass

    def check() -> None:
        seen.append(path.read_bytes())  # runs with the new content written and synced, not yet in place
        assert any(p.name.endswith(".tmp") and p.read_bytes() == b"new" for p in d.iterdir())
        raise Changed

    with pytest.raises(Changed):
        safefile.write_atomically(str(path), b"new", before_replace=check)
    assert seen == [b"old"]
    assert path.read_bytes() == b"old"
    assert [p.name for p in d.iterdir()] == ["f"]


def test_the_rename_is_made_durable(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    safefile.write_atomically(str(d / "f"), b"x")
    monkeypatch.undo()
    assert synced == [(d / "f").stat().st_ino, d.stat().st_ino]  # the file, then its directory


KILLED_WRITER = """
import os, signal, sys
from docker_credential_ecr import safefile
def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[2] == "fsync":
    os.fsync = die
safefile.write_atomically(sys.argv[1], b"new " * 50000, before_replace=die)
"""


@pytest.mark.parametrize("where", ["fsync", "rename"])
def test_a_writer_killed_before_its_rename_leaves_the_old_file_whole(d: Path, where: str) -> None:
    """kill -9 (an OOM kill, a power cut) before the rename: the old file is intact, the orphan temp file
    is named ``<name>.<pid>.<random>.tmp`` (what the store's sweep removes under the file's lock)."""
    path = d / "cache.json"
    safefile.write_atomically(str(path), b"old")
    writer = subprocess.Popen([sys.executable, "-I", "-c", KILLED_WRITER, str(path), where], cwd=d)
    assert writer.wait(timeout=60) == -signal.SIGKILL
    assert path.read_bytes() == b"old"
    orphans = [p for p in d.iterdir() if p.name != "cache.json"]
    assert len(orphans) == 1
    assert orphans[0].name.startswith(f"cache.json.{writer.pid}.")
    assert orphans[0].name.endswith(".tmp")
    assert stat.S_IMODE(orphans[0].stat().st_mode) == 0o600  # a secret left behind is private still
    if where == "rename":
        assert orphans[0].stat().st_size == len(b"new " * 50000)  # written, synced, just not in place


def test_unlink_quietly_never_follows_a_link(d: Path) -> None:
    victim = private(d / "victim")
    (d / "link").symlink_to(victim)
    safefile.unlink_quietly(str(d / "link"))
    safefile.unlink_quietly(str(d / "absent"))
    assert victim.read_text() == "ours\n"
    assert not (d / "link").is_symlink()


# -- how the store words what the layer refuses ------------------------------------------------------
def test_the_store_says_a_planted_link_or_an_unopenable_file_cannot_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path / "c"))
    store.ensure_directory()
    cache = tmp_path / "c" / "cache.json"
    cache.symlink_to(private(tmp_path / "elsewhere", "{}"))
    with pytest.raises(StoreError) as info:
        store.tokens()
    assert str(info.value) == f"cache file {cache} cannot be opened: {os.strerror(errno.ELOOP)}"
    cache.unlink()
    private(cache, "{}")
    real_open = os.open

    def denied(path: str, flags: int, mode: int = 0o777) -> int:
        if path == str(cache):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(StoreError) as info:
        store.tokens()
    assert str(info.value) == f"cache file {cache} cannot be opened: Permission denied"


def test_the_store_refuses_planted_lock_files_in_its_own_words(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "c"))
    store.ensure_directory()
    lock = tmp_path / "c" / "locks" / "cache-file.lock"
    victim = private(tmp_path / "victim", "theirs\n", mode=0o644)
    lock.symlink_to(victim)
    with pytest.raises(StoreError) as info:
        store.put_token("k", Token(username="AWS", password="pw", issued_at=1.0, expires_at=4e9), now=2.0)
    assert str(info.value) == f"cache lock cannot be taken: {lock}: {os.strerror(errno.ELOOP)}"
    assert victim.read_text() == "theirs\n"
    lock.unlink()
    private(lock, "", mode=0o660)
    with pytest.raises(StoreError) as info:
        store.put_token("k", Token(username="AWS", password="pw", issued_at=1.0, expires_at=4e9), now=2.0)
    assert str(info.value) == f"cache lock cannot be taken: lock file {lock} is writable by other users"
    if AS_ROOT:
        lock.chmod(0o600)
        os.chown(lock, NOBODY, NOBODY)
        with pytest.raises(StoreError) as info:
            store.put_token("k", Token(username="AWS", password="pw", issued_at=1.0, expires_at=4e9), now=2.0)
        assert str(info.value) == f"cache lock cannot be taken: lock file {lock} belongs to another user (uid {NOBODY})"
        locks = tmp_path / "c" / "locks"
        os.chown(locks, NOBODY, NOBODY)
        with pytest.raises(StoreError) as info:
            store.ensure_directory()
        assert str(info.value) == f"lock directory {locks} belongs to another user (uid {NOBODY})"
    assert not (tmp_path / "c" / "cache.json").exists()


# -- its place on the hot path ----------------------------------------------------------------------
def test_importing_it_imports_nothing_beyond_os_and_stat(tmp_path: Path) -> None:
    code = (
        "import sys; before = set(sys.modules); import docker_credential_ecr.safefile; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=True
    )
    assert set(proc.stdout.split()) <= {
        "__future__",  # for its annotations, as every module of the package
        "docker_credential_ecr",
        "docker_credential_ecr._version",
        "docker_credential_ecr.safefile",
    }, proc.stdout
