"""Crashes mid-write: a helper killed with SIGKILL at any point of a cache write leaves a cache that is
the old file or the new one, never half of one, and every later `get` works.

The write window is stretched from outside the product: a ``sitecustomize.py`` put on PYTHONPATH for
the test only wraps ``os.open/write/fsync/close/replace/mkdir/unlink`` for paths under the cache
directory. It counts those system calls, SIGKILLs its own process just before the Nth one
(``CRASH_AT``), cuts every write to ``CRASH_CHUNK`` bytes (short writes are legal, and give many
points inside the file), can sleep ``CRASH_PAUSE`` seconds at each, and can stop for good before the
Nth one (``CRASH_HOLD_AT``, announced by creating ``CRASH_HOLD_FILE``) so that a test kills it from
outside at a moment it chose while other processes read: no race with the clock decides what happens.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from docker_credential_ecr.identity import identity_key
from docker_credential_ecr.registry import parse
from docker_credential_ecr.store import token_key
from fakeecr import FakeAWS
from reliability import age_entries, answer, cache_file, check_document, finish, read_cache, run, spawn, temp_files
from support import helper_env

SHIM = r"""
import atexit
import os
import signal
import time

_DIR = os.environ.get("CRASH_DIR", "")
if _DIR:
    _AT = int(os.environ.get("CRASH_AT") or 0)
    _CHUNK = int(os.environ.get("CRASH_CHUNK") or 0)
    _PAUSE = float(os.environ.get("CRASH_PAUSE") or 0)
    _HOLD_AT = int(os.environ.get("CRASH_HOLD_AT") or 0)
    _HOLD_FILE = os.environ.get("CRASH_HOLD_FILE", "")
    _COUNT_FILE = os.environ.get("CRASH_COUNT_FILE", "")
    _steps = []
    _fds = set()
    _real = {name: getattr(os, name) for name in ("open", "write", "fsync", "close", "replace", "mkdir", "unlink")}
    _WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def _ours(path):
        try:
            return os.fsdecode(path).startswith(_DIR)
        except TypeError:
            return False

    def _step(what):
        _steps.append(what)
        if len(_steps) == _AT:
            os.kill(os.getpid(), signal.SIGKILL)
        if len(_steps) == _HOLD_AT:  # say where we stand, then wait to be killed from outside
            _real["close"](_real["open"](_HOLD_FILE, os.O_WRONLY | os.O_CREAT, 0o600))
            time.sleep(3600)
        if _PAUSE:
            time.sleep(_PAUSE)

    def _open(path, flags, mode=0o777, *, dir_fd=None):
        watched = _ours(path) and (flags & _WRITING or os.fsdecode(path) == _DIR)
        if watched:
            _step("open " + os.path.basename(os.fsdecode(path)))
        fd = _real["open"](path, flags, mode, dir_fd=dir_fd)
        if watched:
            _fds.add(fd)
        return fd

    def _write(fd, data):
        if fd in _fds:
            _step("write")
            if _CHUNK:
                data = memoryview(data)[:_CHUNK]
        return _real["write"](fd, data)

    def _fsync(fd):
        if fd in _fds:
            _step("fsync")
        return _real["fsync"](fd)

    def _close(fd):
        if fd in _fds:
            _fds.discard(fd)
            _step("close")
        return _real["close"](fd)

    def _path_call(name):
        def call(path, *args, **kwargs):
            if _ours(path) or (name == "replace" and _ours(args[0])):
                _step(name + " " + os.path.basename(os.fsdecode(path)))
            return _real[name](path, *args, **kwargs)

        return call

    class _Plain:
        # Stays a plain callable when stored on a class: pathlib's accessor (Python 3.9, 3.10) holds
        # os.mkdir and friends as class attributes, where a function would become a bound method.
        def __init__(self, function):
            self.function = function

        def __call__(self, *args, **kwargs):
            return self.function(*args, **kwargs)

    os.open, os.write, os.fsync, os.close = _Plain(_open), _Plain(_write), _Plain(_fsync), _Plain(_close)
    os.replace, os.mkdir, os.unlink = (_Plain(_path_call(name)) for name in ("replace", "mkdir", "unlink"))

    if _COUNT_FILE:
        atexit.register(lambda: open(_COUNT_FILE, "w").write("\n".join(_steps)))
