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


_UNIX_LIKE = ("linux", "freebsd", "openbsd", "netbsd")
# platformdirs' user directories on Linux/BSD: (XDG variable, default under HOME, suffix after APP_NAME).
_XDG_DIRS = {
    "cache": ("XDG_CACHE_HOME", (".cache",), ()),
    "config": ("XDG_CONFIG_HOME", (".config",), ()),
    "log": ("XDG_STATE_HOME", (".local", "state"), ("log",)),
}


def user_dir(kind: str, environ: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """``platformdirs.user_<kind>_dir(APP_NAME)`` for ``kind`` in cache, config, log.

    Computed here on Linux/BSD, where platformdirs costs about 1.4x an interpreter start to import
    and a cache hit needs one of these paths; the tests hold each equal to platformdirs' answer.
    Other platforms ask platformdirs itself. Its rules: an XDG variable counts only when absolute,
    and a relative HOME counts as unset (the passwd entry is asked instead). None when no absolute
    directory can be named: no cache (or config, or log), never a crash.
    """
    if not platform.startswith(_UNIX_LIKE):  # pragma: no cover - exercised on macOS and Windows only
        import platformdirs

        path: str = getattr(platformdirs, f"user_{kind}_dir")(APP_NAME)
        return path if os.path.isabs(path) else None
    variable, default, suffix = _XDG_DIRS[kind]
    base = environ.get(variable, "")
    if not os.path.isabs(base):
        home = environ.get("HOME", "")
        if not os.path.isabs(home):
            home = _passwd_home() or ""
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, *default)
    return os.path.join(base, APP_NAME, *suffix)


def default_cache_dir(environ: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """``platformdirs.user_cache_dir(APP_NAME)`` (see :func:`user_dir`)."""
    return user_dir("cache", environ, platform)


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
