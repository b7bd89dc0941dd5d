"""Resolve registry credentials the way docker-py does, then use them against the registry.

Runs inside the e2e namespace with the test's HOME, PATH and CA. Prints one JSON object: what
``docker.auth`` resolved from the config file (credHelpers or credsStore), what docker-py's own
credential-store client got from the helper, what ``get_all_credentials`` (the path of docker-py's
build) returned or raised, and how the registry answered a manifest request made with the resolved
credentials and one made with none.
"""

from __future__ import annotations

import argparse
import base64
import json
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

import docker.auth
import docker.credentials

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def fetch_manifest(url: str, ca: str, auth: tuple[str, str] | None) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": ACCEPT}, method="GET")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=ca)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return {"status": response.status, "digest": response.headers.get("Docker-Content-Digest")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "digest": None}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--reference", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--store", required=True, help="credential helper suffix, e.g. ecr-login")
    args = parser.parse_args()

    out: dict[str, Any] = {}
    config = docker.auth.load_config(config_path=args.config)
    resolved = docker.auth.resolve_authconfig(config, args.registry)
    out["resolved"] = resolved
    out["direct"] = docker.credentials.Store(args.store).get(args.registry)
    try:
        out["all"] = {"ok": config.get_all_credentials()}
    except Exception as exc:  # reported; the test decides
        out["all"] = {"error": f"{type(exc).__name__}: {exc}"}

    url = f"https://{args.registry}/v2/{args.repository}/manifests/{args.reference}"
    auth = (resolved["Username"], resolved["Password"]) if resolved else None
    out["with_credentials"] = fetch_manifest(url, args.ca, auth)
    out["anonymous"] = fetch_manifest(url, args.ca, None)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
