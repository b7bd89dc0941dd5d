"""Load: 64 helper processes started together, two principals, four regions with two accounts each
plus ECR Public, one shared cache, the fake throttling, resetting and failing the first calls.
Every process answers; one successful API call per (principal, region); the cache file is a valid
document at every moment and ends with one entry per pair listing every host served.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path

import pytest

from docker_credential_ecr.identity import identity_key
from docker_credential_ecr.registry import parse
from docker_credential_ecr.store import token_key
from fakeecr import FakeAWS
from reliability import answer, cache_file, check_document, finish, read_cache, run, spawn
from support import helper_env

PROCESSES = 64
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1")
ACCOUNTS = ("123456789012", "210987654321")
HOSTS = (*(f"{a}.dkr.ecr.{r}.amazonaws.com" for r in REGIONS for a in ACCOUNTS), "public.ecr.aws")
KEY_IDS = ("AKIAFAKEFAKEFAKE0001", "AKIAFAKEFAKEFAKE0002")
# Injected on the first calls; botocore's retries absorb them.
FAULTS = (("ecr", "throttle", 3), ("ecr", "reset", 1), ("ecr-public", "server-error", 1))


class Watcher(threading.Thread):
    """Reads the cache file as fast as it can while the processes run: never anything but a whole document."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.stop, self.reads, self.errors = path, threading.Event(), 0, []  # type: ignore[var-annotated]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                check_document(data)
                self.reads += 1
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.002)


def _wave(envs: list[dict[str, str]], jobs: list[tuple[int, str]]) -> tuple[list[dict[str, str]], float]:
    started = time.monotonic()
    procs = [spawn(envs[who], "get", host.encode()) for who, host in jobs]
    assert len(procs) == len(jobs)
    results = [finish(p, envs[who], timeout=120) for p, (who, _) in zip(procs, jobs)]
    elapsed = time.monotonic() - started
    answers = []
    for proc, (_, host) in zip(results, jobs):
        got = answer(proc)
        assert proc.stderr == "", proc.stderr  # retried faults are silent
        assert got["ServerURL"] == host
        answers.append(got)
    return answers, elapsed


@pytest.mark.slow
def test_64_concurrent_processes_one_call_per_principal_and_region(tmp_path: Path, fake: FakeAWS) -> None:
    # What this counts is calls and lost updates, not speed: 64 cold interpreters on a busy 2-core machine can
    # take longer than the default 30 s deadline to get through, so give them the wave's whole budget.
    base = helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="110")
    envs = [{**base, "AWS_ACCESS_KEY_ID": key_id} for key_id in KEY_IDS]
    jobs = [(i % len(KEY_IDS), HOSTS[(i // len(KEY_IDS)) % len(HOSTS)]) for i in range(PROCESSES)]
    pairs = {(KEY_IDS[who], "us-east-1" if host == "public.ecr.aws" else host.split(".")[3]) for who, host in jobs}
    services = {(KEY_IDS[who], host == "public.ecr.aws") for who, host in jobs}
    assert len(pairs) == len(KEY_IDS) * (len(REGIONS) + 1) - len(KEY_IDS)  # public and us-east-1 share a region
    for op, kind, times in FAULTS:
        fake.add_fault(op, kind, times=times)

    watcher = Watcher(cache_file(base))
    watcher.start()
    try:
        answers, first_wave = _wave(envs, jobs)
    finally:
        watcher.stop.set()
        watcher.join()
    assert watcher.errors == []

    # One successful call per (principal, region, service); the faults cost one retry each.
    ok = [r for r in fake.requests if r.op in ("ecr", "ecr-public") and r.fault is None]
    per_pair = collections.Counter((r.access_key_id, r.region, r.op) for r in ok)
    assert len(per_pair) == len(KEY_IDS) * (len(REGIONS) + 1), per_pair
    assert set(per_pair.values()) == {1}, per_pair
    injected = sum(times for _, _, times in FAULTS)
    assert fake.calls() == len(per_pair) + injected
    assert len(services) == 2 * len(KEY_IDS)

    # Everyone asking for the same (principal, region) got the same token, and it is the one cached.
    tokens: dict[str, set[str]] = collections.defaultdict(set)
    hosts: dict[str, set[str]] = collections.defaultdict(set)
    assert len(jobs) == len(answers)
    for (who, host), got in zip(jobs, answers):
        registry = parse(host)
        assert registry is not None
        key = token_key(identity_key(envs[who]), registry)
        tokens[key].add(got["Secret"])
        hosts[key].add(registry.host)
    assert all(len(t) == 1 for t in tokens.values())
    entries = read_cache(base)
    assert set(entries) == set(tokens)
    for key, entry in entries.items():
        assert {entry.password} == tokens[key]
        assert set(entry.hosts) == hosts[key], "a host served was not recorded (a lost update)"

    # A second wave is all cache hits: no call at all, same answers.
    calls = fake.calls("*")
    again, second_wave = _wave(envs, jobs)
    assert fake.calls("*") == calls
    assert again == answers
    for who, env in enumerate(envs):
        listed = json.loads(run(env, "list", None).stdout)
        assert set(listed) == {"https://" + h for w, h in jobs if w == who}

    print(
        f"load: {PROCESSES} processes, {len(per_pair)} (principal, region) pairs, {fake.calls()} API requests "
        f"({injected} faulted), first wave {first_wave:.1f} s, second wave {second_wave:.1f} s, "
        f"{watcher.reads} whole-file reads during the first wave"
    )
