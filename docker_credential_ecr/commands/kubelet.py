"""``docker-credential-ecr-login kubelet`` (also installed as ``ecr-credential-provider``).

The kubelet image credential provider: a CredentialProviderRequest on stdin, a
CredentialProviderResponse on stdout, exit 0. Anything else is a non-zero exit with one line on
stderr (the kubelet logs it with the plugin's error) and nothing on stdout. The protocol itself is
in :mod:`docker_credential_ecr.kubelet`.
"""

from __future__ import annotations

import os
import sys

from docker_credential_ecr import kubelet
from docker_credential_ecr.errors import CredentialsNotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import BinaryIO, TextIO

USAGE = f"""\
Usage: ecr-credential-provider
       docker-credential-ecr-login kubelet

Kubernetes kubelet image credential provider for Amazon ECR and ECR Public. The kubelet runs it for
images matching "matchImages" in its CredentialProviderConfig (--image-credential-provider-config),
writes a CredentialProviderRequest on stdin and reads the CredentialProviderResponse on stdout.
API versions: {", ".join(kubelet.API_VERSIONS)} (answered in the version asked).

Credentials come from the same chain, token cache and config file as `get`. With a service account
token in the request (tokenAttributes in the kubelet config) and a role named by the service
account's annotation {kubelet.ROLE_ANNOTATION} (or {kubelet.ROLE_ENV}), the role is assumed
with STS AssumeRoleWithWebIdentity first.

Options:
  -h, --help     show this help
  --version      print the version
"""


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if argv and argv[0] in ("-v", "--version", "version"):
        from docker_credential_ecr.cli import version_line

        sys.stdout.write(version_line() + "\n")
        return 0
    if argv:
        _error(f"unexpected argument {argv[0]!r}: the request is read from stdin (see --help)")
        return 2
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    status = serve(stdin, sys.stdout, sys.stderr, os.environ)
    sys.stdout.flush()
    return status


def serve(stdin: BinaryIO | None, stdout: TextIO, stderr: TextIO, environ: Mapping[str, str]) -> int:
    """One request from ``stdin``, its answer on ``stdout``; returns the exit status."""
    from docker_credential_ecr.settings import Settings

    warnings: list[str] = []
    request: kubelet.Request | None = None
    try:
        data = stdin.read(kubelet.MAX_REQUEST_BYTES + 1) if stdin is not None else b""
        request = kubelet.parse_request(data)
        answer = kubelet.provide(request, Settings.from_environ(environ), warn=warnings.append)
    except kubelet.RequestError as exc:
        _error(str(exc), stderr)
        return 1
    except CredentialsNotFoundError as exc:
        failure = exc.hint or "no credentials"
        for line in warnings:
            if line != failure:
                _write(stderr, f"WARNING: {line}\n")
        _error(failure, stderr)
        return 1
    except Exception as exc:  # a bug: still one line, never a traceback the kubelet would log as noise
        message = f"internal error: {type(exc).__name__}: {exc}"
        if request is not None and request.service_account_token:
            message = message.replace(request.service_account_token, "<service account token>")
        _error(message, stderr)
        if (environ.get("AWS_ECR_LOG_LEVEL") or "").lower() == "debug":
            import traceback

            traceback.print_exc(file=stderr)
        return 1
    for line in warnings:  # e.g. a stale token served after a failed refresh; the kubelet drops these
        _write(stderr, f"WARNING: {line}\n")
    stdout.write(kubelet.render(answer))
    return 0


def _error(message: str, stderr: TextIO | None = None) -> None:
    _write(stderr or sys.stderr, f"ERROR: {message}\n")


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # the caller closed it: nothing more to say
        pass
