"""Disk full, out of inodes, read-only: `get` still answers with a token and the old cache file
survives byte for byte, with at most one line on stderr.

Each case runs the helper inside ``unshare --mount`` (root, as in CI) over a tiny tmpfs filled with
junk, or a read-only bind mount of the cache directory; the mounts vanish with the namespace. A
driver script inside the namespace sets the stage, runs the helper, and reports what it found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import secretscan
from fakeecr import FakeAWS
from reliability import age_entries, answer, cache_file, read_cache, run, stderr_lines
from support import helper_env

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

DRIVER = r"""
import json, os, shutil, subprocess, sys

cfg = json.load(open(sys.argv[1]))
disk, cache = cfg["disk"], cfg["cache_dir"]

def sh(*args):
    subprocess.run(args, check=True)

if cfg["mount"] == "tmpfs":
    sh("mount", "-t", "tmpfs", "-o", cfg["options"], "reliability-disk", disk)
    os.mkdir(cache, 0o700)
    if cfg["old_cache"]:
        shutil.copyfile(cfg["old_cache"], os.path.join(cache, "cache.json"))
        os.chmod(os.path.join(cache, "cache.json"), 0o600)
    n = 0
    try:  # fill: data pages, or inodes
        while True:
            n += 1
            with open(os.path.join(disk, f"junk{n}"), "wb") as fh:
                if cfg["fill"] == "bytes":
                    while True:
                        fh.write(b"x" * 4096)
                        fh.flush()
    except OSError:
        pass
else:  # the cache directory itself, read-only
    sh("mount", "--bind", cache, cache)
    sh("mount", "-o", "remount,bind,ro", cache)

runs = []
for stdin in cfg["stdin"]:
    proc = subprocess.run([cfg["exe"], "get"], input=stdin.encode(), capture_output=True, env=cfg["env"], timeout=60)
    runs.append({"rc": proc.returncode, "stdout": proc.stdout.decode(), "stderr": proc.stderr.decode()})

path = os.path.join(cache, "cache.json")
after = open(path, "rb").read().hex() if os.path.exists(path) else None
names = sorted(os.listdir(cache))
shutil.copytree(cache, cfg["snapshot"], symlinks=True)  # for the secrets scan, outside the mount
json.dump({"runs": runs, "cache_after": after, "names": names}, open(cfg["report"], "w"))
"""


@pytest.fixture(scope="module")
def can_mount() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for private mounts")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"unshare --mount is not permitted here: {probe.stderr.decode().strip()}")


def _in_namespace(
    tmp_path: Path,
    env: dict[str, str],
    *,
    mount: str,
    options: str = "",
    fill: str | None = None,
    old_cache: bytes | None = None,
    stdin: tuple[str, ...] = (HOST,),
) -> dict[str, object]:
    disk = Path(env["AWS_ECR_CACHE_DIR"]).parent
    old = tmp_path / "old-cache.json"
    if old_cache is not None:
        old.write_bytes(old_cache)
    report, driver = tmp_path / "report.json", tmp_path / "driver.py"
    driver.write_text(DRIVER)
    config = {
        "mount": mount,
        "options": options,
        "fill": fill,
        "disk": str(disk),
        "cache_dir": env["AWS_ECR_CACHE_DIR"],
        "old_cache": str(old) if old_cache is not None else None,
        "stdin": list(stdin),
        "env": env,
        "exe": shutil.which("docker-credential-ecr-login", path=str(Path(sys.executable).parent)),
        "snapshot": str(tmp_path / "home" / "snapshot"),
        "report": str(report),
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, str(driver), str(tmp_path / "config.json")],
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(report.read_text())
    for proc in result["runs"]:  # type: ignore[attr-defined]
        secretscan.record("in a mount namespace", env, proc["stderr"])
    return result


def _old_cache(env: dict[str, str], fake: FakeAWS, *, issued_ago: float, expires_in: float) -> tuple[bytes, str]:
    """A cache file from an earlier run with ``env`` (same principal), aged; and its password."""
    seed = {**env, "AWS_ECR_CACHE_DIR": str(Path(env["HOME"]).parent / "seed-cache")}
    password = answer(run(seed, "get", HOST, fake=fake))["Secret"]
    age_entries(seed, issued_ago=issued_ago, expires_in=expires_in)
    return cache_file(seed).read_bytes(), password


def _disk_env(tmp_path: Path, fake: FakeAWS, **extra: str) -> dict[str, str]:
    """The helper's environment with its cache directory on ``tmp_path/disk``, the future mount point."""
    (tmp_path / "disk").mkdir()
    return {**helper_env(tmp_path, fake, **extra), "AWS_ECR_CACHE_DIR": str(tmp_path / "disk" / "cache")}


