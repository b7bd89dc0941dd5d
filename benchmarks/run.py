"""Benchmark docker-credential-ecr against the Go helper and ``aws ecr get-login-password``.

One command, standard library only, a few minutes on a 2-core machine::

    python3 benchmarks/run.py [--out DIR] [--pairs 40] [--cold-pairs 30] [--quick]

What it does, all against local fakes of AWS (``tests/fakeecr.py``), nothing else on the network:

1. Builds a fresh venv with a NON-editable install of this checkout and awscli (``tools.py``).
2. Starts three fake AWS endpoints, one per tool, so that each tool's network calls are counted
   on their own, each behind a loopback TLS proxy (``environments.py``, ``tlsproxy.py``).
3. Runs the cases of the performance budget in DESIGN.md (``cases.py``, ``breakdown.py``). Timed
   runs are interleaved (bare interpreter, ours, Go, ... in one loop, rotating the order; see
   ``processes.py``), medians are reported, and each ratio is the median of the per-pair ratios
   (``stats.py``). Peak RSS comes from extra runs under GNU time.
4. Writes ``results.json`` and ``results.md`` to the output directory and prints the table
   (``report.py``, which holds the targets).

The numbers are measurements, not assertions: the script exits 0 whatever they are (1 only when it
cannot run). Rows whose target is missed say so in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the modules beside this script, not a package
from cases import Bench
from environments import REPO
from processes import TIME
from report import report
from tools import DEFAULT_VENV, GO_HELPER, build_venv, machine, versions

if TYPE_CHECKING:
    from collections.abc import Callable


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where results go")
    parser.add_argument("--pairs", type=int, default=40, help="interleaved rounds for cache hits (>= 30)")
    parser.add_argument("--cold-pairs", type=int, default=30, help="interleaved rounds for cold gets")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the concurrency case")
    parser.add_argument("--hits", type=int, default=10, help="hits per credential source")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help=f"bench venv (default: {DEFAULT_VENV})")
    parser.add_argument("--reuse-venv", action="store_true", help="keep the venv's dependencies, reinstall ours")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the bench venv")
    parser.add_argument("--quick", action="store_true", help="few runs, to check the harness (not for figures)")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="ours and awscli call their fakes over plain HTTP via AWS_ENDPOINT_URL_* (no TLS); Go always uses TLS",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.cold_pairs, args.rounds, args.hits = 8, 5, 1, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for tool in ("openssl", GO_HELPER, TIME):
        if not shutil.which(tool):
            print(f"needs {tool} (Debian packages: openssl, amazon-ecr-credential-helper, time)", file=sys.stderr)
            return 1
    if args.pairs < 30 and not args.quick:
        print(f"note: --pairs {args.pairs} is below the 30 rounds the budget asks for", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    venv = args.venv
    started = time.monotonic()
    print(f"building the bench venv at {venv} ...", file=sys.stderr)
    tools = build_venv(venv, args.python, reuse=args.reuse_venv)
    results: dict[str, Any] = {"machine": machine(), "versions": versions(tools), "notes": [], "direct": args.direct}
    with tempfile.TemporaryDirectory(prefix="ecr-bench-") as tmp:
        bench = Bench(tools, Path(tmp), args.pairs, args.cold_pairs, args.rounds, direct=args.direct)
        try:
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("hit_static", lambda: bench.hit("hit-static", "static")),
                ("hit_container", bench.container_hits),
                ("go_list", bench.go_list),
                ("sources", lambda: bench.sources(args.hits)),
                ("cold", bench.cold),
                ("concurrent", bench.concurrent),
            ]
            for name, step in steps:
                print(f"{name} ...", file=sys.stderr)
                results[name] = step()
        finally:
            bench.close()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["duration_s"] = round(time.monotonic() - started, 1)
    if args.quick:
        results["notes"].append("QUICK RUN (--quick): too few runs for figures; checks the harness only.")
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    table = report(results)
    (args.out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
