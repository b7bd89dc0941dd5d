"""What the cases run in: the fake AWS endpoints, and a sealed home per (case, tool).

Each tool gets its own ``tests/fakeecr.py`` process, so every network call is counted for the tool
that made it, and a fresh ``HOME``, cache directory and environment per case: nothing of the
machine's AWS or Docker configuration is read. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tlsproxy import TLSProxy

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "fakeecr.py"
ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
REGION = "us-east-1"
STATIC_KEY_ID = "AKIAFAKEFAKEFAKE0001"
STATIC_SECRET = "fakeSecretAccessKeyFakeSecretAccessKey00"  # the fake's, not a real secret
NETWORK_OPS = ("ecr", "ecr-public", "sts", "sso", "container", "imds")
CONTAINER_DELAY = 0.020  # the container credential endpoint answers in 20 ms
SOURCES = ("static", "profile", "sso", "web-identity", "imds", "container")


class Fake:
    """``tests/fakeecr.py`` in its own process, driven through its loopback control plane."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        ready = workdir / f"fake-{name}.url"
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / f"fake-{name}.log", "wb"),  # noqa: SIM115 - the child owns it
        )
        deadline = time.monotonic() + 20
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake AWS endpoint {name!r} did not start (see {workdir})")
            time.sleep(0.02)
        self.url = ready.read_text().strip()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, route: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_fake/{route}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with self._opener.open(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def calls(self) -> dict[str, int]:
        """Requests per operation so far; STS actions are summed as "sts"."""
        raw: dict[str, int] = self._call("GET", "calls")["calls"]
        counts = dict.fromkeys(NETWORK_OPS, 0)
        for op, n in raw.items():
            key = "sts" if op.startswith("sts:") else op
            counts[key] = counts.get(key, 0) + n
        return counts

    def slow(self, op: str, seconds: float) -> None:
        self._call("POST", "fault", {"op": op, "kind": "slow", "times": None, "delay": seconds})

    def clear_faults(self) -> None:
        self._call("POST", "clear-faults", {})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Calls per operation between two ``Fake.calls()`` readings."""
    return {op: after.get(op, 0) - before.get(op, 0) for op in NETWORK_OPS}


class Homes:
    """A fresh HOME, cache directories and environment per (case, tool), sealed from the machine's.

    Each tool reaches its own fake through its own TLS proxy, as it would reach AWS (HTTPS_PROXY,
    AWS_CA_BUNDLE); with ``direct``, ours and awscli use ``AWS_ENDPOINT_URL_*`` over plain HTTP instead
    (no TLS: cheaper than real life), and only the Go helper, which cannot, uses its proxy.
    """

    def __init__(self, root: Path, fakes: dict[str, Fake], proxies: dict[str, TLSProxy], *, direct: bool) -> None:
        self.root = root
        self.fakes = fakes
        self.proxies = proxies
        self.direct = direct

    def make(self, case: str, tool: str, source: str) -> dict[str, str]:
        home = self.root / case / tool / "home"
        shutil.rmtree(home.parent, ignore_errors=True)
        (home / ".aws").mkdir(parents=True)
        fake = self.fakes[tool]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ECR_CACHE_DIR": str(home.parent / "ecr-cache"),
        }
        if tool == "go" or not self.direct:
            env.update(self.proxies[tool].env())
        else:
            for name in ("", "_ECR", "_ECR_PUBLIC", "_STS", "_SSO"):
                env[f"AWS_ENDPOINT_URL{name}"] = fake.url
        env.update(credential_source(source, home, fake.url, legacy_sso=tool == "go"))
        return env


def credential_source(source: str, home: Path, fake_url: str, *, legacy_sso: bool = False) -> dict[str, str]:
    """Files under ``home`` and variables for one way of getting AWS credentials (one of SOURCES).

    SSO uses the ``[sso-session]`` layout that ``aws configure sso`` writes today; with
    ``legacy_sso`` the older one (start URL in the profile), because the Go helper 0.6.0 panics on
    the newer layout ("configured to use SSO but is missing required config").
    """
    aws = home / ".aws"
    if source == "static":
        return {"AWS_ACCESS_KEY_ID": STATIC_KEY_ID, "AWS_SECRET_ACCESS_KEY": STATIC_SECRET}
    if source == "profile":
        (aws / "credentials").write_text(
            f"[bench]\naws_access_key_id = {STATIC_KEY_ID}\naws_secret_access_key = {STATIC_SECRET}\n"
        )
        (aws / "config").write_text(f"[profile bench]\nregion = {REGION}\n")
        return {"AWS_PROFILE": "bench"}
    if source == "sso":
        start_url = "https://bench.awsapps.com/start"
        role = f"sso_account_id = {ACCOUNT}\nsso_role_name = BenchRole\nregion = {REGION}\n"
        if legacy_sso:
            (aws / "config").write_text(
                f"[profile bench-sso]\nsso_start_url = {start_url}\nsso_region = {REGION}\n{role}"
            )
        else:
            (aws / "config").write_text(
                f"[profile bench-sso]\nsso_session = bench\n{role}\n"
                f"[sso-session bench]\nsso_start_url = {start_url}\nsso_region = {REGION}\n"
            )
        # The token `aws sso login` would leave, in a file named by the SHA-1 of the session name
        # (or of the start URL, in the legacy layout).
        cache = aws / "sso" / "cache"
        cache.mkdir(parents=True)
        token = {
            "startUrl": start_url,
            "region": REGION,
            "accessToken": "bench-sso-access-token",
            "expiresAt": "2099-01-01T00:00:00Z",
        }
        name = start_url if legacy_sso else "bench"
        (cache / (hashlib.sha1(name.encode()).hexdigest() + ".json")).write_text(json.dumps(token))
        return {"AWS_PROFILE": "bench-sso"}
    if source == "web-identity":
        token_file = home / "web-identity-token"
        token_file.write_text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJiZW5jaCJ9.c2ln")
        return {
            "AWS_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/bench-web-identity",
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_SESSION_NAME": "bench",
            "AWS_REGION": REGION,
        }
    if source == "imds":
        return {"AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake_url + "/"}
    if source == "container":
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": fake_url + "/container-credentials"}
    raise ValueError(source)


def clean(env: dict[str, str]) -> dict[str, str]:
    """An empty value means "unset" (AWS_EC2_METADATA_DISABLED for IMDS)."""
    return {k: v for k, v in env.items() if v != ""}


def wipe_cache(env: dict[str, str]) -> None:
    """Empty the helper's token cache of this environment (outside any timing)."""
    shutil.rmtree(env["AWS_ECR_CACHE_DIR"], ignore_errors=True)
