"""A hostile cache directory: symlinks, hard links, other owners, group- or world-writable modes,
FIFOs. The helper refuses the cache (one stderr line per process saying why), still answers with a
token from the fake, and never writes, truncates, chmods or creates anything through what it refused.

Tests run as root (as in CI), which bypasses permissions: "another user" is uid 65534 via chown.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fakeecr import FakeAWS
from reliability import NOBODY, answer, cache_file, read_cache, run, snapshot, stderr_lines, temp_files
from support import helper_env

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
VICTIM_BYTES = b"another user's file: must never change\n"


class Stage:
    """The test's directories: the helper's cache directory and another user's directory and file."""

    def __init__(self, tmp_path: Path, env: dict[str, str], fake: FakeAWS) -> None:
        self.env, self.fake = env, fake
        self.cache = Path(env["AWS_ECR_CACHE_DIR"])
        self.file = self.cache / "cache.json"
        self.victim_dir = tmp_path / "victim"
        self.victim_dir.mkdir(mode=0o755)
        self.victim = self.victim_dir / "data"
        self.victim.write_bytes(VICTIM_BYTES)
        self.victim.chmod(0o644)
        os.chown(self.victim, NOBODY, NOBODY)
        os.chown(self.victim_dir, NOBODY, NOBODY)
        self.own_dir = tmp_path / "elsewhere"
        self.own_dir.mkdir(mode=0o700)

    def warm(self) -> str:
        """A cached token for HOST, made by the helper itself; returns its password."""
        return answer(run(self.env, "get", HOST, fake=self.fake))["Secret"]


def _dir_symlink_to_own_dir(s: Stage) -> None:
    s.cache.symlink_to(s.own_dir)


def _dir_symlink_to_other_user(s: Stage) -> None:
    s.cache.symlink_to(s.victim_dir)


def _file_symlink_to_other_user(s: Stage) -> None:
    s.cache.mkdir(mode=0o700)
    s.file.symlink_to(s.victim)


def _file_hardlink_to_other_user(s: Stage) -> None:
    s.cache.mkdir(mode=0o700)
    os.link(s.victim, s.file)


def _dir_owned_by_other_user(s: Stage) -> None:
    s.cache.mkdir(mode=0o700)
    os.chown(s.cache, NOBODY, NOBODY)


def _dir_mode(mode: int) -> Callable[[Stage], None]:
    def setup(s: Stage) -> None:
        s.warm()
        s.cache.chmod(mode)

    return setup


def _file_mode_0666(s: Stage) -> None:
    s.warm()  # a valid token for this very principal: it must not be served from a file others can write
    s.file.chmod(0o666)


def _file_owned_by_other_user(s: Stage) -> None:
    s.warm()
    os.chown(s.file, NOBODY, NOBODY)


def _file_is_a_fifo(s: Stage) -> None:
    s.cache.mkdir(mode=0o700)
    os.mkfifo(s.file, 0o600)


def _file_is_a_directory(s: Stage) -> None:
    s.cache.mkdir(mode=0o700)
    s.file.mkdir(mode=0o700)


def _dir_is_a_file(s: Stage) -> None:
    s.cache.write_bytes(b"not a directory\n")
    s.cache.chmod(0o600)


def _locks_symlink_to_other_user(s: Stage) -> None:
    s.warm()
    for lock in (s.cache / "locks").iterdir():
        lock.unlink()
    (s.cache / "locks").rmdir()
    (s.cache / "locks").symlink_to(s.victim_dir)
    s.file.unlink()  # a miss, which needs the lock


def _lock_files_symlink_to_other_user(s: Stage) -> None:
    s.warm()
    locks = list((s.cache / "locks").iterdir())
    assert len(locks) == 2  # the token's lock and the cache file's
    for lock in locks:
        lock.unlink()
        lock.symlink_to(s.victim)
    s.file.unlink()


