"""A frozen view of the environment variables the helper reads.

Built from an injected mapping so tests never touch ``os.environ``; only :mod:`cli` passes the real one.
Variable names and meanings match the Go helper where it has them (``AWS_ECR_*``).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

APP_NAME = "docker-credential-ecr"
DEFAULT_TIMEOUT = 30.0


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _seconds(value: str | None, default: float) -> float:
    try:
        seconds = float(value or default)
    except ValueError:
        return default
    return seconds if 0 < seconds <= 3600 else default


def default_cache_dir(environ: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """``platformdirs.user_cache_dir(APP_NAME)``, computed without importing platformdirs on Linux/BSD.

    platformdirs costs about 1.4x an interpreter start to import, and a cache hit needs only this one
    path; ``tests/test_settings.py`` holds the two equal. Other platforms ask platformdirs itself.
    None when no absolute directory can be named (no HOME and no passwd entry): no cache, not a crash.
    """
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        base = environ.get("XDG_CACHE_HOME", "").strip()
        if not base:
            home = environ.get("HOME") or _passwd_home()
            if not home:
                return None
            base = os.path.join(home, ".cache")
        path = os.path.join(base, APP_NAME)
    else:  # pragma: no cover - exercised on macOS and Windows only
        import platformdirs

        path = platformdirs.user_cache_dir(APP_NAME)
    return path if os.path.isabs(path) else None


def _passwd_home() -> str | None:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir or None
    except (ImportError, KeyError, OSError):
        return None


class Settings:
    """What the environment asks of the helper. Immutable by convention (``__slots__``, no setters)."""

    __slots__ = (
        "cache_dir",
        "cache_disabled",
        "config_path",
        "environ",
        "ignore_creds_storage",
        "log_level",
        "timeout",
    )

    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        cache_dir: str | None,
        cache_disabled: bool,
        ignore_creds_storage: bool,
        timeout: float,
        config_path: str | None,
        log_level: str,
    ) -> None:
        self.environ = environ
        self.cache_dir = cache_dir
        self.cache_disabled = cache_disabled
        self.ignore_creds_storage = ignore_creds_storage
        self.timeout = timeout
        self.config_path = config_path
        self.log_level = log_level

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        cache_dir = environ.get("AWS_ECR_CACHE_DIR") or default_cache_dir(environ)
        if cache_dir:
            cache_dir = os.path.expanduser(cache_dir)
        return cls(
            environ=environ,
            cache_dir=cache_dir if cache_dir and os.path.isabs(cache_dir) else None,
            # The Go helper: any non-empty value turns the cache off.
            cache_disabled=bool(environ.get("AWS_ECR_DISABLE_CACHE")),
            ignore_creds_storage=_flag(environ.get("AWS_ECR_IGNORE_CREDS_STORAGE")),
            timeout=_seconds(environ.get("AWS_ECR_TIMEOUT"), DEFAULT_TIMEOUT),
            config_path=environ.get("DOCKER_CREDENTIAL_ECR_CONFIG") or None,
            log_level=(environ.get("AWS_ECR_LOG_LEVEL") or "").strip().lower(),
        )

    @property
    def cache_file(self) -> str | None:
        """The cache file, or None when caching is off or has nowhere to live."""
        if self.cache_disabled or not self.cache_dir:
            return None
        return os.path.join(self.cache_dir, "cache.json")
