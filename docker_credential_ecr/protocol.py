"""The docker-credential-helpers wire format, and nothing of AWS.

A helper is run as ``docker-credential-<name> <action>``; the request is on stdin, the answer on
stdout, and an error is its message on stdout with exit status 1 (docker-credential-helpers
credentials/credentials.go). Clients compare the trimmed stdout with the fixed messages in
:mod:`docker_credential_ecr.errors`, so they are written here verbatim.
"""

from __future__ import annotations

from docker_credential_ecr import jsonwire
from docker_credential_ecr.errors import BadRequestError, MissingServerURLError, MissingUsernameError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import BinaryIO, TextIO

# A server URL is a host name and maybe a path; anything larger is not one. Reading a bounded amount
# means a client that streams junk at us gets an answer instead of an out-of-memory.
MAX_REQUEST_BYTES = 1 << 20


def read_request(stdin: BinaryIO) -> str:
    """The request text: all of stdin, decoded leniently (junk bytes cannot name an ECR host)."""
    data = stdin.read(MAX_REQUEST_BYTES + 1)
    return data[:MAX_REQUEST_BYTES].decode("utf-8", "replace")


def read_server_url(stdin: BinaryIO) -> str:
    """`get`/`erase`: the server URL, surrounding white space removed; empty is an error."""
    url = read_request(stdin).strip()
    if not url:
        raise MissingServerURLError
    return url


class Credentials:
    """The body of `store`, and the answer of `get`."""

    __slots__ = ("secret", "server_url", "username")

    def __init__(self, server_url: str, username: str, secret: str) -> None:
        self.server_url = server_url
        self.username = username
        self.secret = secret

    def __repr__(self) -> str:  # never the secret
        return f"Credentials(server_url={self.server_url!r}, username={self.username!r}, secret=<hidden>)"


def parse_credentials(text: str) -> Credentials:
    """`store`: the JSON object docker sends, validated as docker-credential-helpers does."""
    try:
        body = jsonwire.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested deeper than the C scanner goes
        raise BadRequestError("invalid credentials JSON on stdin") from None
    if not isinstance(body, dict):
        raise BadRequestError("invalid credentials JSON on stdin")
    server_url, username, secret = (body.get(k, "") for k in ("ServerURL", "Username", "Secret"))
    if not all(isinstance(v, str) for v in (server_url, username, secret)):
        raise BadRequestError("invalid credentials JSON on stdin")
    if not server_url.strip():
        raise MissingServerURLError
    if not username.strip():
        raise MissingUsernameError
    return Credentials(server_url.strip(), username, secret)


def write_credentials(out: TextIO, creds: Credentials) -> None:
    """`get`'s answer: exactly these field names, one line."""
    out.write(
        jsonwire.dumps_object({"ServerURL": creds.server_url, "Username": creds.username, "Secret": creds.secret})
        + "\n"
    )


def write_list(out: TextIO, servers: Mapping[str, str]) -> None:
    """`list`'s answer: server URL -> user name."""
    out.write(jsonwire.dumps_object(servers) + "\n")


def write_error(out: TextIO, message: str) -> None:
    """An error answer: the message alone on stdout (the caller exits 1)."""
    out.write(message + "\n")
