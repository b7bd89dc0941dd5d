"""Fixtures every test shares: a sealed environment and the local fake AWS endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fakeecr import FakeAWS
from support import sealed_env
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
    """The local stand-in for ECR, ECR Public, STS, SSO, container and instance credentials."""
    with FakeAWS() as server:
        yield server


@pytest.fixture
def world(tmp_path: Path) -> World:
    """The in-process fake world (``tests/world.py``): the real Helper, a test clock and token fetcher."""
    return World(tmp_path)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def env(home: Path, fake: FakeAWS, cache_dir: Path) -> dict[str, str]:
    """The environment of a helper subprocess: static keys, the fake's endpoints, a private cache."""
    return sealed_env(home, fake.env(), {"AWS_ECR_CACHE_DIR": str(cache_dir)}, _sealed_files(home))


def _sealed_files(home: Path) -> dict[str, str]:
    # fake.env() points the AWS files at /dev/null; keep them in the test's HOME so tests can write them.
    return {
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
    }
