"""`docker pull` through a real dockerd, with this helper and with the Go helper, both caches warm.

Opt-in, by hand, as root; not part of CI. It builds what the end-to-end suite builds (tests/e2e: a
network + mount namespace, Debian's docker-registry with TLS and htpasswd answering as an ECR
registry, the fake ECR, dockerd 20.10 with its own containerd) and times, in interleaved rounds with
a rotating order:

- ``get``: the helper alone, a cache hit (what docker pays for per credential lookup);
- ``present``: ``docker pull`` of an image the daemon has (docker still asks the helper and the
  registry for the manifest: one ``get``, one HEAD);
- ``absent``: ``docker pull`` of an image it does not have (``docker rmi`` outside the timing): one
  ``get``, then manifest, config and layer.

Run it with the interpreter of a venv where the package is installed without ``-e`` (an editable
install adds an import hook to every start)::

    python3 -m venv /tmp/bench && /tmp/bench/bin/pip install -q .
    /tmp/bench/bin/python benchmarks/daemon_pull.py --rounds 15

Warm caches: ours by one ``get`` inside the namespace; the Go helper's (Debian's 0.6.0) by one ``get``
outside it, through ``tlsproxy.py`` to a fake that issues the registry's password, because Go
ignores ``AWS_ENDPOINT_URL_ECR``. A hit of either needs no network after that; every pull is checked.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "tests"), str(HERE)]

# tests/fakeecr.py and tests/e2e (as pytest sees them: pythonpath = tests); the modules beside this file.
from e2e.daemons import BASE_REPOSITORY, BASE_TAG, Dockerd, prepare_daemons, start_dockerd  # noqa: E402
from e2e.rig import HOSTS, Rig, build  # noqa: E402
from e2e.support import ECR_HOST, HELPER_PROGRAM, Namespace  # noqa: E402
from processes import timed  # noqa: E402
from stats import median, pair_ratio  # noqa: E402
from tlsproxy import TLSProxy, make_certificate  # noqa: E402
from tools import GO_HELPER  # noqa: E402

import fakeecr  # noqa: E402

CASES = ("get", "present", "absent")
TOOLS = ("ours", "go")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "daemon_pull.json")
    args = parser.parse_args(argv)
    if not Path(GO_HELPER).exists():
        sys.exit(f"{GO_HELPER} is missing: apt-get install amazon-ecr-credential-helper")

    with tempfile.TemporaryDirectory(prefix="daemon-pull-bench-") as tmp:
        root = Path(tmp)
        hosts = root / "hosts"
        hosts.write_text("".join(f"127.0.0.1\t{name}\n" for name in ("localhost", *HOSTS)))
        ns = Namespace(root, hosts)
        dockerd: Dockerd | None = None
        try:
            rig = build(root, ns)
            prepare_daemons(rig)
            dockerd = start_dockerd(rig)
            results = run(rig, dockerd, args.rounds)
        finally:
            if dockerd is not None:
                dockerd.close()
            ns.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))
    return 0


def run(rig: Rig, dockerd: Dockerd, rounds: int) -> dict[str, Any]:
    image = f"{ECR_HOST}/{BASE_REPOSITORY}:{BASE_TAG}"
    ours_home = rig.new_home(cred_helpers={ECR_HOST: "ecr-login"})
    go_home = rig.new_home(cred_helpers={ECR_HOST: "ecr-login"})
    go_bin = rig.root / "go-bin"
    go_bin.mkdir()
    (go_bin / HELPER_PROGRAM).symlink_to(GO_HELPER)
    envs = {"ours": rig.env(ours_home), "go": rig.env(go_home)}
    envs["go"]["PATH"] = f"{go_bin}:/usr/bin:/bin"  # ours is first on the rig's PATH; Go replaces it here
    helpers = {"ours": str(rig.venv_bin / HELPER_PROGRAM), "go": GO_HELPER}

    warm_go(rig, envs["go"])
    for tool in TOOLS:
        got = rig.ns.run([helpers[tool], "get"], env=envs[tool], input=ECR_HOST)
        if got.returncode != 0 or json.loads(got.stdout)["Secret"] != rig.password:
            raise RuntimeError(f"{tool}: the warm-up get failed: {got.stderr.strip()}")
    for tool in TOOLS:
        pulled = dockerd.docker("pull", image, env=envs[tool])
        if pulled.returncode != 0:
            raise RuntimeError(f"{tool}: docker pull failed: {pulled.stderr.strip()}")
    calls_before = rig.fake.calls("ecr")

    samples: dict[str, dict[str, list[float]]] = {case: {tool: [] for tool in TOOLS} for case in CASES}
    bare: list[float] = []  # the venv's interpreter doing nothing, in the namespace: the floor of a hit
    order = [(case, tool) for case in CASES for tool in TOOLS] + [("bare", "ours")]
    for i in range(rounds):
        shift = i % len(order)
        for case, tool in order[shift:] + order[:shift]:
            ms = measure(rig, dockerd, case, env=envs[tool], helper=helpers[tool], image=image)
            (bare if case == "bare" else samples[case][tool]).append(ms)
    if rig.fake.calls("ecr") != calls_before:
        raise RuntimeError("our helper called ECR during the rounds: its cache was not warm")

    versions = {
        "dockerd": dockerd.version,
        "go helper": subprocess.run([GO_HELPER, "-v"], capture_output=True, text=True, check=False).stdout.strip(),
        "python": sys.version.split()[0],
    }
    summary = {
        case: {
            tool: {"median_ms": round(median(samples[case][tool]), 1), "runs": len(samples[case][tool])}
            for tool in TOOLS
        }
        | {"ours/go": round(pair_ratio(samples[case]["ours"], samples[case]["go"]), 3)}
        for case in CASES
    }
    summary["bare"] = {"median_ms": round(median(bare), 1), "runs": len(bare)}
    samples["bare"] = {"python -c pass": bare}
    return {"versions": versions, "rounds": rounds, "summary": summary, "samples": samples, "load": os.getloadavg()}


def measure(rig: Rig, dockerd: Dockerd, case: str, *, env: dict[str, str], helper: str, image: str) -> float:
    """One timed run of ``case`` (bare, get, present, absent) in milliseconds; raises if it failed."""
    if case == "bare":
        ms, done = timed(rig.ns.run, [str(rig.venv_bin / "python"), "-c", "pass"], env=env)
    elif case == "get":
        ms, done = timed(rig.ns.run, [helper, "get"], env=env, input=ECR_HOST)
    else:
        if case == "absent":
            removed = dockerd.docker("rmi", image, env=env)
            if removed.returncode != 0:
                raise RuntimeError(f"docker rmi: {removed.stderr.strip()}")
        ms, done = timed(dockerd.docker, "pull", image, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{case} with {helper} failed: {done.stderr.strip()}")
    return float(ms)


def warm_go(rig: Rig, env: dict[str, str]) -> None:
    """One Go `get` in the root network namespace, through a TLS proxy to a fake issuing the registry's
    password; afterwards its cache answers inside the namespace with no network."""
    cert, key = make_certificate(rig.root / "proxy")
    with fakeecr.FakeAWS(password=rig.password) as fake, TLSProxy(fake.url, cert, key, cert) as proxy:
        outside = {**env, "HTTPS_PROXY": proxy.url, "AWS_CA_BUNDLE": str(cert)}
        got = subprocess.run(
            [GO_HELPER, "get"], input=ECR_HOST, env=outside, capture_output=True, text=True, timeout=60, check=False
        )
        if got.returncode != 0:
            raise RuntimeError(f"warming the Go helper's cache failed: {got.stdout.strip()} {got.stderr.strip()}")


def report(results: dict[str, Any]) -> str:
    v = results["versions"]
    lines = [
        f"docker pull through dockerd {v['dockerd']} ({results['rounds']} interleaved rounds, "
        f"load {' '.join(f'{x:.1f}' for x in results['load'])}); Go helper: {v['go helper']}",
        "",
        "| case | this helper | Go helper | ours/Go (median of per-round ratios) |",
        "|---|---|---|---|",
    ]
    names = {
        "get": "helper `get` alone, cache hit",
        "present": "`docker pull`, image present",
        "absent": "`docker pull`, image absent",
    }
    for case in CASES:
        s = results["summary"][case]
        lines.append(f"| {names[case]} | {s['ours']['median_ms']} ms | {s['go']['median_ms']} ms | {s['ours/go']}x |")
    floor = results["summary"]["bare"]["median_ms"]
    lines.append(f"\nbare interpreter of the venv in the namespace (`python -c pass`): {floor} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
