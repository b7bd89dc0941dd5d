"""Docker's own config file (``$DOCKER_CONFIG/config.json``), as ``configure`` edits it and ``doctor`` reads it.

One place for where the file is (as the docker CLI decides), reading and rendering it (keeping its
indentation), writing it atomically (the store's writer, :func:`safefile.write_atomically`: temp file,
fsync, rename; mode and owner kept, refused when docker wrote it meanwhile), and whether docker finds
this helper on PATH. Off the hot path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys

from docker_credential_ecr import safefile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

EXECUTABLE = "docker-credential-ecr-login"
HELPER = "ecr-login"  # docker runs "docker-credential-" + this
FILE_NAME = "config.json"


class DockerConfigError(Exception):
    """The file cannot be read or written as it is; one line for the user, nothing was changed."""


# -- where the file is ------------------------------------------------------------------------------
def docker_config_dir(environ: Mapping[str, str], override: str | None = None) -> str:
    """``--docker-config``, else ``$DOCKER_CONFIG``, else ``~/.docker`` (as the docker CLI decides)."""
    directory = override or environ.get("DOCKER_CONFIG") or ""
    if not directory:
        home = environ.get("HOME") or os.path.expanduser("~")
        directory = os.path.join(home, ".docker")
    return os.path.abspath(os.path.expanduser(directory))


def config_file(environ: Mapping[str, str], override: str | None = None) -> str:
    """The config.json docker reads (a symlink not resolved: see :func:`os.path.realpath` for editing)."""
    return os.path.join(docker_config_dir(environ, override), FILE_NAME)


# -- the document -----------------------------------------------------------------------------------
def load(path: str) -> tuple[str | None, dict[str, Any], os.stat_result | None]:
    """The file's text (None when absent), its parsed object and its stat; DockerConfigError if unusable."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
            st = os.fstat(f.fileno())
    except FileNotFoundError:
        return None, {}, None
    except (OSError, UnicodeDecodeError) as exc:
        raise DockerConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not text.strip():
        return text, {}, st
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DockerConfigError(
            f"{path} is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); fix it, nothing was changed"
        ) from None
    if not isinstance(doc, dict):
        raise DockerConfigError(f"{path} does not hold a JSON object; fix it, nothing was changed")
    helpers = doc.get("credHelpers")
    if helpers is not None and not isinstance(helpers, dict):
        raise DockerConfigError(f'"credHelpers" in {path} is not a JSON object; fix it, nothing was changed')
    return text, doc, st


def render(doc: Mapping[str, Any], original: str | None) -> str:
    """The document as JSON in the original file's indentation (docker's tab for a new file)."""
    indent: str = "\t"
    newline = True
    if original is not None and original.strip():
        match = re.search(r"\n([ \t]+)\S", original)
        if match is not None:
            indent = match.group(1)
        newline = original.endswith("\n")
    return json.dumps(doc, indent=indent, ensure_ascii=False) + ("\n" if newline else "")


def read(path: str) -> tuple[dict[str, object], str | None]:
    """The document for reading only (doctor): (its object, None) or ({}, why docker cannot read it)."""
    try:
        with open(path, encoding="utf-8") as f:
            loaded = json.loads(f.read() or "{}")
    except OSError as exc:
        return {}, f"cannot be read ({exc.strerror})"
    except ValueError as exc:
        return {}, f"is not valid JSON ({exc})"
    if not isinstance(loaded, dict):
        return {}, "does not hold a JSON object"
    return loaded, None


# -- writing --------------------------------------------------------------------------------------
def write_atomically(path: str, text: str, previous: os.stat_result | None) -> None:
    """Temp file in the same directory, fsync, rename over ``path`` (:func:`safefile.write_atomically`);
    keeps the mode, and the owner when root edits someone's file (new: 0600, directory 0700).

    Refuses when the file changed since it was read (docker login wrote it meanwhile): run again.
    """
    directory = os.path.dirname(path)
    mode = stat.S_IMODE(previous.st_mode) if previous is not None else 0o600
    owner = None
    if previous is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
        owner = (previous.st_uid, previous.st_gid)  # root editing someone's config keeps it theirs

    def unless_changed() -> None:
        if _changed_since(path, previous):
            raise DockerConfigError(f"{path} changed while configure ran; nothing was changed, run it again")

    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        data = text.encode("utf-8")
        safefile.write_atomically(
            path, data, mode=mode, owner=owner, temp_prefix=".config.json.", before_replace=unless_changed
        )
    except OSError as exc:
        raise DockerConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _changed_since(path: str, previous: os.stat_result | None) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return previous is not None
    if previous is None:
        return True
    return (st.st_ino, st.st_size, st.st_mtime_ns) != (previous.st_ino, previous.st_size, previous.st_mtime_ns)


# -- finding the helper ---------------------------------------------------------------------------
def on_path(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(what docker would run for this helper's name on PATH, or None; the running executable when docker
    would run another one first, else None)."""
    found = shutil.which(EXECUTABLE, path=environ.get("PATH", os.defpath))
    if found is None:
        return None, None
    running = sys.argv[0] if sys.argv else ""
    if os.path.basename(running) == EXECUTABLE and os.path.realpath(running) != os.path.realpath(found):
        return found, running
    return found, None
