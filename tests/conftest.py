"""Fixtures every test shares: a sealed environment, the local fake AWS endpoint, the in-process fake world;
and the session's secrets scan (``secretscan.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import secretscan
from fakeecr import FakeAWS
from secretscan import pytest_sessionfinish, pytest_terminal_summary  # noqa: F401 (the session's secrets scan)
from support import helper_env
from world import World

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the machine's AWS or Docker settings, or writes into the real HOME."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "DOCKER_", "DOCKER_CREDENTIAL_ECR", "XDG_")) or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def fake() -> Iterator[FakeAWS]:
    """The local stand-in for ECR, ECR Public, STS, SSO, container and instance credentials.

    What it issues must show nowhere but in the store's files: the session's secrets scan watches it.
    """
    with FakeAWS() as server:
        secretscan.watch(server)
        yield server


@pytest.fixture
def world(tmp_path: Path) -> World:
    """The in-process fake world (``tests/world.py``): the real Helper, a test clock and token fetcher."""
    return World(tmp_path)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def env(tmp_path: Path, fake: FakeAWS) -> dict[str, str]:
    """The environment of a helper subprocess: static keys, the fake's endpoints, a private cache."""
    return helper_env(tmp_path, fake)
