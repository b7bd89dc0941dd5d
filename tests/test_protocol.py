"""The wire format: stdin parsing and the exact stdout shapes, against in-memory streams."""

from __future__ import annotations

import io
import json

import pytest

from docker_credential_ecr import protocol
from docker_credential_ecr.errors import BadRequestError, MissingServerURLError, MissingUsernameError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"host\n", "host", id="newline"),
        pytest.param(b"  https://host/v2/ \r\n", "https://host/v2/", id="whitespace"),
        pytest.param(b"\xff\xfehost", "\ufffd\ufffdhost", id="non-utf8-replaced"),
    ],
)
def test_read_server_url(raw: bytes, expected: str) -> None:
    assert protocol.read_server_url(io.BytesIO(raw)) == expected


@pytest.mark.parametrize("raw", [b"", b" \n\t ", b"\n"], ids=["empty", "blank", "newline"])
def test_read_server_url_empty(raw: bytes) -> None:
    with pytest.raises(MissingServerURLError):
        protocol.read_server_url(io.BytesIO(raw))


def test_read_request_is_bounded() -> None:
    stream = io.BytesIO(b"a" * (protocol.MAX_REQUEST_BYTES * 3))
    assert len(protocol.read_request(stream)) == protocol.MAX_REQUEST_BYTES
    assert stream.tell() == protocol.MAX_REQUEST_BYTES + 1


def test_write_credentials_exact_bytes() -> None:
    out = io.StringIO()
    protocol.write_credentials(out, protocol.Credentials("https://h", "AWS", 'p"w\\\u00e9'))
    assert out.getvalue() == '{"ServerURL":"https://h","Username":"AWS","Secret":"p\\"w\\\\\\u00e9"}\n'
    assert json.loads(out.getvalue())["Secret"] == 'p"w\\\u00e9'


def test_write_list() -> None:
    out = io.StringIO()
    protocol.write_list(out, {"https://a": "AWS", "https://b": "AWS"})
    assert out.getvalue() == '{"https://a":"AWS","https://b":"AWS"}\n'
    out = io.StringIO()
    protocol.write_list(out, {})
    assert out.getvalue() == "{}\n"


def test_credentials_repr_hides_secret() -> None:
    assert (
        repr(protocol.Credentials("h", "u", "hunter2")) == "Credentials(server_url='h', username='u', secret=<hidden>)"
    )


def test_request_bound_is_one_mebibyte() -> None:
    """The bound itself: a request of exactly 1 MiB is read whole, one byte more is cut."""
    assert protocol.MAX_REQUEST_BYTES == 1024 * 1024
    whole = b"h" * protocol.MAX_REQUEST_BYTES
    assert protocol.read_request(io.BytesIO(whole)) == whole.decode()
    assert protocol.read_request(io.BytesIO(whole + b"x")) == whole.decode()


def test_parse_credentials() -> None:
    creds = protocol.parse_credentials('{"ServerURL":"https://h","Username":"u","Secret":"s"}')
    assert (creds.server_url, creds.username, creds.secret) == ("https://h", "u", "s")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param('{"Username":"u","Secret":"s"}', MissingServerURLError, id="no-url"),
        pytest.param('{"ServerURL":"  ","Username":"u"}', MissingServerURLError, id="blank-url"),
        pytest.param('{"ServerURL":"h","Secret":"s"}', MissingUsernameError, id="no-user"),
        pytest.param("not json", BadRequestError, id="junk"),
        pytest.param("[1, 2]", BadRequestError, id="array"),
        pytest.param('{"ServerURL": 5, "Username": "u"}', BadRequestError, id="wrong-type"),
        pytest.param("", BadRequestError, id="empty"),
    ],
)
def test_parse_credentials_errors(text: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        protocol.parse_credentials(text)
    if error is BadRequestError:  # the text docker shows the user, the same for every malformed body
        assert info.value.message == "invalid credentials JSON on stdin"  # type: ignore[attr-defined]


def test_write_error_is_the_message_alone() -> None:
    """docker compares the trimmed stdout with its fixed texts (docker-credential-helpers client.go)."""
    out = io.StringIO()
    protocol.write_error(out, "credentials not found in native keychain")
    assert out.getvalue() == "credentials not found in native keychain\n"
