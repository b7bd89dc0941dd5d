"""HTTPS_PROXY and AWS_CA_BUNDLE work unchanged: the real AWS host name, through a proxy, over TLS.

No endpoint override here: botocore resolves https://api.ecr.<region>.amazonaws.com as it would for a
user, sends CONNECT to the loopback proxy (benchmarks/tlsproxy.py), verifies the proxy's throwaway
certificate against AWS_CA_BUNDLE, and the proxy replays the request to the local fake. Nothing leaves
the machine: every request goes to the proxy, which forwards only to 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, get_ok, run_helper, sealed_env

ROOT = Path(__file__).resolve().parent.parent


def _tlsproxy() -> Any:
    spec = importlib.util.spec_from_file_location("tlsproxy", ROOT / "benchmarks" / "tlsproxy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def proxied(fake: FakeAWS, home: Path, tmp_path: Path) -> Any:
    tlsproxy = _tlsproxy()
    cert, key = tlsproxy.make_certificate(tmp_path)
    with tlsproxy.TLSProxy(fake.url, cert, key, cert) as proxy:
        yield proxy


def _env(home: Path, tmp_path: Path, fake: FakeAWS, proxy: Any, *, with_ca: bool) -> dict[str, str]:
    keys = {k: fake.env()[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env = sealed_env(home, keys, proxy.env(), {"AWS_ECR_CACHE_DIR": str(tmp_path / "cache"), "AWS_ECR_TIMEOUT": "10"})
    if not with_ca:
        del env["AWS_CA_BUNDLE"]
    return env


def test_token_through_https_proxy_with_ca_bundle(fake: FakeAWS, proxied: Any, home: Path, tmp_path: Path) -> None:
    env = _env(home, tmp_path, fake, proxied, with_ca=True)
    assert not any(k.startswith("AWS_ENDPOINT_URL") for k in env)
    answer = get_ok(env, ECR_HOST)
    assert answer["Secret"] == fake.issued[-1]
    assert proxied.requests == 1
    (request,) = fake.requests
    assert (request.op, request.region) == ("ecr", "us-east-1")


def test_an_untrusted_certificate_is_refused(fake: FakeAWS, proxied: Any, home: Path, tmp_path: Path) -> None:
    """Without AWS_CA_BUNDLE the proxy's certificate is not trusted: no token, one line saying why."""
    proc = run_helper(["get"], _env(home, tmp_path, fake, proxied, with_ca=False), ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("docker-credential-ecr-login: the TLS certificate of the ECR (us-east-1) endpoint")
    assert "point AWS_CA_BUNDLE at its CA certificate" in proc.stderr
    assert fake.calls() == 0
    assert fake.issued == []