# name: (setup, what the one stderr line says)
REFUSED: dict[str, tuple[Callable[[Stage], None], str]] = {
    "cache-dir-symlink-to-own-dir": (_dir_symlink_to_own_dir, "is not a directory (a symlink or a file)"),
    "cache-dir-symlink-to-other-user": (_dir_symlink_to_other_user, "is not a directory (a symlink or a file)"),
    "cache-file-symlink-to-other-user": (_file_symlink_to_other_user, "cannot be opened"),
    "cache-file-hardlink-to-other-user": (_file_hardlink_to_other_user, f"belongs to another user (uid {NOBODY})"),
    "cache-dir-owned-by-other-user": (_dir_owned_by_other_user, f"belongs to another user (uid {NOBODY})"),
    "cache-dir-mode-0777": (_dir_mode(0o777), "is writable by other users"),
    "cache-dir-mode-0770": (_dir_mode(0o770), "is writable by other users"),
    "cache-dir-mode-1777": (_dir_mode(0o1777), "is writable by other users"),
    "cache-file-mode-0666": (_file_mode_0666, "is writable by other users"),
    "cache-file-owned-by-other-user": (_file_owned_by_other_user, f"belongs to another user (uid {NOBODY})"),
    "cache-file-is-a-fifo": (_file_is_a_fifo, "is not a regular file"),
    "cache-file-is-a-directory": (_file_is_a_directory, "is not a regular file"),
    "cache-dir-is-a-file": (_dir_is_a_file, "is not a directory"),
    "locks-dir-symlink-to-other-user": (_locks_symlink_to_other_user, "lock directory"),
    "lock-files-symlink-to-other-user": (_lock_files_symlink_to_other_user, "cache lock cannot be taken"),
}


@pytest.fixture
def stage(tmp_path: Path, fake: FakeAWS) -> Stage:
    return Stage(tmp_path, helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="10"), fake)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
@pytest.mark.parametrize("case", list(REFUSED))
def test_hostile_cache_is_refused_once_and_never_written_through(stage: Stage, case: str) -> None:
    setup, reason = REFUSED[case]
    setup(stage)
    before_cache = snapshot(stage.cache) if stage.cache.is_dir() and not stage.cache.is_symlink() else None
    before_victim, before_own = snapshot(stage.victim_dir), snapshot(stage.own_dir)
    calls = stage.fake.calls()

    for i in range(2):  # every process says it, once
        started = time.monotonic()
        proc = run(stage.env, "get", HOST, timeout=30, label=f"hostile {case}")
        assert time.monotonic() - started < 15, "a hostile cache must never hang get"
        assert answer(proc)["Secret"] == stage.fake.issued[-1]  # fetched now, not read from what was refused
        lines = stderr_lines(proc)
        assert len(lines) == 1, lines
        assert reason in lines[0], lines
        assert stage.fake.calls() == calls + i + 1

    assert snapshot(stage.victim_dir) == before_victim, "another user's files changed"
    assert snapshot(stage.own_dir) == before_own, "the symlink target was written"
    assert stage.victim.read_bytes() == VICTIM_BYTES
    if before_cache is not None:  # no chmod, no new file, no lock file: nothing at all
        assert snapshot(stage.cache) == before_cache, "a refused cache directory was modified"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_planted_temp_file_symlink_is_swept_without_touching_its_target(stage: Stage) -> None:
    """A symlink that looks like our temp file is removed by the sweep; its target is left alone."""
    stage.warm()
    planted = stage.cache / "cache.json.4242.deadbeef.tmp"
    planted.symlink_to(stage.victim)
    before = snapshot(stage.victim_dir)
    other = HOST.replace("us-east-1", "eu-west-1")
    proc = run(stage.env, "get", other, label="planted temp symlink")  # a miss: writes the cache
    answer(proc)
    assert proc.stderr == ""
    assert not planted.is_symlink()
    assert temp_files(stage.cache) == []
    assert snapshot(stage.victim_dir) == before
    assert len(read_cache(stage.env)) == 2


