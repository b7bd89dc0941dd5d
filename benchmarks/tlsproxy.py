"""A loopback HTTPS proxy in front of the local fake AWS endpoint, for the Go helper and the others.

The Go helper (Debian's amazon-ecr-credential-helper 0.6.0) predates the SDK's service-specific
endpoint variables: it ignores ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_ECR`` and always calls
``https://api.ecr.<region>.amazonaws.com`` (and STS, SSO on their public names). It does honour
``HTTPS_PROXY`` (Go's net/http) and ``AWS_CA_BUNDLE`` (the SDK; it ignores ``SSL_CERT_FILE``, checked
with 0.6.0: "certificate signed by unknown authority"), so this proxy accepts its
``CONNECT``, answers the TLS handshake with a throwaway self-signed certificate for those names, and
replays each HTTP request it reads to the fake over plain HTTP on 127.0.0.1. Whatever host the client
asked for, the request goes to the fake and nowhere else. Loopback endpoints (container credentials,
instance metadata) are not proxied (``NO_PROXY``), so those reach the fake directly.

botocore honours the same two variables, so by default the benchmark sends every tool this way:
each pays for TLS as it would against AWS, and none gets an ``AWS_ENDPOINT_URL`` shortcut.

Standard library only, plus the ``openssl`` command to make the certificate.
"""

from __future__ import annotations

import http.client
import socket
import socketserver
import ssl
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

# Every AWS host name the Go helper may call for us-east-1 registries and credential providers.
CERT_NAMES = (
    "api.ecr.us-east-1.amazonaws.com",
    "api.ecr-public.us-east-1.amazonaws.com",
    "sts.us-east-1.amazonaws.com",
    "sts.amazonaws.com",
    "portal.sso.us-east-1.amazonaws.com",
    "oidc.us-east-1.amazonaws.com",
    "*.us-east-1.amazonaws.com",
)
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)
_MAX_LINE = 65536


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for CERT_NAMES (cert, key); it is its own trust root."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "proxy-cert.pem", directory / "proxy-key.pem"
    names = ",".join(f"DNS:{name}" for name in CERT_NAMES)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=fakeecr benchmark proxy",
            "-addext",
            f"subjectAltName={names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int], context: ssl.SSLContext) -> None:
        self.upstream = upstream
        self.context = context
        self.tunnels = 0
        self.requests = 0
        self.counter_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


def _read_head(read_line: object) -> list[str]:
    """Lines of an HTTP head up to the blank line ([] at end of stream)."""
    lines: list[str] = []
    while True:
        raw: bytes = read_line(_MAX_LINE + 1)  # type: ignore[operator]
        if not raw:
            return []
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            return lines
        lines.append(line)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        raw = self.request
        head = _read_head(_SocketLines(raw).readline)
        if not head or not head[0].startswith("CONNECT "):
            raw.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        raw.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        with self.server.counter_lock:
            self.server.tunnels += 1
        try:
            tls = self.server.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            return
        reader = tls.makefile("rb")
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            while self._relay_one(reader, tls, upstream):
                pass
        except (OSError, http.client.HTTPException):
            pass
        finally:
            upstream.close()
            reader.close()
            try:
                tls.close()
            except OSError:
                pass

    def _relay_one(self, reader: object, tls: ssl.SSLSocket, upstream: http.client.HTTPConnection) -> bool:
        head = _read_head(reader.readline)  # type: ignore[attr-defined]
        if not head:
            return False
        method, target, _version = head[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() not in _HOP_BY_HOP:
                headers.append((name, value))
        body = reader.read(length) if length else b""  # type: ignore[attr-defined]
        upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            upstream.putheader(name, value)
        upstream.putheader("Content-Length", str(len(body)))
        upstream.endheaders(body)
        response = upstream.getresponse()
        data = response.read()
        with self.server.counter_lock:
            self.server.requests += 1
        lines = [f"HTTP/1.1 {response.status} {response.reason}"]
        lines += [f"{k}: {v}" for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        lines.append(f"Content-Length: {len(data)}")
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        return True


class _SocketLines:
    """Line reads straight from a socket, one byte at a time, so nothing after the CONNECT head
    (the TLS ClientHello) is swallowed by a buffer before the socket is wrapped."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def readline(self, limit: int) -> bytes:
        data = bytearray()
        while len(data) < limit:
            byte = self.sock.recv(1)
            if not byte:
                break
            data += byte
            if byte == b"\n":
                break
        return bytes(data)


class TLSProxy:
    """``with TLSProxy(fake_url, cert, key, ca_bundle) as proxy:`` then give a client ``proxy.env()``."""

    def __init__(self, upstream_url: str, cert: Path, key: Path, ca_bundle: Path) -> None:
        parts = urlsplit(upstream_url)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1") or parts.port is None:
            raise ValueError(f"the proxy forwards to a loopback fake only, not {upstream_url}")
        self.upstream = (parts.hostname, parts.port)
        self.ca_bundle = ca_bundle
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server = _Server(self.upstream, context)
        self._thread = threading.Thread(target=self._server.serve_forever, name="tlsproxy", daemon=True)

    def __enter__(self) -> TLSProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> int:
        """Requests relayed so far (each is also counted by the fake, by operation)."""
        with self._server.counter_lock:
            return self._server.requests

    def env(self) -> dict[str, str]:
        """What an AWS SDK client (Go or botocore) needs to reach the fake through this proxy."""
        return {"HTTPS_PROXY": self.url, "https_proxy": self.url, "AWS_CA_BUNDLE": str(self.ca_bundle)}


def ca_bundle(cert: Path, system_bundle: Path, out: Path) -> Path:
    """The clients' usual CA bundle plus the proxy's certificate, so that verifying the proxy costs
    what verifying AWS would (loading ~150 roots), not the load of a one-certificate file."""
    out.write_bytes(system_bundle.read_bytes() + b"\n" + cert.read_bytes())
    return out
