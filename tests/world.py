"""The in-process fake world: the real ``Helper`` with an injected clock and token fetcher.

One place for every test that drives :class:`docker_credential_ecr.helper.Helper` (or the kubelet's
``provide``) without AWS: a clock the test moves, a fetcher that counts what it was asked and fails
when told to, the helper's warnings, and the environment it reads (its HOME, its cache directory and,
when a test gives one, its config file), all under the test's ``tmp_path``. Subprocess tests use
``support.sealed_env`` and the fake AWS endpoint instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from docker_credential_ecr.errors import TokenFetchError
from docker_credential_ecr.helper import Helper
from docker_credential_ecr.protocol import Credentials
from docker_credential_ecr.registry import Registry
from docker_credential_ecr.settings import Settings
from docker_credential_ecr.store import Token

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
HOUR = 3600.0
NOW = 1_800_000_000.0
CONFIG_VARIABLE = "DOCKER_CREDENTIAL_ECR_CONFIG"


def write_config(path: Path, text: str, *, age: float = 60.0) -> Path:
    """Write a config file whose modification time is ``age`` seconds ago (old enough to be copied)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


class World:
    """A clock, a fetcher that counts and can fail, an optional config file, and the helper's warnings.

    ``World(tmp_path, config_text, **environ)``: HOME and the cache directory under ``tmp_path``, the
    config file (when ``config_text`` is given) at ``tmp_path / "config.toml"``, ``environ`` on top.
    Tokens are ``pw1``, ``pw2``, ... in the order fetched, issued ``now`` and valid ``lifetime``.
    """

    def __init__(self, tmp_path: Path, config: str | None = None, **environ: str) -> None:
        self.tmp_path = tmp_path
        self.now = NOW
        self.calls: list[Registry] = []
        self.fail: str | None = None
        self.lifetime = 12 * HOUR
        self.warnings: list[str] = []
        self.environ = {"HOME": str(tmp_path / "home"), "AWS_ECR_CACHE_DIR": str(tmp_path / "cache"), **environ}
        self.config: Path | None = None
        if config is not None:
            self.write_config(config)

    def write_config(self, text: str, *, age: float = 60.0) -> Path:
        """(Re)write the config file the helper reads, ``age`` seconds old."""
        self.config = write_config(self.tmp_path / "config.toml", text, age=age)
        self.environ[CONFIG_VARIABLE] = str(self.config)
        return self.config

    @property
    def hosts(self) -> list[str]:
        """The registry hosts fetched, in order."""
        return [registry.host for registry in self.calls]

    def fetch(self, registry: Registry) -> Token:
        self.calls.append(registry)
        if self.fail:
            raise TokenFetchError(self.fail)
        return Token(
            username="AWS", password=f"pw{len(self.calls)}", issued_at=self.now, expires_at=self.now + self.lifetime
        )

    def settings(self, **environ: str) -> Settings:
        return Settings.from_environ({**self.environ, **environ})

    def helper(self, **environ: str) -> Helper:
        return Helper(self.settings(**environ), clock=lambda: self.now, fetch=self.fetch, warn=self.warnings.append)

    def get(self, url: str = HOST) -> Credentials:
        return self.helper().get(url)