def test_cache_dir_open_to_readers_is_tightened_silently(stage: Stage) -> None:
    """0755 and ours is safe to use (no one else can write); the helper closes it to readers on write."""
    stage.cache.mkdir(mode=0o755)
    stage.cache.chmod(0o755)
    answer(proc := run(stage.env, "get", HOST, fake=stage.fake))
    assert proc.stderr == ""
    assert stat.S_IMODE(stage.cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(stage.file.stat().st_mode) == 0o600
    assert stat.S_IMODE((stage.cache / "locks").stat().st_mode) == 0o700
    for lock in (stage.cache / "locks").iterdir():
        assert stat.S_IMODE(lock.stat().st_mode) & 0o077 == 0, lock


def test_symlinked_parent_of_the_cache_dir_is_fine(stage: Stage, tmp_path: Path) -> None:
    """Only the cache directory itself must not be a link: ~/.cache -> /data/cache is ordinary."""
    (tmp_path / "real-parent").mkdir()
    (tmp_path / "linked-parent").symlink_to(tmp_path / "real-parent")
    env = {**stage.env, "AWS_ECR_CACHE_DIR": str(tmp_path / "linked-parent" / "cache")}
    answer(proc := run(env, "get", HOST, fake=stage.fake))
    assert proc.stderr == ""
    calls = stage.fake.calls()
    answer(run(env, "get", HOST))
    assert stage.fake.calls() == calls
    assert cache_file(env).is_file()


def _config_with_role(stage: Stage, tmp_path: Path) -> None:
    """A helper config file (old enough for its parsed copy to be kept) assuming a role for HOST."""
    config = tmp_path / "helper.toml"
    config.write_text('[[registry]]\nmatch = "123456789012"\nrole_arn = "arn:aws:iam::123456789012:role/pull"\n')
    old = time.time() - 60
    os.utime(config, (old, old))
    stage.env["DOCKER_CREDENTIAL_ECR_CONFIG"] = str(config)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
@pytest.mark.parametrize(
    "case", ["cache-dir-symlink-to-other-user", "cache-dir-owned-by-other-user", "cache-dir-mode-0777"]
)
def test_config_copy_and_role_credentials_never_land_in_a_refused_directory(
    stage: Stage, tmp_path: Path, case: str
) -> None:
    """The parsed config copy and the assumed role's credentials follow the token cache's rules."""
    _config_with_role(stage, tmp_path)
    REFUSED[case][0](stage)
    before_victim = snapshot(stage.victim_dir)
    before_cache = snapshot(stage.cache) if not stage.cache.is_symlink() else None
    assumed = stage.fake.calls("sts:AssumeRole")
    for _ in range(2):
        proc = run(stage.env, "get", HOST, fake=stage.fake, label=f"hostile with role {case}")
        assert answer(proc)["Secret"] == stage.fake.issued[-1]
        assert len(stderr_lines(proc)) == 1
    assert stage.fake.calls("sts:AssumeRole") == assumed + 2  # no role credentials kept anywhere
    assert snapshot(stage.victim_dir) == before_victim
    if before_cache is not None:
        assert snapshot(stage.cache) == before_cache


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_credentials_file_symlink_is_not_written_through(stage: Stage, tmp_path: Path) -> None:
    _config_with_role(stage, tmp_path)
    stage.cache.mkdir(mode=0o700)
    (stage.cache / "credentials.json").symlink_to(stage.victim)
    before = snapshot(stage.victim_dir)
    for _ in range(2):
        stage.file.unlink(missing_ok=True)  # a miss each time, so the role is needed
        answer(run(stage.env, "get", HOST, fake=stage.fake, label="credentials symlink"))
    assert stage.fake.calls("sts:AssumeRole") == 2
    assert snapshot(stage.victim_dir) == before
    assert (stage.cache / "credentials.json").is_symlink()
