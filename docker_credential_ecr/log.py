"""Opt-in file logging, rotated, with every token, secret and URL credential redacted.

Off by default: the Go helper's always-on, world-readable, never-rotated debug log (#64) is what this
replaces. ``AWS_ECR_LOG_LEVEL`` (``off``, ``error``, ``warning``, ``info``, ``debug``) or the config
file's ``log_level`` turns it on (the variable wins, so ``AWS_ECR_LOG_LEVEL=off`` silences a config);
``AWS_ECR_LOG_FILE`` or ``log_file`` moves it from ``<user_log_dir>/docker-credential-ecr.log``
(on Linux ``$XDG_STATE_HOME/docker-credential-ecr/log/``, else ``~/.local/state/...``). The file is
0600 in a 0700 directory and rotates at 1 MiB, keeping three old files.

:mod:`logging` costs about 0.6x an interpreter start to import, so it is imported only by
:func:`setup` when logging is on, with :mod:`logfile` (the file, its rotation, the redaction of every
record); until then :func:`info` and friends are a test of one global, and a hit loads only this
small module. At ``debug``, botocore's own log goes to the same file, through the same redaction.
Logging must never break a ``get``: a log file that cannot be opened turns logging off silently
(stderr stays quiet on success), and :func:`problem` says why for ``doctor``.

The log file is trusted like the cache (someone else's file there would receive what we write, a
symlink would make us append to and chmod its target, a FIFO would stall ``get``): it is opened with
``O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`` inside the helper's deadline, and must be a regular file of
ours, in a directory of ours (or root's) that others cannot write. Anything else is *refused*:
logging stays off, :func:`refused` says why, and the helper prints that one line on stderr.
"""

from __future__ import annotations

import os
import sys

from docker_credential_ecr.settings import user_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from docker_credential_ecr.config import Config
    from docker_credential_ecr.settings import Settings

LEVEL_ENV = "AWS_ECR_LOG_LEVEL"
FILE_ENV = "AWS_ECR_LOG_FILE"
LEVELS = ("off", "error", "warning", "info", "debug")
FILE_NAME = "docker-credential-ecr.log"
MAX_BYTES = 1 << 20
BACKUPS = 3
LOGGER_NAME = "docker_credential_ecr"
REDACTED = "[REDACTED]"

_logger: Any = None
_handler: Any = None
_problem: str | None = None
_refused: str | None = None


def default_log_dir(environ: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """``platformdirs.user_log_dir(APP_NAME)`` without importing platformdirs (see :func:`settings.user_dir`)."""
    return user_dir("log", environ, platform)


def level(settings: Settings, config: Config | None = None) -> str:
    """The effective level name: ``off`` unless the environment or the config turns logging on."""
    value = settings.log_level  # AWS_ECR_LOG_LEVEL, stripped and lower-cased
    if not value and config is not None:
        value = config.log_level or ""
    value = "warning" if value == "warn" else value
    return value if value in LEVELS else "off"


def log_file(settings: Settings, config: Config | None = None) -> str | None:
    """Where the log goes when it is on."""
    environ = settings.environ
    path = (environ.get(FILE_ENV) or "").strip() or (config.log_file if config is not None else None)
    if path:
        if path.startswith("~") and environ.get("HOME"):
            path = environ["HOME"] + path[1:]
        path = os.path.expanduser(path)
        return path if os.path.isabs(path) else None
    directory = default_log_dir(environ)
    return os.path.join(directory, FILE_NAME) if directory else None


def enabled() -> bool:
    return _logger is not None


def problem() -> str | None:
    """Why logging asked for is not happening (the file could not be opened), or None."""
    return _problem


def refused() -> str | None:
    """Why the log file was refused as not ours alone (a line for stderr), or None."""
    return _refused


def setup(settings: Settings, config: Config | None = None) -> bool:
    """Turn file logging on if asked for; True when it is on. Idempotent: a second call re-targets."""
    global _logger, _handler, _problem, _refused  # noqa: PLW0603 - logging is process-wide by nature
    _refused = None
    name = level(settings, config)
    if name == "off":
        return False
    path = log_file(settings, config)
    if path is None:
        _problem = "no log file: set AWS_ECR_LOG_FILE or log_file to an absolute path"
        return False
    from docker_credential_ecr import logfile

    try:
        _handler, _logger = logfile.turn_on(name, path, settings.timeout, _handler)
    except logfile.RefusedError as exc:
        _problem = _refused = str(exc)
        return False
    except OSError as exc:
        _problem = f"cannot open the log file {path}: {exc.strerror or exc}"
        return False
    _problem = None
    return True


def shutdown() -> None:
    """Stop logging and close the file (tests; a long-lived caller that wants it closed)."""
    global _logger, _handler  # noqa: PLW0603 - see setup
    close_handler(_handler)
    _logger = None
    _handler = None


def close_handler(handler: Any) -> None:
    """Detach ``handler`` from our logger and botocore's, and close it (None: nothing to do)."""
    if handler is None:
        return
    import logging

    for name in (LOGGER_NAME, "botocore"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()


# -- the calls the helper makes: nothing happens unless setup() turned logging on -------------------
def debug(message: str, *args: object) -> None:
    if _logger is not None:
        _logger.debug(message, *args)


def info(message: str, *args: object) -> None:
    if _logger is not None:
        _logger.info(message, *args)


def warning(message: str, *args: object) -> None:
    if _logger is not None:
        _logger.warning(message, *args)


def error(message: str, *args: object) -> None:
    if _logger is not None:
        _logger.error(message, *args)


# -- redaction: logfile's, imported only when something is to be redacted ---------------------------
def mask_userinfo(url: str) -> str:
    """``url`` with its user info shown as ``***`` (see :func:`logfile.mask_userinfo`)."""
    from docker_credential_ecr import logfile

    return logfile.mask_userinfo(url)


def redact_userinfo(text: str) -> str:
    """Free text (a stderr line) with the user info of every URL in it replaced (see :func:`redact`)."""
    if "@" not in text:
        return text
    from docker_credential_ecr import logfile

    return logfile.redact_userinfo(text)


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED]`` (see :mod:`logfile` for what counts)."""
    from docker_credential_ecr import logfile

    return logfile.redact(text)
