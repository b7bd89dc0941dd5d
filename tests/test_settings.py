"""Settings from the environment, and the default cache directory held equal to platformdirs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from docker_credential_ecr.settings import APP_NAME, DEFAULT_TIMEOUT, Settings, default_cache_dir, user_dir
from support import platformdirs_user_dir


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the hand-written path covers Linux/BSD")
@pytest.mark.parametrize(
    ("kind", "variable"), [("cache", "XDG_CACHE_HOME"), ("config", "XDG_CONFIG_HOME"), ("log", "XDG_STATE_HOME")]
)
@pytest.mark.parametrize(
    "xdg",
    [
        pytest.param(None, id="no-xdg"),
        pytest.param("/tmp/xdg-dir", id="xdg"),
        pytest.param("  ", id="blank-xdg"),
        pytest.param("relative/xdg", id="relative-xdg"),
    ],
)
@pytest.mark.parametrize("home", [pytest.param(None, id="home"), pytest.param("relative-home", id="relative-home")])
def test_user_dirs_equal_platformdirs(
    monkeypatch: pytest.MonkeyPatch, kind: str, variable: str, xdg: str | None, home: str | None
) -> None:
    if xdg is None:
        monkeypatch.delenv(variable, raising=False)
    else:
        monkeypatch.setenv(variable, xdg)
    if home is not None:
        monkeypatch.setenv("HOME", home)
    expected = platformdirs_user_dir(kind, APP_NAME)
    assert user_dir(kind, os.environ) == expected
    if kind == "cache":
        assert default_cache_dir(os.environ) == expected


def test_default_cache_dir_without_home_uses_passwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME")
    path = default_cache_dir({}, platform="linux")
    assert path is not None
    assert os.path.isabs(path)
    assert path.endswith(os.path.join(".cache", APP_NAME))


def test_defaults(home: Path) -> None:
    settings = Settings.from_environ({"HOME": str(home)})
    assert settings.cache_dir == str(home / ".cache" / APP_NAME)
    assert settings.cache_file == str(home / ".cache" / APP_NAME / "cache.json")
    assert not settings.cache_disabled
    assert not settings.ignore_creds_storage
    assert settings.timeout == DEFAULT_TIMEOUT


@pytest.mark.parametrize(
    ("environ", "field", "expected"),
    [
        pytest.param({"AWS_ECR_CACHE_DIR": "/x/y"}, "cache_dir", "/x/y", id="cache-dir"),
        pytest.param({"AWS_ECR_CACHE_DIR": "relative"}, "cache_dir", None, id="relative-cache-dir"),
        pytest.param({"AWS_ECR_DISABLE_CACHE": "1"}, "cache_file", None, id="disable"),
        pytest.param({"AWS_ECR_DISABLE_CACHE": "false"}, "cache_disabled", True, id="disable-any-nonempty"),
        pytest.param({"AWS_ECR_DISABLE_CACHE": ""}, "cache_disabled", False, id="disable-empty"),
        pytest.param({"AWS_ECR_IGNORE_CREDS_STORAGE": "true"}, "ignore_creds_storage", True, id="ignore"),
        pytest.param({"AWS_ECR_IGNORE_CREDS_STORAGE": "TRUE"}, "ignore_creds_storage", True, id="ignore-case"),
        pytest.param({"AWS_ECR_IGNORE_CREDS_STORAGE": "no"}, "ignore_creds_storage", False, id="ignore-no"),
        pytest.param({"AWS_ECR_TIMEOUT": "2.5"}, "timeout", 2.5, id="timeout"),
        pytest.param({"AWS_ECR_TIMEOUT": "junk"}, "timeout", DEFAULT_TIMEOUT, id="timeout-junk"),
        pytest.param({"AWS_ECR_TIMEOUT": "-1"}, "timeout", DEFAULT_TIMEOUT, id="timeout-negative"),
    ],
)
def test_environment(home: Path, environ: dict[str, str], field: str, expected: object) -> None:
    settings = Settings.from_environ({"HOME": str(home), **environ})
    assert getattr(settings, field) == expected
