"""The benchmark harness's own parts: its statistics, its verdicts, its process runner, its entry points.

The benchmarks themselves are run by hand (``benchmarks/README.md``): timings do not belong in a test.
What is tested here is that the harness computes what it says from known inputs, and that its
scripts still start. The modules beside ``benchmarks/run.py`` import each other by bare name, as
they do when a script there runs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import environments  # noqa: E402
import pythons  # noqa: E402
import report  # noqa: E402
import stats  # noqa: E402
from processes import Runner, Sample, interleave, secret_of  # noqa: E402

while str(BENCHMARKS) in sys.path:  # imported now; leave the other tests' imports as they were
    sys.path.remove(str(BENCHMARKS))

# Every flag of run.py, as benchmarks/README.md and the README use them.
RUN_FLAGS = ("--out", "--pairs", "--cold-pairs", "--rounds", "--hits", "--venv", "--reuse-venv", "--python", "--quick")


def test_median_and_pair_ratio_on_known_inputs() -> None:
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert math.isnan(stats.median([]))
    # per-round ratios 2, 3, 2: the median of the ratios, not the ratio of the medians (5/2)
    assert stats.pair_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 2.0]) == 2.0
    assert stats.pair_ratio([10.0, 5.0, 8.0], [0.0, 5.0, 2.0]) == 2.5  # a zero denominator is skipped
    with pytest.raises(AssertionError):
        stats.pair_ratio([1.0, 2.0], [1.0])
    walls = {"ours": [3.0, 4.0, 5.0], "bare": [2.0, 2.0, 3.0]}
    assert stats.ratios(walls, "ours/bare", "bare/ours") == {"ours/bare": 1.67, "bare/ours": 0.6}
    assert stats.ratios(walls, "ours/bare", digits=3) == {"ours/bare": 1.667}


def test_summary_of_samples() -> None:
    samples = [Sample(float(ms), 1 if ms == 7 else 0, "", "") for ms in range(10, 0, -1)]
    assert stats.walls({"x": samples[:2]}) == {"x": [10.0, 9.0]}
    assert stats.summary(samples, [2048, 3072, 1024]) == {
        "runs": 10,
        "median_ms": 5.5,
        "min_ms": 1.0,
        "p90_ms": 9.9,  # exclusive quantile of 1..10: 9 + 0.9 * (10 - 9)
        "peak_rss_mib_median": 2.0,
        "peak_rss_mib_max": 3.0,
        "failures": 1,
    }
    few = stats.summary(samples[:9], [])
    assert (few["p90_ms"], few["peak_rss_mib_max"], few["peak_rss_mib_median"]) == (None, None, None)


def test_secret_of_accepts_only_a_successful_get() -> None:
    answer = json.dumps({"ServerURL": "h", "Username": "AWS", "Secret": "s3cr3t"})
    assert secret_of(Sample(1.0, 0, answer, "")) == "s3cr3t"
    assert secret_of(Sample(1.0, 1, answer, "")) is None
    assert secret_of(Sample(1.0, 0, answer.replace('"AWS"', '"x"'), "")) is None
    assert secret_of(Sample(1.0, 0, '{"Username": "AWS", "Secret": ""}', "")) is None
    assert secret_of(Sample(1.0, 0, "credentials not found in native keychain", "")) is None
    assert secret_of(Sample(1.0, 0, "[]", "")) is None


def test_runner_feeds_stdin_and_captures_a_real_process(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    code = "import sys; print(sys.stdin.read().upper()); sys.stderr.write('warned'); sys.exit(3)"
    try:
        first = runner.run([sys.executable, "-c", code], {}, b"abc")
        second = runner.run([sys.executable, "-c", "print('x')"], {})
    finally:
        runner.close()
    assert (first.rc, first.stdout, first.stderr) == (3, "ABC\n", "warned")
    assert (second.rc, second.stdout, second.stderr) == (0, "x\n", "")  # the files were emptied between runs
    assert first.wall_ms > 0


def test_interleave_rotates_the_order_each_round(tmp_path: Path) -> None:
    log = tmp_path / "order"
    commands: list[Any] = [
        (name, ["/bin/sh", "-c", f"echo {name} >> {log}"], {"PATH": "/usr/bin:/bin"}, b"") for name in "abc"
    ]
    untimed: list[str] = []
    runner = Runner(tmp_path)
    try:
        samples = interleave(runner, commands, 4, untimed.append)
    finally:
        runner.close()
    assert log.read_text().split() == list("abcbcacababc")
    assert untimed == log.read_text().split()  # before(name) ran ahead of every run
    assert {name: len(runs) for name, runs in samples.items()} == {"a": 4, "b": 4, "c": 4}


def _results(*, hit_ratio: float, hit_calls: int = 0, cold_ratio: float = 0.5) -> dict[str, Any]:
    """The smallest results.json that report() renders, with the figures the verdicts read."""
    calls = dict.fromkeys(environments.NETWORK_OPS, 0)
    run = {"median_ms": 10.0, "runs": 5, "peak_rss_mib_max": 9.0}
    hit = {
        "pairs": 40,
        "runs": dict.fromkeys(("bare", "ours", "ours-pip-shim", "ours-list", "go"), run),
        "ratio": {"ours/bare": hit_ratio, "ours-pip-shim/bare": 1.7, "ours-list/bare": hit_ratio, "ours/go": 3.0},
        "network_calls": {"ours": {**calls, "ecr": hit_calls}, "go": calls},
    }
    source = {"hits": 10, "network_calls": calls, "median_ms": 10.0}
    return {
        "machine": {
            "cpu": "cpu",
            "cpus": 2,
            "memory_gib": 1,
            "platform": "p",
            "load_average_at_start": [0],
            "date": "d",
        },
        "versions": dict.fromkeys(
            ("python", "docker-credential-ecr", "boto3", "botocore", "aws --version", "go helper"), "v"
        )
        | {"go helper debian package": "v"},
        "hit_static": hit,
        "hit_container": hit,
        "go_list": {"runs": run, "network_calls": calls},
        "sources": {s: {"ours": source, "go": source} for s in environments.SOURCES},
        "cold": {
            "pairs": 30,
            "runs": dict.fromkeys(("bare", "ours", "aws", "go"), run),
            "ratio": {"ours/aws": cold_ratio, "ours/go": 4.0},
            "breakdown": {"import botocore (docker_credential_ecr.aws)": 150.0},
        },
        "concurrent": {"ours": [{"api_calls": 1, "failures": 0}], "go": [{"api_calls": 32, "failures": 0}]},
        "notes": ["a note"],
    }


def _verdicts(text: str) -> dict[str, str]:
    table = [line for line in text.splitlines() if line.startswith("| ") and line.endswith(("met |", "**missed** |"))]
    return {line.split(" | ")[0][2:].split(" (")[0]: line.rsplit(" | ", 1)[1].rstrip(" |") for line in table}


def test_report_judges_each_row_by_the_targets_table() -> None:
    target = report.TARGETS["hit/bare"]
    assert target == 1.25  # DESIGN.md, "Performance budget": a hit within 1.25x of the bare interpreter
    met = _verdicts(report.report(_results(hit_ratio=target)))
    assert len(met) == 7  # two hit rows, any source, cold, concurrency, list, peak RSS
    assert set(met.values()) == {"met"}
    slow = _verdicts(report.report(_results(hit_ratio=round(target + 0.01, 2), cold_ratio=0.76)))
    assert slow["cache hit, static keys in env"] == "**missed**"
    assert slow["`list`"] == "**missed**"
    assert slow["cold `get`"] == "**missed**"
    assert slow["peak RSS"] == "met"
    noisy = _verdicts(report.report(_results(hit_ratio=1.0, hit_calls=1)))
    assert noisy["cache hit, static keys in env"] == "**missed**"  # a hit that called ECR
    text = report.report(_results(hit_ratio=1.0))
    assert f"≤ {target}x bare python" in text
    assert text.endswith("\na note\n")


def test_pythons_judges_by_the_same_target() -> None:
    def row(ratio: float) -> str:
        result = {
            "median_ms": {"bare": 1, "launcher": 1, "pip-shim": 1},
            "ratio": {"launcher/bare": ratio, "pip-shim/bare": 2},
        }
        return pythons.table({"3.x": result}).splitlines()[-1]

    target = report.TARGETS["hit/bare"]
    assert row(target).endswith("| yes |")
    assert row(target + 0.01).endswith("| **no** |")


def test_pythons_shows_instruction_counts_when_measured() -> None:
    """--instructions adds the callgrind counts and their ratio; without it the column is absent."""
    result = {
        "median_ms": {"bare": 10, "launcher": 12, "pip-shim": 17},
        "ratio": {"launcher/bare": 1.2, "pip-shim/bare": 1.7},
    }
    counted = {
        **result,
        "instructions": {"bare": 38_000_000, "launcher": 44_840_000, "pip-shim": 60_000_000},
        "instructions_ratio": {"launcher/bare": 1.18, "pip-shim/bare": 1.579},
    }
    plain = pythons.table({"3.x": result}).splitlines()
    assert "instructions" not in plain[0]
    lines = pythons.table({"3.x": counted, "3.y": result}).splitlines()
    assert lines[0].endswith("| instructions, launcher / bare |")
    assert lines[2].endswith("| 44.8M / 38.0M = 1.18x |")
    assert lines[3].endswith("| yes | |")  # a version measured without counts keeps the table square
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_sso_token_file_is_named_as_each_layout_expects(tmp_path: Path) -> None:
    # botocore and the Go SDK look the token up by the SHA-1 of the session name (sha1("bench")), or
    # in the legacy layout of the start URL (sha1("https://bench.awsapps.com/start")).
    for legacy, digest in (
        (False, "e5c89c529dccb9b42716f4d9118d61079c883d9e"),
        (True, "3a7256fa5cc1f5ce07ba5f866caffd633d0ab41b"),
    ):
        home = tmp_path / str(legacy)
        (home / ".aws").mkdir(parents=True)
        env = environments.credential_source("sso", home, "http://127.0.0.1:1", legacy_sso=legacy)
        assert env == {"AWS_PROFILE": "bench-sso"}
        token = home / ".aws" / "sso" / "cache" / f"{digest}.json"
        assert json.loads(token.read_text())["accessToken"] == "bench-sso-access-token"
        assert ("sso_session = bench" in (home / ".aws" / "config").read_text()) is not legacy
    with pytest.raises(ValueError, match="nowhere"):
        environments.credential_source("nowhere", tmp_path, "http://127.0.0.1:1")


@pytest.mark.parametrize(
    ("script", "flags"),
    [
        ("run.py", (*RUN_FLAGS, "--direct")),
        ("pythons.py", ("--pairs", "--wheel", "--out")),
        ("daemon_pull.py", ("--rounds", "--out")),
    ],
)
def test_entry_points_start_and_keep_their_flags(script: str, flags: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for flag in flags:
        assert f" {flag}" in done.stdout, flag
