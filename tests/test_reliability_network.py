"""Network faults: an endpoint that never answers, answers slowly, resets the connection, throttles,
fails, returns malformed JSON or a token that does not decode. Every `get` answers in bounded time
in protocol: a token when retries absorb the fault, else the still-usable cached token with one
stderr line, else not-found with one stderr line.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from docker_credential_ecr.identity import identity_key
from docker_credential_ecr.registry import parse
from docker_credential_ecr.store import Store, Token, token_key
from fakeecr import FakeAWS
from reliability import NOT_FOUND, answer, finish, read_cache, run, spawn, stderr_lines
from support import helper_env

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
PUBLIC = "public.ecr.aws"
# The slack on top of AWS_ECR_TIMEOUT: interpreter start, botocore import, a loaded CI machine.
SLACK = 4.0

# Faults the helper's retries absorb: (kind, times, delay, API calls expected).
TRANSIENT = {
    "throttle-x2": ("throttle", 2, 0.0, 3),
    "server-error-x2": ("server-error", 2, 0.0, 3),
    "reset-x2": ("reset", 2, 0.0, 3),
    "slow-1s": ("slow", 1, 1.0, 1),
    "no-expiry": ("no-expiry", 1, 0.0, 1),
}
# Faults that last: (kind, delay, AWS_ECR_TIMEOUT, what the stderr line says).
PERMANENT = {
    "hang": ("hang", 0.0, 3, "no token in time"),
    "slow-beyond-deadline": ("slow", 30.0, 3, "no token in time"),
    "throttle": ("throttle", 0.0, 12, "throttling"),
    "server-error": ("server-error", 0.0, 8, "ServerException"),
    "reset": ("reset", 0.0, 8, "Connection was closed"),
    "malformed-json": ("malformed", 0.0, 8, "GetAuthorizationToken"),
    "bad-base64-token": ("bad-token", 0.0, 8, "not base64"),
    "token-without-colon": ("no-colon", 0.0, 8, "not base64"),
    "empty-authorization-data": ("empty", 0.0, 8, "no authorization data"),
    "access-denied": ("access-denied", 0.0, 8, "access denied"),
    "expired-credentials": ("expired-token", 0.0, 8, "have expired"),
    "unrecognized-client": ("unrecognized-client", 0.0, 8, "rejected the credentials"),
}


def plant(env: dict[str, str], host: str, password: str, *, issued_ago: float, expires_in: float) -> None:
    """A cache entry for ``host`` as an earlier run of the helper under ``env`` would have left it."""
    registry = parse(host)
    assert registry is not None
    now = time.time()
    entry = Token(
        username="AWS", password=password, issued_at=now - issued_ago, expires_at=now + expires_in, hosts=(host,)
    )
    Store(env["AWS_ECR_CACHE_DIR"]).put_token(token_key(identity_key(env), registry), entry, now=now - 86400)


@pytest.mark.parametrize("name", list(TRANSIENT))
def test_transient_fault_is_absorbed_by_retries(tmp_path: Path, fake: FakeAWS, name: str) -> None:
    kind, times, delay, calls = TRANSIENT[name]
    env = helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="15")
    fake.add_fault("ecr", kind, times=times, delay=delay)
    started = time.monotonic()
    proc = run(env, "get", HOST, fake=fake, label=f"transient {name}")
    elapsed = time.monotonic() - started
    print(f"transient fault {name}: token in {elapsed:.2f} s after {fake.calls('ecr')} calls")
    assert answer(proc)["Secret"] == fake.issued[-1]
    assert proc.stderr == ""
    assert fake.calls("ecr") == calls
    assert elapsed < 15 + SLACK
    (entry,) = read_cache(env).values()
    assert entry.password == fake.issued[-1]
    if kind == "no-expiry":  # no expiry given: assume ECR's shortest lifetime, never "forever"
        assert entry.expires_at - entry.issued_at == pytest.approx(3600, abs=5)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PERMANENT))
def test_lasting_fault_answers_in_time_with_stale_token_or_not_found(tmp_path: Path, fake: FakeAWS, name: str) -> None:
    """Three processes at once against the same fault: no cache, a stale but usable token, an expired one."""
    kind, delay, timeout, reason = PERMANENT[name]
    states = {
        "no-cache": None,
        "stale": (8 * 3600.0, 4 * 3600.0),  # past half-life, hours left: served when the refresh fails
        "nearly-expired": (12 * 3600.0 - 30, 30.0),  # inside the 60 s margin: not worth serving
        "expired": (13 * 3600.0, -3600.0),
    }
    envs = {}
    for state, times in states.items():
        (tmp_path / state).mkdir()
        envs[state] = {
            **helper_env(tmp_path, fake, AWS_ECR_TIMEOUT=str(timeout)),
            "AWS_ECR_CACHE_DIR": str(tmp_path / state),
        }
        if times is not None:
            plant(
                envs[state],
                HOST,
                f"cached-password-{state}-{name}-0123456789",
                issued_ago=times[0],
                expires_in=times[1],
            )
    fake.add_fault("ecr", kind, times=None, delay=delay)

    started = time.monotonic()
    procs = {state: spawn(env, "get", HOST.encode()) for state, env in envs.items()}
    results = {state: finish(p, envs[state], timeout=timeout + 30) for state, p in procs.items()}
    elapsed = time.monotonic() - started

    print(f"lasting fault {name}: 4 processes answered in {elapsed:.2f} s (AWS_ECR_TIMEOUT={timeout})")
    assert elapsed < timeout + SLACK, f"{name}: {elapsed:.1f} s for a {timeout} s deadline"
    stale = results["stale"]
    assert answer(stale)["Secret"] == f"cached-password-stale-{name}-0123456789"
    (line,) = stderr_lines(stale)
    assert reason in line, line
    assert "using the cached token, which expires in" in line, line
    for state in ("no-cache", "nearly-expired", "expired"):
        proc = results[state]
        assert proc.returncode == 1, (state, proc.stdout, proc.stderr)
        assert proc.stdout == NOT_FOUND + "\n"
        (line,) = stderr_lines(proc)
        assert reason in line, (state, line)
        assert "cached token" not in line
    # The failure replaced nothing: the stale token is still cached, intact, for the next try.
    (entry,) = read_cache(envs["stale"]).values()
    assert entry.password == f"cached-password-stale-{name}-0123456789"


def test_ecr_public_faults(tmp_path: Path, fake: FakeAWS) -> None:
    env = helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="15")
    fake.add_fault("ecr-public", "throttle", times=2)
    proc = run(env, "get", PUBLIC, fake=fake)
    assert answer(proc)["Secret"] == fake.issued[-1]
    assert proc.stderr == ""
    assert fake.calls("ecr-public") == 3
    plant(env, PUBLIC, "cached-public-password-0123456789", issued_ago=8 * 3600, expires_in=4 * 3600)
    fake.add_fault("ecr-public", "access-denied", times=None)
    proc = run(env, "get", PUBLIC)
    assert answer(proc)["Secret"] == "cached-public-password-0123456789"
    assert "ecr-public:GetAuthorizationToken" in proc.stderr
    assert len(stderr_lines(proc)) == 1


def test_connection_refused_answers_quickly(tmp_path: Path, fake: FakeAWS) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    env = helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="10", AWS_ENDPOINT_URL_ECR=closed, AWS_ENDPOINT_URL=closed)
    started = time.monotonic()
    proc = run(env, "get", HOST)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert proc.stdout == NOT_FOUND + "\n"
    (line,) = stderr_lines(proc)
    assert "cannot reach" in line or "Could not connect" in line, line
    assert elapsed < 10 + SLACK


def test_stuck_lock_holder_cannot_hold_others_past_their_deadline(tmp_path: Path, fake: FakeAWS) -> None:
    """One process hangs on the API while holding the token lock; the next gives up waiting and fetches."""
    env = helper_env(tmp_path, fake, AWS_ECR_TIMEOUT="4")
    fake.add_fault("ecr", "hang", times=1)
    holder = spawn(env, "get", HOST.encode())
    for _ in range(200):
        if fake.calls("ecr"):
            break
        time.sleep(0.05)
    started = time.monotonic()
    waiter = run(env, "get", HOST, label="waiter behind a stuck lock")
    elapsed = time.monotonic() - started
    held = finish(holder, env, timeout=30)
    assert answer(waiter)["Secret"] == fake.issued[-1]
    assert elapsed < 4 + SLACK
    assert len(stderr_lines(waiter)) <= 1
    assert held.returncode == 1  # the holder's own deadline ended its wait
    assert "no token in time" in held.stderr
