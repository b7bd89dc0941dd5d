"""Cache-hit cost per CPython: the installed launcher against the bare interpreter that runs it.

    python3 benchmarks/pythons.py [--pairs 40] [--instructions] [PYTHON ...]

For each interpreter (default: every CPython 3.9 to 3.13 under pyenv, else ``python3.X`` on PATH),
a venv with this checkout's wheel installed by pip, as a user gets it; one local fake ECR
(``tests/fakeecr.py``, plain HTTP through ``AWS_ENDPOINT_URL_ECR``); one warming ``get``; then
``--pairs`` interleaved rounds, the order rotating, of:

- ``bare``: ``python -c pass`` of the same venv,
- ``launcher``: ``docker-credential-ecr-login get``, the script pip installed from the wheel,
- ``pip-shim``: the same call through pip's console-script template (``import re`` first), written
  beside it: what a ``[project.scripts]`` entry point would cost.

Ratios are medians of per-round ratios (``stats.py``, as for run.py). Every timed ``get`` must answer
from the cache (the fake's ECR counter stays still), else the script fails. Writes
``pythons.json`` and ``pythons.md`` to ``--out`` and prints the table. Measurements, not
assertions: a missed target is marked, the exit status is 0.

``--instructions`` also counts the instructions each of the three commands executes, under
valgrind's callgrind (``benchmarks/install`` installs it): a figure that a loaded machine hardly
moves, for telling whether a change made the hit cheaper when the wall times cannot.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the modules beside this script, not a package
from environments import HOST, REGION, REPO, STATIC_KEY_ID, STATIC_SECRET, Fake
from processes import Runner, interleave, secret_of
from report import TARGETS
from stats import median, ratios, walls
from tools import PIP_SHIM_NAME, write_pip_shim

TARGET = TARGETS["hit/bare"]  # DESIGN.md: a hit within 1.25x of the bare interpreter that runs it
MINORS = ("3.9", "3.10", "3.11", "3.12", "3.13")


def find_pythons() -> list[str]:
    """The newest patch release of each supported minor version: pyenv's, else ``python3.X`` on PATH."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = []
    for minor in MINORS:
        candidates = glob.glob(os.path.join(root, "versions", f"{minor}.*", "bin", f"python{minor}"))
        candidates = [c for c in candidates if re.fullmatch(rf"{re.escape(minor)}\.\d+", Path(c).parents[1].name)]
        candidates.sort(key=lambda c: int(Path(c).parents[1].name.rsplit(".", 1)[1]))
        on_path = shutil.which(f"python{minor}")
        if candidates:
            found.append(candidates[-1])
        elif on_path and os.path.isabs(on_path):
            found.append(on_path)
    return found


def build(python: str, wheel: Path, root: Path) -> tuple[Path, str]:
    """A venv of ``python`` with the wheel installed; returns (venv, its Python version)."""
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    version = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    venv = root / f"venv-{version}"
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "install", str(wheel)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip install into {venv} failed:\n{done.stdout}{done.stderr}")
    write_pip_shim(venv)
    return venv, version


def instructions(argv: list[str], env: dict[str, str], stdin: bytes, runs: int = 3) -> int:
    """Instructions a command executes, counted by valgrind's callgrind (the median of ``runs``).

    Unlike a wall time it hardly moves with the machine's load (the spread of runs is well under 1%),
    so a busy machine can still tell whether a change made the hit cheaper. It counts the CPU's work
    only: system calls, page faults and cache misses are the wall time's business.
    """
    counts: list[float] = []
    for _ in range(runs):
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
            input=stdin,
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        found = re.search(rb"Collected : (\d+)", proc.stderr)
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"valgrind {argv[0]} failed: rc={proc.returncode} {proc.stderr[-300:]!r}")
        counts.append(int(found.group(1)))
    return int(median(counts))


