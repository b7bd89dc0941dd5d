"""The log file itself, once logging is on: opening it safely, rotating it, redacting every record.

:mod:`log` decides whether logging is on (a hit with logging off imports nothing more) and imports
this module only to open the file or to redact a text. The file is trusted like the cache: it is
opened with ``O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`` and must be a regular file of ours, in a directory of
ours (or root's) that others cannot write; anything else is refused (:class:`RefusedError`).

Redaction (:func:`redact`) runs on the whole formatted record, traceback included: values of keys
that name a secret (``Secret``, ``password``, ``SessionToken``, ``Authorization``, ``Signature`` ...,
in JSON, Python reprs, headers, query strings and XML), ``user:password@`` in URLs, URL query strings,
and any long run of base64-like characters mixing character classes (tokens, keys, signatures).
"""

from __future__ import annotations

import os

from docker_credential_ecr import log
from docker_credential_ecr.log import LOGGER_NAME, REDACTED, close_handler

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class RefusedError(OSError):
    """The log file or its directory is not ours alone: never written. The text is the stderr line."""


def turn_on(name: str, path: str, timeout: float, current: Any) -> tuple[Any, Any]:
    """Log at level ``name`` to ``path`` (reusing ``current``, the handler already open, if it is that
    file's): returns (handler, logger). Raises RefusedError or OSError when the file cannot be used."""
    import logging

    if current is not None and getattr(current, "baseFilename", None) == os.path.abspath(path):
        handler = current
    else:
        from docker_credential_ecr.deadline import Deadline
        from docker_credential_ecr.errors import DeadlineExceededError

        try:
            with Deadline(timeout):  # a file system that hangs must not hang `get`
                handler = _open_handler(path)
        except DeadlineExceededError:
            raise RefusedError(f"log file {path} did not open within {timeout:g} s: not used") from None
        close_handler(current)
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
    return handler, logger


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
    handler = PrivateRotatingFileHandler(path, maxBytes=log.MAX_BYTES, backupCount=log.BACKUPS, encoding="utf-8")
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
