"""Opt-in file logging, rotated, with every token, secret and URL credential redacted.

Off by default: the Go helper's always-on, world-readable, never-rotated debug log (#64) is what this
replaces. ``AWS_ECR_LOG_LEVEL`` (``off``, ``error``, ``warning``, ``info``, ``debug``) or the config
file's ``log_level`` turns it on (the variable wins, so ``AWS_ECR_LOG_LEVEL=off`` silences a config);
``AWS_ECR_LOG_FILE`` or ``log_file`` moves it from ``<user_log_dir>/docker-credential-ecr.log``
(on Linux ``$XDG_STATE_HOME/docker-credential-ecr/log/``, else ``~/.local/state/...``). The file is
0600 in a 0700 directory and rotates at 1 MiB, keeping three old files.

:mod:`logging` costs about 0.6x an interpreter start to import, so it is imported only by
:func:`setup` when logging is on; until then :func:`info` and friends are a test of one global. At
``debug``, botocore's own log goes to the same file, through the same redaction.

Redaction (:func:`redact`) runs on the whole formatted record, traceback included: values of keys
that name a secret (``Secret``, ``password``, ``SessionToken``, ``Authorization``, ``Signature`` ...,
in JSON, Python reprs, headers, query strings and XML), ``user:password@`` in URLs, URL query strings,
and any long run of base64-like characters mixing character classes (tokens, keys, signatures).
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


class RefusedError(OSError):
    """The log file or its directory is not ours alone: never written. The text is the stderr line."""


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
    import logging

    if _handler is not None and getattr(_handler, "baseFilename", None) == os.path.abspath(path):
        handler = _handler
    else:
        from docker_credential_ecr.deadline import Deadline
        from docker_credential_ecr.errors import DeadlineExceededError

        try:
            with Deadline(settings.timeout):  # a file system that hangs must not hang `get`
                handler = _open_handler(path)
        except RefusedError as exc:
            _problem = _refused = str(exc)
            return False
        except DeadlineExceededError:
            _problem = _refused = f"log file {path} did not open within {settings.timeout:g} s: not used"
            return False
        except OSError as exc:
            _problem = f"cannot open the log file {path}: {exc.strerror or exc}"
            return False
        _close()
        _handler = handler
    numeric = getattr(logging, name.upper())
    handler.setLevel(numeric)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(numeric)
    logger.propagate = False
    if handler not in logger.handlers:
        logger.addHandler(handler)
    botocore = logging.getLogger("botocore")
    if name == "debug":
        botocore.setLevel(logging.DEBUG)
        if handler not in botocore.handlers:
            botocore.addHandler(handler)
    elif handler in botocore.handlers:
        botocore.removeHandler(handler)
    _logger = logger
    _problem = None
    return True


def shutdown() -> None:
    """Stop logging and close the file (tests; a long-lived caller that wants it closed)."""
    global _logger, _handler  # noqa: PLW0603 - see setup
    _close()
    _logger = None
    _handler = None


def _close() -> None:
    if _handler is None:
        return
    import logging

    for name in (LOGGER_NAME, "botocore"):
        logging.getLogger(name).removeHandler(_handler)
    _handler.close()


def _open_handler(path: str) -> Any:
    import logging.handlers

    class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
        """RotatingFileHandler whose files are created 0600 whatever the umask (rotation included)."""

        def _open(self) -> Any:
            fd = _open_private(self.baseFilename)
            try:
                return os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors="backslashreplace")
            except BaseException:
                os.close(fd)
                raise

    class RedactingFormatter(logging.Formatter):
        """The usual formatter, with :func:`redact` applied to the finished text (traceback included)."""

        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    _check_directory(directory)
    handler = PrivateRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    # "[name] message", not "name: message": the redaction would take "docker_credential_ecr: x" for
    # a key (it names a credential) and its value.
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(process)d %(levelname)s [%(name)s] %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    )
    return handler


def _check_directory(directory: str) -> None:
    """The cache directory's rule for the log's directory: a directory (not a symlink) of ours or
    root's that nobody else can write, so nobody else can put a link or a FIFO at the log's path."""
    from docker_credential_ecr import safefile

    try:
        safefile.check_directory(directory, root_may_own=True)
    except safefile.RefusedError as exc:
        if exc.reason == safefile.OTHER_OWNER and exc.st is not None:
            raise RefusedError(
                f"log directory {directory} belongs to another user (uid {exc.st.st_uid}): not logging"
            ) from None
        if exc.reason == safefile.REFUSED_MODE:
            raise RefusedError(f"log directory {directory} is writable by other users: not logging") from None
        raise RefusedError(f"log directory {directory} is not a directory (a symlink or a file): not logging") from None


def _open_private(path: str) -> int:
    """A descriptor appending to ``path``, a regular file of ours (root's is not: we would write into
    it), made 0600 (created so if missing). A symlink is refused, not followed; a FIFO without a
    reader fails at once instead of blocking (see :mod:`safefile`); the mode is set, not checked."""
    from docker_credential_ecr import safefile

    try:
        fd, _ = safefile.open_checked(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, refused_modes=0)
    except safefile.RefusedError as exc:
        if exc.reason == safefile.SYMLINK:
            raise RefusedError(f"log file {path} is a symbolic link: not logging") from None
        if exc.reason == safefile.OTHER_OWNER and exc.st is not None:
            raise RefusedError(f"log file {path} belongs to another user (uid {exc.st.st_uid}): not logging") from None
        raise RefusedError(f"log file {path} is not a regular file: not logging") from None
    try:
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


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


# -- redaction -------------------------------------------------------------------------------------
_SECRET_WORDS = r"secret|passw(?:or)?d|token|signature|authorization|credential|bearer"  # noqa: S105 - key names
_PATTERNS: list[tuple[Any, str]] = []


def _patterns() -> list[tuple[Any, str]]:
    if _PATTERNS:
        return _PATTERNS
    import re

    # Order matters: the narrow, structured forms first, the catch-all for long tokens last.
    _PATTERNS.extend(
        (
            # <SecretAccessKey>...</SecretAccessKey> (STS answers at debug level)
            (re.compile(rf"(<(\w*(?:{_SECRET_WORDS})\w*)>)[^<]*(</\2>)", re.IGNORECASE), rf"\1{REDACTED}\3"),
            # "key": "value", 'key': b'value', key=value, key: value (JSON, reprs, headers, queries)
            (
                re.compile(
                    rf"""(?<![\w.-])(["']?[\w-]*(?:{_SECRET_WORDS})[\w-]*["']?\s*[:=]\s*)"""
                    r"""(?:b?"(?:[^"\\]|\\.)*"|b?'(?:[^'\\]|\\.)*'|[^\s,&;'"}\]<)]+)""",
                    re.IGNORECASE,
                ),
                rf"\1{REDACTED}",
            ),
            # user:password@ in URLs, up to the last "@" (a password may hold one): scheme://, //,
            # and the scheme-less user:password@host botocore also accepts as a proxy
            (re.compile(r"([a-z][a-z0-9+.-]*://|(?<![^\s=('\"\[,])//)[^\s'\"<>]*@", re.IGNORECASE), rf"\1{REDACTED}@"),
            (re.compile(r"(?<![^\s=('\"\[,])[^\s:@/'\"<>\[\]]+:(?!//)[^\s'\"<>]*@(?=[\w\[])"), f"{REDACTED}@"),
            # a lone token@host:port without a scheme (an e-mail address has no port)
            (re.compile(r"(?<![^\s=('\"\[,])[^\s:@/'\"<>\[\]]+@(?=[\w.-]+:[0-9])"), f"{REDACTED}@"),
            # URL query strings (pre-signed URLs carry their signature and credentials there)
            (re.compile(r"([a-z][a-z0-9+.-]*://[^\s?#'\"]*)\?[^\s#'\"]*", re.IGNORECASE), rf"\1?{REDACTED}"),
            # Anything long and token-like that mixes character classes: ECR passwords, access keys,
            # session tokens, signatures. Host names, ARNs and paths break on '.', ':' or '/' first.
            (re.compile(r"[A-Za-z0-9+/=_-]{24,}"), ""),
        )
    )
    return _PATTERNS


