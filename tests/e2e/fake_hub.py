"""A fake Docker Hub (registry-1.docker.io and auth.docker.io) that records which credentials reach it.

Started by daemons.FakeHub inside the e2e namespace, on an address of the namespace's own ``lo`` that
its /etc/hosts gives the Docker Hub names. It answers like Docker Hub does to a client without a
valid token: ``/v2/`` asks for a bearer token from ``https://auth.docker.io/token``, and the token
endpoint refuses every credential. Each request becomes one JSON line in ``--log``: host, method,
path, and the user and SHA-256 of the password it carried (HTTP basic auth, or the OAuth2 password
grant form dockerd posts), never the password itself. Prints ``ready`` once it listens.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

LOCK = threading.Lock()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    log_path = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self, body: bytes) -> None:
        entry: dict[str, Any] = {"host": self.headers.get("Host", ""), "method": self.command, "path": self.path}
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "(undecodable)", ""
            entry["basic_user"], entry["basic_password_sha256"] = user, _digest(password)
        elif auth:
            entry["authorization"] = auth.split()[0]
        form = parse_qs(body.decode(errors="replace")) if body else {}
        if "password" in form:
            entry["form_user"] = form.get("username", [""])[0]
            entry["form_password_sha256"] = _digest(form["password"][0])
        with LOCK, open(self.log_path, "a") as log:
            log.write(json.dumps(entry) + "\n")

    def _answer(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._record(body)
        if self.path.startswith("/token"):
            self._answer(401, {"details": "incorrect username or password"})
            return
        if self.path.startswith("/v2/"):
            challenge = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
            errors = [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": None}]
            self._answer(401, {"errors": errors}, {"WWW-Authenticate": challenge})
            return
        self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})

    do_GET = do_POST = do_HEAD = _handle


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    Handler.log_path = args.log
    server = ThreadingHTTPServer((args.listen, 443), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