def _proc(result: dict[str, object], i: int = 0) -> subprocess.CompletedProcess[str]:
    run_ = result["runs"][i]  # type: ignore[index]
    return subprocess.CompletedProcess(["get"], run_["rc"], run_["stdout"], run_["stderr"])


CASES = {
    # name: (mount, options, fill, what the one stderr line says)
    "tmpfs-full": ("tmpfs", "size=64k,mode=0755", "bytes", "No space left on device"),
    "tmpfs-no-inodes": ("tmpfs", "size=1m,nr_inodes=16,mode=0755", "inodes", "No space left on device"),
    "read-only-bind": ("ro-bind", "", None, "Read-only file system"),
}


@pytest.mark.usefixtures("can_mount")
@pytest.mark.parametrize("case", list(CASES))
def test_full_or_read_only_disk_answers_and_keeps_the_old_file(tmp_path: Path, fake: FakeAWS, case: str) -> None:
    mount, options, fill, reason = CASES[case]
    env = _disk_env(tmp_path, fake)
    old, old_password = _old_cache(env, fake, issued_ago=8 * 3600, expires_in=4 * 3600)  # past half-life
    cache_dir = Path(env["AWS_ECR_CACHE_DIR"])
    if mount == "ro-bind":  # the file is already there, on a disk that then turns read-only
        cache_dir.mkdir(mode=0o700)
        (cache_dir / "cache.json").write_bytes(old)
        (cache_dir / "cache.json").chmod(0o600)
    calls = fake.calls()

    result = _in_namespace(tmp_path, env, mount=mount, options=options, fill=fill, old_cache=old, stdin=(HOST, HOST))

    for i in range(2):
        proc = _proc(result, i)
        got = answer(proc)  # a fresh token from the fake, not the old one
        assert got["Secret"] != old_password
        assert got["Secret"] in fake.issued
        lines = stderr_lines(proc)  # one line, saying why the token is not cached
        assert len(lines) == 1, lines
        assert reason in lines[0], lines
    assert fake.calls() == calls + 2  # nothing cached, so each asked
    assert result["cache_after"] == old.hex(), "the old cache file must survive byte for byte"
    assert not [n for n in result["names"] if n.endswith(".tmp")], result["names"]  # type: ignore[attr-defined]


@pytest.mark.usefixtures("can_mount")
def test_full_disk_without_a_cache_file_answers_and_leaves_nothing_half_written(tmp_path: Path, fake: FakeAWS) -> None:
    env = _disk_env(tmp_path, fake)
    result = _in_namespace(tmp_path, env, mount="tmpfs", options="size=16k,mode=0755", fill="bytes")
    proc = _proc(result)
    assert answer(proc)["Secret"] == fake.issued[-1]
    assert len(stderr_lines(proc)) <= 1
    assert result["cache_after"] is None
    assert not [n for n in result["names"] if n.endswith(".tmp")], result["names"]  # type: ignore[attr-defined]


@pytest.mark.usefixtures("can_mount")
def test_full_disk_and_a_failing_api_serve_the_intact_stale_token(tmp_path: Path, fake: FakeAWS) -> None:
    """Disk full and ECR throttling at once: the old, still valid token comes from the untouched file."""
    env = _disk_env(tmp_path, fake, AWS_ECR_TIMEOUT="10")
    old, old_password = _old_cache(env, fake, issued_ago=8 * 3600, expires_in=4 * 3600)
    fake.add_fault("ecr", "access-denied", times=None)
    result = _in_namespace(tmp_path, env, mount="tmpfs", options="size=64k,mode=0755", fill="bytes", old_cache=old)
    proc = _proc(result)
    assert answer(proc)["Secret"] == old_password
    lines = stderr_lines(proc)
    assert len(lines) == 1, lines
    assert "using the cached token" in lines[0]
    assert result["cache_after"] == old.hex()


@pytest.mark.usefixtures("can_mount")
def test_the_disk_frees_up_and_the_cache_works_again(tmp_path: Path, fake: FakeAWS) -> None:
    """After a read-only spell the same directory, writable again, caches as before."""
    env = _disk_env(tmp_path, fake)
    old, _ = _old_cache(env, fake, issued_ago=8 * 3600, expires_in=4 * 3600)
    cache_dir = Path(env["AWS_ECR_CACHE_DIR"])
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "cache.json").write_bytes(old)
    (cache_dir / "cache.json").chmod(0o600)
    _in_namespace(tmp_path, env, mount="ro-bind")
    assert cache_file(env).read_bytes() == old
    fresh = answer(run(env, "get", HOST, fake=fake))["Secret"]
    (entry,) = read_cache(env).values()
    assert entry.password == fresh
    calls = fake.calls()
    assert answer(run(env, "get", HOST))["Secret"] == fresh
    assert fake.calls() == calls
