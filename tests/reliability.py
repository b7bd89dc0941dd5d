"""Shared pieces of the reliability suite (``tests/test_reliability_*.py`` and ``tests/test_fuzz.py``).

Every helper process those tests start goes through :func:`run` or :func:`spawn` and :func:`finish`,
which record its stderr and the directories it could write for the secrets scan (``secretscan.py``);
its environment comes from ``support.helper_env``, which has the scan watch the fake.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import secretscan
from docker_credential_ecr import store as cachemod
from fakeecr import FakeAWS
from support import RUN_TIMEOUT, helper_exe, run_helper

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

NOT_FOUND = "credentials not found in native keychain"
# Every line the helper may print on stdout instead of a JSON answer (docker-credential-helpers' texts
# and the helper's own bad-request text); anything else is a protocol violation.
PROTOCOL_ERRORS = frozenset(
    {
        NOT_FOUND,
        "no credentials server URL",
        "no credentials username",
        "not implemented",
        "invalid credentials JSON on stdin",
    }
)
PROGRAM = "docker-credential-ecr-login"
NOBODY = 65534  # "another user" for ownership tests (root owns everything else here)


def run(
    env: Mapping[str, str],
    action: str,
    stdin: str | bytes | None = "",
    *,
    fake: FakeAWS | None = None,
    timeout: float = RUN_TIMEOUT,
    label: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run the helper (as :func:`support.run_helper`); the secrets scan watches ``fake`` too."""
    if fake is not None:
        secretscan.watch(fake)
    return run_helper([action], env, stdin, timeout=timeout, label=label or action)


def spawn(env: Mapping[str, str], action: str, stdin: bytes | None = None) -> subprocess.Popen[bytes]:
    """Start the helper without waiting; ``stdin`` (a short request) is written and closed at once.

    Pair with :func:`finish`; with ``stdin=None`` pass the request to :func:`finish` instead.
    """
    proc = subprocess.Popen(
        [helper_exe(), action],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
    )
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)  # a pipe holds far more than a server URL: this never blocks
        proc.stdin.close()
        proc.stdin = None
    return proc


def finish(
    proc: subprocess.Popen[bytes], env: Mapping[str, str], stdin: bytes | None = None, *, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(stdin, timeout=timeout)
    result = subprocess.CompletedProcess(
        proc.args, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )
    secretscan.record("spawned", env, result.stderr)
    return result


def answer(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The JSON answer of a successful `get` (exit 0, one line, the three fields)."""
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout.endswith("\n"), proc.stdout
    assert proc.stdout.count("\n") == 1, proc.stdout
    data: dict[str, str] = json.loads(proc.stdout)
    assert list(data) == ["ServerURL", "Username", "Secret"]
    return data


def assert_protocol_answer(proc: subprocess.CompletedProcess[str]) -> None:
    """Exit 0 or 1; stdout one line of JSON or one protocol error; never a traceback anywhere."""
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    if proc.stdout == "":  # erase, store (with AWS_ECR_IGNORE_CREDS_STORAGE) print nothing on success
        assert proc.returncode == 0
        return
    assert proc.stdout.endswith("\n"), proc.stdout
    assert proc.stdout.count("\n") == 1, proc.stdout
    line = proc.stdout[:-1]
    if proc.returncode == 0 and line.startswith(PROGRAM + " ("):  # version
        return
    if proc.returncode == 0:
        assert isinstance(json.loads(line), dict), line
    else:
        assert line in PROTOCOL_ERRORS or line.startswith(f"{PROGRAM}: unknown action: "), line


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    lines = proc.stderr.splitlines()
    for line in lines:
        assert line.startswith(PROGRAM + ": "), proc.stderr
    return lines


# -- the cache file ---------------------------------------------------------------------------------


def cache_file(env: Mapping[str, str]) -> Path:
    return Path(env["AWS_ECR_CACHE_DIR"]) / cachemod.FILE_NAME


def check_document(data: bytes) -> dict[str, cachemod.Token]:
    """A complete cache document of the current schema (never half a file); returns its entries."""
    doc = json.loads(data.decode("utf-8"))
    assert isinstance(doc, dict)
    assert doc["schema"] == cachemod.SCHEMA
    assert doc["version"] == cachemod.VERSION
    assert isinstance(doc["entries"], dict)
    entries = cachemod.parse_document(data.decode("utf-8"))
    assert len(entries) == len(doc["entries"]), "an entry of the wrong shape was written"
    return entries


def read_cache(env: Mapping[str, str]) -> dict[str, cachemod.Token]:
    """The entries of the cache file, which must be valid; empty when there is no file."""
    path = cache_file(env)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    return check_document(data)


def age_entries(env: Mapping[str, str], *, issued_ago: float, expires_in: float) -> None:
    """Rewrite every cached entry's times (keeping its token): past half-life, expired, ..."""
    now = time.time()
    tc = cachemod.Store(env["AWS_ECR_CACHE_DIR"])

    def change(entries: dict[str, cachemod.Token]) -> None:
        for entry in entries.values():
            entry.issued_at = now - issued_ago
            entry.expires_at = now + expires_in

    tc.update(change, now=now - 10 * 86400)  # keep entries that are already expired


def temp_files(directory: Path) -> list[str]:
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))
    except FileNotFoundError:
        return []


def snapshot(path: Path) -> dict[str, tuple[int, int, int, bytes | str | None]]:
    """Every entry under ``path`` (not following symlinks): (mode, uid, mtime_ns, content or link)."""
    found: dict[str, tuple[int, int, int, bytes | str | None]] = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(root) / name
            st = full.lstat()
            body: bytes | str | None = None
            if stat.S_ISREG(st.st_mode):
                body = full.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(full)
            found[str(full.relative_to(path))] = (st.st_mode, st.st_uid, st.st_mtime_ns, body)
    st = path.lstat()
    found["."] = (st.st_mode, st.st_uid, st.st_mtime_ns, None)
    return found