"""

# Three regions cached before the crash; the crashing process adds a fourth (a miss: fetch + write)
# or a new account in a cached region (a hit that records the host: a write without a fetch).
CACHED = (
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "public.ecr.aws",
)
NEW_REGION = "123456789012.dkr.ecr.ap-southeast-2.amazonaws.com"
NEW_ACCOUNT = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
CHUNK = 1024


def _shim_env(tmp_path: Path, env: dict[str, str], **crash: str) -> dict[str, str]:
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(SHIM)
    return {**env, "PYTHONPATH": str(shim), "CRASH_DIR": env["AWS_ECR_CACHE_DIR"], **crash}


def _key(env: dict[str, str], host: str) -> str:
    registry = parse(host)
    assert registry is not None
    return token_key(identity_key(env), registry)


def _warm(env: dict[str, str], fake: FakeAWS) -> bytes:
    for host in CACHED:
        answer(run(env, "get", host, fake=fake))
    return cache_file(env).read_bytes()


def _restore(env: dict[str, str], baseline: bytes) -> None:
    path = cache_file(env)
    tmp = path.with_name("restore")
    tmp.write_bytes(baseline)
    tmp.chmod(0o600)
    tmp.replace(path)


def _count_steps(tmp_path: Path, env: dict[str, str], host: str) -> list[str]:
    count_file = tmp_path / "steps.txt"
    dry = _shim_env(tmp_path, env, CRASH_CHUNK=str(CHUNK), CRASH_COUNT_FILE=str(count_file))
    answer(run(dry, "get", host, label="crash dry run"))
    return count_file.read_text().splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("target", [NEW_REGION, NEW_ACCOUNT], ids=["miss-fetch-and-store", "hit-add-host"])
def test_sigkill_at_every_write_step_leaves_old_or_new_file(tmp_path: Path, fake: FakeAWS, target: str) -> None:
    env = helper_env(tmp_path, fake)
    baseline = _warm(env, fake)
    old_keys = set(check_document(baseline))
    new_key = _key(env, target)

    steps = _count_steps(tmp_path, env, target)
    assert sum(s == "write" for s in steps) >= 4, steps  # the file is written in several pieces
    assert any(s.startswith("replace") for s in steps), steps

    # A miss costs a botocore import per run: there, kill at every step from taking the cache-file lock
    # on (the write window) and at the first step; a hit that records a host is cheap: every step.
    window = steps.index("open cache-file.lock") if target == NEW_REGION else 0
    points = sorted({1, *range(window + 1, len(steps) + 1)})
    outcomes = {"old": 0, "new": 0, "temp-left": 0, "points": len(points)}
    for n in points:
        _restore(env, baseline)
        fake.clear_faults()
        crash = _shim_env(tmp_path, env, CRASH_AT=str(n), CRASH_CHUNK=str(CHUNK))
        killed = run(crash, "get", target, label=f"killed at {steps[n - 1]}")
        assert killed.returncode == -signal.SIGKILL, (n, steps[n - 1], killed.stdout, killed.stderr)

        after = cache_file(env).read_bytes()  # the old file or the new one, complete
        entries = check_document(after)
        if after == baseline:
            outcomes["old"] += 1
        else:
            assert set(entries) >= old_keys | {new_key}, (n, steps[n - 1])
            outcomes["new"] += 1
        outcomes["temp-left"] += bool(temp_files(cache_file(env).parent))

        # The next process answers, silently, and leaves a valid cache with every entry.
        answer(run(env, "get", target, fake=fake, label="after a crash"))
        assert set(read_cache(env)) >= old_keys | {new_key}
        assert temp_files(cache_file(env).parent) == [], "orphaned temp files must be swept"
        calls = fake.calls()  # still a hit: the crash cost no cached entry
        answer(run(env, "get", CACHED[n % len(CACHED)], label="hit after a crash"))
        assert fake.calls() == calls

    print(f"SIGKILL during a write ({target}): {outcomes} of {len(steps)} steps: {', '.join(steps)}")
    assert outcomes["old"] > 0, outcomes
    assert outcomes["new"] > 0, outcomes
    assert outcomes["temp-left"] > 0, outcomes


def test_sigkill_during_the_first_write_leaves_no_file_or_a_whole_one(tmp_path: Path, fake: FakeAWS) -> None:
    env = helper_env(tmp_path, fake)
    steps = _count_steps(tmp_path, env, CACHED[0])
    cache_file(env).unlink()
    for n in range(steps.index("open cache-file.lock") + 1, len(steps) + 1, 2):
        crash = _shim_env(tmp_path, env, CRASH_AT=str(n), CRASH_CHUNK=str(CHUNK))
        assert run(crash, "get", CACHED[0], label="first write killed").returncode == -signal.SIGKILL
        if cache_file(env).exists():
            assert set(check_document(cache_file(env).read_bytes())) == {_key(env, CACHED[0])}
            cache_file(env).unlink()
    answer(run(env, "get", CACHED[0], fake=fake))
    assert temp_files(cache_file(env).parent) == []


@pytest.mark.slow
def test_readers_never_see_half_a_file_while_writers_are_killed_at_random(tmp_path: Path, fake: FakeAWS) -> None:
    """Writers stopped at a random step of their write and SIGKILLed there; readers hit the cache meanwhile.

    Each writer holds at a step drawn from its write window (from taking the cache-file lock to the
    rename) and says so; only then do the readers run and the kill come. Every round kills a writer
    mid-write and reads under it, however busy the machine: the events counted are made to happen.
    """
    env = helper_env(tmp_path, fake)
    baseline = _warm(env, fake)
    passwords = {host: answer(run(env, "get", host))["Secret"] for host in CACHED}
    steps = _count_steps(tmp_path, env, NEW_REGION)
    window = range(steps.index("open cache-file.lock") + 1, len(steps) + 1)
    rng = random.Random(5)  # noqa: S311 - a choice of steps, not secrets
    reads = kills = 0
    held_at = []
    for round_ in range(5):
        _restore(env, baseline)
        seen = len(fake.requests)
        n = rng.choice(window)
        held_at.append(steps[n - 1])
        marker = tmp_path / f"held-{round_}"
        slow = _shim_env(tmp_path, env, CRASH_CHUNK="512", CRASH_HOLD_AT=str(n), CRASH_HOLD_FILE=str(marker))
        writer = spawn(slow, "get", NEW_REGION.encode())
        for _ in range(1200):  # until the writer stands at step n (a miss imports botocore first)
            if marker.exists() or writer.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), (round_, steps[n - 1], writer.poll())
        for i in range(3):
            host = CACHED[(reads + i) % len(CACHED)]
            got = answer(run(env, "get", host, label="reader during a write"))
            assert got["Secret"] == passwords[host]
            check_document(cache_file(env).read_bytes())
        reads += 3
        assert writer.poll() is None, "the writer must still be stopped mid-write"
        writer.send_signal(signal.SIGKILL)
        kills += 1
        finish(writer, slow)
        check_document(cache_file(env).read_bytes())
        assert {r.region for r in fake.requests[seen:] if r.op == "ecr"} <= {"ap-southeast-2"}, "a reader fetched"
        answer(run(env, "get", NEW_REGION, fake=fake, label=f"after round {round_}"))
        assert temp_files(cache_file(env).parent) == []
    print(f"SIGKILL mid-write at {held_at}: {kills} writers killed, {reads} concurrent reads, all whole")
    assert kills == 5
    assert reads == 15


def test_sigkill_while_holding_the_token_lock_does_not_block_the_next_process(tmp_path: Path, fake: FakeAWS) -> None:
    """The lock dies with its holder: a waiter takes it over and fetches, well inside its deadline."""
    env = helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="20")
    fake.add_fault("ecr", "slow", times=1, delay=30.0)
    holder = spawn(env, "get", CACHED[0].encode())
    for _ in range(200):  # until the holder's request is in flight (it holds the lock then)
        if fake.calls("ecr"):
            break
        time.sleep(0.05)
    assert fake.calls("ecr") == 1
    waiter = spawn(env, "get", CACHED[0].encode())
    time.sleep(1.5)  # the waiter is blocked on the token lock (its own lock timeout: 10 s)
    assert waiter.poll() is None
    assert fake.calls("ecr") == 1
    holder.send_signal(signal.SIGKILL)
    result = finish(waiter, env, timeout=30)
    finish(holder, env)
    assert answer(result)["Secret"] == fake.issued[-1]
    # Released by the kill, not by the waiter's own lock timeout: that would have said so on stderr
    # ("token cache: timed out waiting ...") and fetched without the cache.
    assert result.stderr == ""
    assert fake.calls("ecr") == 2
    assert json.loads(cache_file(env).read_text())["entries"]


def test_a_stale_token_survives_a_crash_of_its_refresh(tmp_path: Path, fake: FakeAWS) -> None:
    """A refresh killed mid-write must not cost the still-usable token: the next failing refresh serves it."""
    env = helper_env(tmp_path, fake)
    answer(run(env, "get", CACHED[0], fake=fake))
    age_entries(env, issued_ago=8 * 3600, expires_in=4 * 3600)
    steps = _count_steps(tmp_path, env, CACHED[0])  # a refresh: fetch and write
    age_entries(env, issued_ago=8 * 3600, expires_in=4 * 3600)
    (cached,) = read_cache(env).values()
    second_write = steps.index("write") + 2
    crash = _shim_env(tmp_path, env, CRASH_AT=str(second_write), CRASH_CHUNK=str(CHUNK))
    assert run(crash, "get", CACHED[0]).returncode == -signal.SIGKILL
    assert fake.issued[-1] != cached.password  # the killed process had fetched a new token
    fake.add_fault("ecr", "access-denied", times=None)
    proc = run(env, "get", CACHED[0], label="stale after crash")
    assert answer(proc)["Secret"] == cached.password
    assert len(proc.stderr.splitlines()) == 1
    assert "using the cached token" in proc.stderr
    # The killed writer's temp file (with the token it fetched) lives until the next write sweeps it.
    assert len(temp_files(cache_file(env).parent)) == 1
    fake.clear_faults()
    answer(run(env, "get", CACHED[0], label="refresh after the fault"))
    assert temp_files(cache_file(env).parent) == []


def _corruptions(valid: bytes) -> dict[str, bytes]:
    doc = json.loads(valid)
    (key,) = doc["entries"]
    return {
        "empty": b"",
        "truncated": valid[: len(valid) // 2],
        "one-byte-short": valid[:-2],
        "nul-bytes": b"\0" * 4096,
        "binary": bytes(range(256)) * 8,
        "utf-16": valid.decode().encode("utf-16"),
        "go-helper-format": b'{"Registries":{"%s":{"AuthorizationToken":"x"}}}' % CACHED[0].encode(),
        "other-version": valid.replace(b'"version": 1', b'"version": 2'),
        "nested": b"[" * 100_000,
        "huge": b" " * (5 << 20) + valid,
        "int-too-big-for-float": valid.replace(
            json.dumps(doc["entries"][key]["expires_at"]).encode(), b"1" + b"0" * 400
        ),
        "infinite-expiry": valid.replace(json.dumps(doc["entries"][key]["expires_at"]).encode(), b"1e400"),
        "wrong-types": valid.replace(b'"username": "AWS"', b'"username": 7'),
    }


@pytest.mark.slow
def test_corrupt_cache_file_is_a_silent_miss_and_is_repaired(tmp_path: Path, fake: FakeAWS) -> None:
    """Anything in cache.json but our document reads as empty: a token is fetched and the file rewritten."""
    env = helper_env(tmp_path, fake)
    answer(run(env, "get", CACHED[0], fake=fake))
    valid = cache_file(env).read_bytes()
    for name, data in _corruptions(valid).items():
        assert data != valid, name
        _restore(env, data)
        proc = run(env, "get", CACHED[0], label=f"corrupt {name}")
        assert answer(proc)["Secret"] == fake.issued[-1], name  # fetched anew, not read from the junk
        assert proc.stderr == "", (name, proc.stderr)
        (entry,) = read_cache(env).values()
        assert entry.password == fake.issued[-1]


@pytest.mark.slow
def test_a_writer_stopped_mid_write_holds_up_no_one(tmp_path: Path, fake: FakeAWS) -> None:
    """SIGSTOP a writer while it holds the cache-file lock (a hung process): hits stay instant, a hit that
    records a host waits at most a second, a miss still answers inside its deadline; SIGCONT and it
    answers too."""
    env = helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="4")
    _warm(env, fake)
    # The writer's own deadline is long enough to reach its write however loaded the machine (a miss
    # imports botocore first, and every watched step pauses 0.1 s); the others keep 4 s.
    slow = _shim_env(tmp_path, {**env, "AWS_ECR_TIMEOUT": "60"}, CRASH_CHUNK="256", CRASH_PAUSE="0.1")
    writer = spawn(slow, "get", NEW_REGION.encode())
    waited = time.monotonic() + 60
    while not temp_files(cache_file(env).parent) and writer.poll() is None and time.monotonic() < waited:
        time.sleep(0.02)  # until it is writing its temp file, under the lock
    writer.send_signal(signal.SIGSTOP)
    try:
        assert temp_files(cache_file(env).parent), "the writer never reached its write"
        timings = {}
        for name, host, bound in (
            ("hit", CACHED[1], 1.5),
            ("hit, new host", NEW_ACCOUNT, 1.0 + 1.5),
            ("miss", "123456789012.dkr.ecr.sa-east-1.amazonaws.com", 4 + 2.5),
        ):
            started = time.monotonic()
            proc = run(env, "get", host, label=f"beside a stopped writer: {name}")
            timings[name] = time.monotonic() - started
            answer(proc)
            assert len(proc.stderr.splitlines()) <= 1, proc.stderr
            assert timings[name] < bound, timings
            check_document(cache_file(env).read_bytes())
    finally:
        writer.send_signal(signal.SIGCONT)
    print("beside a stopped writer:", {k: round(v, 2) for k, v in timings.items()})
    done = finish(writer, slow)
    # Resumed, it answers with the token it fetched and leaves a whole file (its write finished, or,
    # had its deadline run out while it was stopped, the old file: the deadline costs only the caching).
    assert answer(done)["Secret"] in fake.issued
    assert len(done.stderr.splitlines()) <= 1, done.stderr
    check_document(cache_file(env).read_bytes())
    assert temp_files(cache_file(env).parent) == []
    answer(run(env, "get", NEW_REGION, label="after the stopped writer"))
    assert _key(env, NEW_REGION) in read_cache(env)