def _long_token(match: Any) -> str:
    # Random tokens mix digits, lower and upper case (a 40-character one lacks a class about once in
    # a thousand; key names catch those in structured text). Words, host names, UUIDs, hex digests
    # and paths rarely mix all three; a very long run with two classes goes too.
    text: str = match.group(0)
    classes = any(c.isdigit() for c in text) + any(c.islower() for c in text) + any(c.isupper() for c in text)
    return REDACTED if classes == 3 or (classes == 2 and len(text) >= 64) else text


def mask_userinfo(url: str) -> str:
    """``url`` with its user info (user name and password) shown as ``***``, in every form botocore
    accepts for a proxy: ``scheme://user:pass@host``, ``//user:pass@host``, the scheme-less
    ``user:pass@host:port``, a lone ``token@host``, and passwords holding ``@`` or ``:``.
    The user info runs to the last ``@``: what follows is the host, whatever the password held."""
    if "@" not in url:
        return url
    prefix, rest = "", url
    scheme, sep, after = url.partition("://")
    if sep and scheme[:1].isalpha() and all(c.isalnum() or c in "+.-" for c in scheme):
        prefix, rest = scheme + sep, after
    elif url.startswith("//"):
        prefix, rest = "//", url[2:]
    return prefix + "***@" + rest.rpartition("@")[2]


def redact_userinfo(text: str) -> str:
    """Free text (a stderr line) with the user info of every URL in it replaced (see :func:`redact`)."""
    if "@" not in text:
        return text
    for pattern, replacement in _patterns()[2:5]:
        text = pattern.sub(replacement, text)
    return text


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``[REDACTED]`` (see the module docstring for what counts)."""
    patterns = _patterns()
    for pattern, replacement in patterns[:-1]:
        text = pattern.sub(replacement, text)
    result: str = patterns[-1][0].sub(_long_token, text)
    return result
