"""Where a cold `get` spends its time, timed inside the venv's interpreter.

``SCRIPT`` runs the real `get` (``cli.main``, as the console script runs it) with timers around the
botocore steps it takes; ``cold_breakdown`` runs it ten times on an empty cache and takes medians.
Standard library only.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from environments import HOST, clean, wipe_cache
from stats import median

if TYPE_CHECKING:
    from processes import Runner

RUNS = 10

SCRIPT = r"""
import time
t0 = time.perf_counter()
import io, os, sys
from docker_credential_ecr import cli, helper
t1 = time.perf_counter()
import gc
gc.disable()  # as cli.main does before it handles a request (the imports below happen inside it)
from docker_credential_ecr import aws
t2 = time.perf_counter()
import filelock
t3 = time.perf_counter()
spent = {}

def timed(name, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
    return wrapper

def client_factory(make_client):
    def make(*args, **kwargs):
        client = timed("client", make_client)(*args, **kwargs)
        client.get_authorization_token = timed("call", client.get_authorization_token)
        return client
    return make

hooks = [name for name in ("make_session", "make_client") if hasattr(aws, name)]
if "make_session" in hooks:
    aws.make_session = timed("session", aws.make_session)
if "make_client" in hooks:
    aws.make_client = client_factory(aws.make_client)
out = io.StringIO()
sys.stdin = io.TextIOWrapper(io.BytesIO(b"__HOST__\n"))
real_stdout, sys.stdout = sys.stdout, out
t4 = time.perf_counter()
rc = cli.main(["get"])  # as the console script: with its garbage-collector settings
t5 = time.perf_counter()
sys.stdout = real_stdout
ms = lambda seconds: round(seconds * 1000, 2)
result = {
    "hot-path imports (cli, helper, registry, cache, ...)": ms(t1 - t0),
    "import botocore (docker_credential_ecr.aws)": ms(t2 - t1),
    "import filelock": ms(t3 - t2),
}
if len(hooks) == 2:
    result["botocore session"] = ms(spent.get("session", 0.0))
    result["ECR client creation"] = ms(spent.get("client", 0.0))
    result["GetAuthorizationToken: credentials, signing, HTTP round trip"] = ms(spent.get("call", 0.0))
    result["helper's own work on the miss (parse, lock, cache write)"] = ms(
        t5 - t4 - sum(spent.values())
    )
else:
    result["session, client, call and cache write (no hooks: aws.make_session/make_client changed)"] = ms(t5 - t4)
import json
print(json.dumps(result) if rc == 0 else "get failed: " + out.getvalue())
""".replace("__HOST__", HOST)


def cold_breakdown(runner: Runner, python: str, env: dict[str, str], bare_ms: float) -> dict[str, Any]:
    """SCRIPT run RUNS times by ``python`` on an empty cache (medians); the process's own wall time
    minus the bare interpreter and the timed phases is what is left: interpreter exit (freeing
    botocore's objects) and the script wrapper."""
    phases: dict[str, list[float]] = {}
    walls: list[float] = []
    error = None
    for _ in range(RUNS):
        wipe_cache(env)
        sample = runner.run([python, "-c", SCRIPT], clean(env))
        try:
            measured = json.loads(sample.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            error = (sample.stdout + sample.stderr)[-400:]
            break
        walls.append(sample.wall_ms)
        for key, value in measured.items():
            phases.setdefault(key, []).append(value)
    result: dict[str, Any] = {"interpreter start (bare `python -c pass`, cold loop median)": round(bare_ms, 1)}
    result.update({k: round(median(v), 1) for k, v in phases.items()})
    if walls:
        result["interpreter exit and the rest"] = round(median(walls) - sum(result.values()), 1)
        result["total (median wall of these runs)"] = round(median(walls), 1)
    if error:
        result["error"] = error
    return result
