"""The secrets scan: no password, secret key or session token a fake issued shows outside the cache files.

Every helper process the tests start through ``support.run_helper`` or ``reliability.finish`` is
recorded here, wherever and in whatever order it runs: its stderr, and the directories it could write
(its HOME and cache directory); every fake a helper environment is built for (``support.helper_env``)
is watched for the secrets it issues. Two scans read the records:

- at the end of the session (``pytest_sessionfinish``, re-exported by ``conftest.py``), everything the
  whole run recorded; a leak fails the run, even when every test passed, and the terminal summary
  says what was scanned;
- a test's own, with :func:`journal`: what ran inside the ``with`` block, and nothing else
  (``test_reliability_secrets.py`` drives its own gauntlet and scans that, alone or in any order).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from docker_credential_ecr import store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Protocol

    class Issuer(Protocol):
        """A fake AWS endpoint (``fakeecr.FakeAWS``): what it issued."""

        @property
        def issued(self) -> list[str]: ...

        @property
        def issued_secrets(self) -> list[str]: ...


# The store's files, where secrets belong (0600 in a 0700 directory, checked elsewhere); and the AWS
# SDK's own SSO token cache, where botocore keeps the SSO tokens it refreshes, as the AWS CLI does.
SECRET_FILES = frozenset({store.FILE_NAME, store.CREDENTIALS_FILE_NAME})
SDK_CACHE_DIRS = ((".aws", "sso", "cache"),)
GRAM, STRIDE = 24, 8  # any leaked run of GRAM + STRIDE characters contains a sampled gram
_RUN = re.compile(rb"[A-Za-z0-9+/=_\-]{%d,}" % GRAM)


def _forms(secret: str) -> list[bytes]:
    """A secret as it could appear: itself, and (a password) as the base64 'AWS:<password>' token."""
    return [secret.encode(), base64.b64encode(b"AWS:" + secret.encode())]


def _grams(secrets: set[str]) -> dict[bytes, str]:
    grams: dict[bytes, str] = {}
    for secret in secrets:
        for form in _forms(secret):
            for i in range(0, max(1, len(form) - GRAM + 1), STRIDE):
                grams[form[i : i + GRAM]] = secret[:8] + "…"
    return grams


def find_leaks(secrets: set[str], texts: list[tuple[str, str]], roots: set[Path]) -> list[str]:
    """Where a piece of a secret (GRAM + STRIDE characters or more) shows: stderr texts, files under roots.

    Files named as the store's (:data:`SECRET_FILES`) and the SDK's SSO token cache are the one place
    secrets belong; only regular files are read, so a planted FIFO cannot hang the scan, and links are
    not followed.
    """
    grams = _grams(secrets)

    def hits(data: bytes) -> set[str]:
        found = set()
        for run_ in _RUN.finditer(data):
            chunk = run_.group()
            for i in range(len(chunk) - GRAM + 1):
                owner = grams.get(chunk[i : i + GRAM])
                if owner is not None:
                    found.add(owner)
        return found

    leaks = [f"stderr of {label}: {sorted(h)}" for label, text in texts if (h := hits(text.encode()))]
    seen: set[Path] = set()
    for root in sorted(roots):
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path in seen or path.name in SECRET_FILES or path.parent.parts[-3:] in SDK_CACHE_DIRS:
                continue
            if path.is_symlink() or not path.is_file():
                continue
            seen.add(path)
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if h := hits(data):
                leaks.append(f"{path}: {sorted(h)}")
    return leaks


class Journal:
    """What helper processes printed on stderr, where they could write, and the fakes that issued secrets."""

    def __init__(self) -> None:
        self.stderr: list[tuple[str, str]] = []
        self.roots: set[Path] = set()
        self.fakes: list[Issuer] = []
        self.processes = 0

    def watch(self, fake: Issuer) -> None:
        if all(f is not fake for f in self.fakes):
            self.fakes.append(fake)

    def record(self, label: str, env: Mapping[str, str], stderr: str) -> None:
        self.processes += 1
        self.stderr.append((label, stderr))
        for name in ("HOME", "AWS_ECR_CACHE_DIR", "XDG_CACHE_HOME"):
            if env.get(name):
                self.roots.add(Path(env[name]))

    def secrets(self) -> set[str]:
        found: set[str] = set()
        for fake in self.fakes:
            found.update(fake.issued)
            found.update(fake.issued_secrets)
        return found

    def scan(self) -> list[str]:
        """Every place a secret of a watched fake shows in the recorded stderr or under the recorded roots."""
        return find_leaks(self.secrets(), self.stderr, self.roots)

    def summary(self) -> str:
        return (
            f"{len(self.secrets())} issued secrets from {len(self.fakes)} fakes, "
            f"{len(self.stderr)} stderr captures of {self.processes} processes, {len(self.roots)} directory roots"
        )


SESSION = Journal()
_OPEN: list[Journal] = [SESSION]


def watch(fake: Issuer) -> None:
    """Scan for what ``fake`` issues (every open journal)."""
    for journal_ in _OPEN:
        journal_.watch(fake)


def record(label: str, env: Mapping[str, str], stderr: str) -> None:
    """A helper process ran with ``env`` and printed ``stderr`` (every open journal)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    for journal_ in _OPEN:
        journal_.record(f"{test}: {label}" if test else label, env, stderr)


@contextlib.contextmanager
def journal(*, private: bool = False) -> Iterator[Journal]:
    """A journal of what runs inside the block; ``private``: the session's scan does not see it."""
    own = Journal()
    saved = list(_OPEN)
    _OPEN[:] = [own] if private else [*saved, own]
    try:
        yield own
    finally:
        _OPEN[:] = saved


# -- the session's scan (conftest.py re-exports these hooks) ---------------------------------------
_REPORT: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if SESSION.processes == 0:
        return
    started = time.monotonic()
    leaks = SESSION.scan()
    took = time.monotonic() - started
    _REPORT[:] = [f"secrets scan of the session ({took:.1f} s): {SESSION.summary()}: leaks: {len(leaks)}", *leaks]
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _REPORT:
        terminalreporter.write_line(line, red=len(_REPORT) > 1)