def measure(
    venv: Path, fake: Fake, runner: Runner, home: Path, pairs: int, *, count_instructions: bool = False
) -> dict[str, Any]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": STATIC_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": STATIC_SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_ECR": fake.url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    launcher = str(venv / "bin" / "docker-credential-ecr-login")
    first_line = Path(launcher).read_text().splitlines()[0]
    if first_line != f"#!{venv / 'bin' / 'python'}" and not first_line.startswith(f"#!{venv}/bin/python"):
        raise RuntimeError(f"{launcher}: the installer did not rewrite #!python: {first_line!r}")
    stdin = HOST.encode() + b"\n"
    commands = [
        ("bare", [str(venv / "bin" / "python"), "-c", "pass"], env, b""),
        ("launcher", [launcher, "get"], env, stdin),
        ("pip-shim", [str(venv / "bin" / PIP_SHIM_NAME), "get"], env, stdin),
    ]
    warm = runner.run(*commands[1][1:])
    secret = secret_of(warm)
    if secret is None:
        raise RuntimeError(f"{launcher} get failed: rc={warm.rc} {warm.stdout!r} {warm.stderr!r}")
    for _ in range(3):  # untimed: page cache, pyc files
        for _, argv, e, data in commands:
            runner.run(argv, e, data)
    before = fake.calls()["ecr"]
    samples = interleave(runner, commands, pairs)
    answers = [secret_of(s) for name in ("launcher", "pip-shim") for s in samples[name]]
    if fake.calls()["ecr"] != before or any(a != secret for a in answers):
        raise RuntimeError("a timed get did not answer from the cache")
    walls_ms = walls(samples)
    result: dict[str, Any] = {
        "pairs": pairs,
        "median_ms": {name: round(median(w), 2) for name, w in walls_ms.items()},
        "ratio": ratios(walls_ms, "launcher/bare", "pip-shim/bare"),
    }
    if count_instructions:
        counted = {name: instructions(argv, e, data) for name, argv, e, data in commands}
        if fake.calls()["ecr"] != before:
            raise RuntimeError("a counted get did not answer from the cache")
        result["instructions"] = counted
        result["instructions_ratio"] = {
            "launcher/bare": round(counted["launcher"] / counted["bare"], 3),
            "pip-shim/bare": round(counted["pip-shim"] / counted["bare"], 3),
        }
    return result


def table(results: dict[str, Any]) -> str:
    counted = any("instructions" in r for r in results.values())
    extra = " instructions, launcher / bare |" if counted else ""
    lines = [
        f"| CPython | bare `python -c pass` | hit, installed launcher | hit, pip's console-script shim | "
        f"launcher ≤ {TARGET}x bare |{extra}",
        "|---|---|---|---|---|" + ("---|" if counted else ""),
    ]
    for version, r in results.items():
        if "error" in r:
            lines.append(f"| {version} | error: {r['error']} | | | |" + (" |" if counted else ""))
            continue
        ms, ratio = r["median_ms"], r["ratio"]
        ok = "yes" if ratio["launcher/bare"] <= TARGET else "**no**"
        row = (
            f"| {version} | {ms['bare']} ms | {ms['launcher']} ms, **{ratio['launcher/bare']}x** | "
            f"{ms['pip-shim']} ms, {ratio['pip-shim/bare']}x | {ok} |"
        )
        if counted:
            n = r.get("instructions")
            row += (
                f" {n['launcher'] / 1e6:.1f}M / {n['bare'] / 1e6:.1f}M = {r['instructions_ratio']['launcher/bare']}x |"
                if n
                else " |"
            )
        lines.append(row)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("pythons", nargs="*", help="interpreters (default: CPython 3.9-3.13 from pyenv or PATH)")
    parser.add_argument("--pairs", type=int, default=40, help="interleaved rounds per interpreter")
    parser.add_argument("--wheel", type=Path, help="the wheel to install (default: build one from this checkout)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where results go")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each command's instructions under valgrind (steady on a busy machine; slow)",
    )
    args = parser.parse_args(argv)
    pythons = args.pythons or find_pythons()
    if not pythons:
        print("no CPython 3.9-3.13 found (pyenv or python3.X on PATH)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="dce-pythons-") as tmp:
        root = Path(tmp)
        wheel = args.wheel
        if wheel is None:
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(REPO)],
                check=True,
            )
            (wheel,) = (root / "dist").glob("*.whl")
        fake = Fake("pythons", root)
        runner = Runner(root)
        results: dict[str, Any] = {}
        try:
            for python in pythons:
                try:
                    venv, version = build(python, wheel.resolve(), root)
                    home = root / f"home-{version}"
                    home.mkdir()
                    results[version] = {
                        "python": python,
                        **measure(venv, fake, runner, home, args.pairs, count_instructions=args.instructions),
                    }
                except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
                    results[python] = {"python": python, "error": str(exc).splitlines()[0]}
                print(f"{python}: {json.dumps(results[list(results)[-1]])}", file=sys.stderr)
        finally:
            runner.close()
            fake.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pythons.json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    (args.out / "pythons.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
