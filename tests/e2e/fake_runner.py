"""Run ``tests/fakeecr.py``'s FakeAWS inside the e2e namespace and answer questions about it.

Started by support.FakeAws through ``nsenter``. Prints one JSON line ``{"url": ..., "env": {...}}``
when serving, then answers one JSON line per request line on stdin: ``{"calls": "<operation>"}``
gives ``{"result": <count>}``, ``{"issued": ""}`` the passwords issued so far. Exits when stdin
closes (or on SIGTERM), so it never outlives the test session.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fakeecr  # tests/fakeecr.py, found through the path above


def _count(value: Any) -> int:
    return value if isinstance(value, int) else len(value)


def _answer(fake: fakeecr.FakeAWS, request: dict[str, Any]) -> Any:
    if "calls" in request:
        return _count(fake.calls(request["calls"]))
    if "issued" in request:
        return list(fake.issued)
    raise ValueError(f"unknown request {request!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with fakeecr.FakeAWS(password=args.password) as fake:
        print(json.dumps({"url": fake.url, "env": fake.env()}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            try:
                answer = {"result": _answer(fake, request)}
            except Exception as exc:  # reported to the test, which fails with it
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
