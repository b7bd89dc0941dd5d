"""Living beside ``docker login``: hosts that are not ECR go to another credential helper.

With this helper as ``credsStore`` every registry's credentials come here, ``docker login ghcr.io``
included. The config file's ``fallback = "<name>"`` hands every request for a host that is not an
ECR registry or an alias to ``docker-credential-<name>`` (found on PATH, as docker finds it): stdin
passed through unchanged, its stdout, stderr and exit status relayed as they are, within a timeout
(``AWS_ECR_TIMEOUT``, default 30 s). ECR hosts and aliases, in any spelling, are never passed on.
``list`` merges the fallback's answer with this helper's (ours wins for ECR hosts: the fallback's
entries for them are dropped).

A fallback that cannot answer (missing, killed, too slow, or a ``list`` that is not a JSON object)
is one line on stderr, and for ``get`` docker's not-found (so a pull goes anonymous), for the other
actions a protocol error carrying the same line. The child runs with
``DOCKER_CREDENTIAL_ECR_PASSED_THROUGH=1``, so a fallback that leads back here cannot loop.

The program is looked up in the absolute entries of PATH only: an empty entry or ``.`` means the
current directory, where anyone who can write it would run with this user's environment (Go refuses
them the same way, ``exec.ErrDot``). It must be a regular executable file. It runs without the AWS
secret variables (``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ...): a helper for other
registries has no business with them.
Imported only when a fallback is configured and the request is not for ECR. Nothing read from or
written to the fallback (credentials) is ever logged.
"""

from __future__ import annotations

import os
import stat
import sys

from docker_credential_ecr import jsonwire, log
from docker_credential_ecr.config import PASSED_THROUGH_ENV
from docker_credential_ecr.errors import NOT_FOUND_MESSAGE, BadRequestError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import BinaryIO, TextIO

    from docker_credential_ecr.helper import Helper

MAX_OUTPUT_BYTES = 4 << 20
# Never handed to the fallback helper's process.
SECRET_VARIABLES = frozenset(
    {
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
    }
)


class FallbackError(Exception):
    """The fallback helper could not be run or did not answer; the text is one line for stderr."""


class Answer:
    """What the fallback helper said: raw stdout and stderr bytes, and its exit status."""

    __slots__ = ("returncode", "stderr", "stdout")

    def __init__(self, stdout: bytes, stderr: bytes, returncode: int) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    def __repr__(self) -> str:  # never the output: it holds credentials
        return f"Answer(returncode={self.returncode}, stdout={len(self.stdout)} bytes)"


def executable(name: str) -> str:
    return f"docker-credential-{name}"


def find(program: str, search_path: str) -> str | None:
    """``program`` in the absolute entries of ``search_path``, if it is a regular executable file there.

    Relative entries (empty, ``.``, ``bin``) are skipped: they name whatever directory the caller
    happens to be in. Raises FallbackError when the program is found only through such an entry.
    """
    relative = None
    for entry in search_path.split(os.pathsep):
        candidate = os.path.join(entry, program)
        try:
            st = os.stat(candidate)
        except (OSError, ValueError):
            continue
        if not (stat.S_ISREG(st.st_mode) and os.access(candidate, os.X_OK)):
            continue
        if not os.path.isabs(entry):
            relative = relative or (entry or "(empty)")
            continue
        return candidate
    if relative is not None:
        raise FallbackError(
            f"fallback helper {program} was found only through the relative PATH entry {relative!r}: "
            "not run; install it in a directory named by an absolute PATH entry"
        )
    return None


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The fallback's environment: ours without the AWS secrets, marked as passed through."""
    env = {key: value for key, value in environ.items() if key.upper() not in SECRET_VARIABLES}
    env[PASSED_THROUGH_ENV] = "1"
    return env


def run(name: str, action: str, request: bytes, *, environ: Mapping[str, str], timeout: float) -> Answer:
    """Run ``docker-credential-<name> <action>`` with ``request`` on stdin. Raises FallbackError."""
    import subprocess

    program = executable(name)
    path = find(program, environ.get("PATH", os.defpath))
    if path is None:
        raise FallbackError(f"fallback helper {program} is not on PATH (fallback = {name!r} in the config file)")
    env = child_environment(environ)
    try:
        process = subprocess.Popen(
            [path, action],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
    except OSError as exc:
        raise FallbackError(f"fallback helper {program} cannot be run: {exc.strerror or exc}") from None
    with process:
        try:
            stdout, stderr = process.communicate(request, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise FallbackError(f"fallback helper {program} {action} did not answer within {timeout:g} s") from None
    if process.returncode < 0:
        raise FallbackError(f"fallback helper {program} {action} was killed by signal {-process.returncode}")
    return Answer(stdout[:MAX_OUTPUT_BYTES], stderr[:MAX_OUTPUT_BYTES], process.returncode)


def server_url_of(action: str, request: bytes) -> str | None:
    """The server URL a get/erase/store request names; None if it names none (our own error then)."""
    text = request.decode("utf-8", "replace")
    if action != "store":
        return text.strip() or None
    try:
        body = jsonwire.loads(text)
    except (ValueError, RecursionError):
        return None
    url = body.get("ServerURL") if isinstance(body, dict) else None
    return url.strip() or None if isinstance(url, str) else None


def relay(helper: Helper, name: str, action: str, request: bytes, stdout: TextIO) -> int | None:
    """Pass a get/store/erase for a host that is not ours to the fallback; None if it is ours.

    Writes the fallback's answer (or, if it fails, our own) and returns the exit status.
    """
    server_url = server_url_of(action, request)
    if server_url is None or helper.config.owns(server_url):
        return None
    try:
        answer = run(name, action, request, environ=helper.environ, timeout=helper.settings.timeout)
    except FallbackError as exc:
        helper.warn(str(exc))
        stdout.write((NOT_FOUND_MESSAGE if action == "get" else str(exc)) + "\n")
        return 1
    log.info("%s %s: passed to %s, exit status %d", action, server_url, executable(name), answer.returncode)
    _write(stdout, answer.stdout)
    _write(sys.stderr, answer.stderr)
    return answer.returncode


def merged_list(helper: Helper, name: str, ours: Mapping[str, str]) -> dict[str, str]:
    """``list``: the fallback's registries (minus ECR hosts and aliases) and ours. Raises BadRequestError."""
    try:
        answer = run(name, "list", b"unused", environ=helper.environ, timeout=helper.settings.timeout)
        theirs = _parse_list(name, answer)
    except FallbackError as exc:
        helper.warn(str(exc))
        raise BadRequestError(str(exc)) from None
    _write(sys.stderr, answer.stderr)
    merged = {url: user for url, user in theirs.items() if not helper.config.owns(url)}
    merged.update(ours)
    return merged


def _parse_list(name: str, answer: Answer) -> dict[str, str]:
    if answer.returncode != 0:
        said = " ".join(answer.stdout.decode("utf-8", "replace").split())[:300]
        raise FallbackError(f"fallback helper {executable(name)} list failed: {said or 'no message'}")
    try:
        theirs = jsonwire.loads(answer.stdout.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        theirs = None
    if not isinstance(theirs, dict) or not all(isinstance(v, str) for v in theirs.values()):
        raise FallbackError(f"fallback helper {executable(name)} list did not answer a JSON object of strings")
    return theirs


def _write(stream: TextIO, data: bytes) -> None:
    if not data:
        return
    try:
        stream.flush()
        buffer: BinaryIO | None = getattr(stream, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode("utf-8", "replace"))
    except (OSError, ValueError):
        pass
