"""The results as a Markdown table, and the one table of targets every verdict reads.

``TARGETS`` is DESIGN.md's performance budget ("Performance budget"); ``run.py`` and ``pythons.py``
both judge by it. Standard library only.
"""

from __future__ import annotations

from typing import Any

from cases import CONCURRENCY
from environments import CONTAINER_DELAY

Json = dict[str, Any]

# The performance budget (DESIGN.md, "Performance budget"), in one place: every verdict reads it.
TARGETS = {
    "hit/bare": 1.25,  # a cache hit within 1.25x the bare interpreter that runs it
    "list/bare": 1.25,  # `list` is a hit too
    "cold/aws": 0.75,  # a cold get within 0.75x `aws ecr get-login-password`
    "hit_rss_mib": 20.0,
    "cold_rss_mib": 50.0,
}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def calls_text(calls: dict[str, int]) -> str:
    """``3 (sts 1, imds 2)``: the total, then each operation that was called."""
    total = sum(calls.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{op} {n}" for op, n in calls.items() if n) + ")"


def report(results: Json) -> str:
    """The whole report: the header, the budget table, the cold breakdown, calls per source, notes."""
    lines = header(results)
    lines += ["", "| case | target | ours | reference | ratio | Go helper | result |", "|---|---|---|---|---|---|---|"]
    lines += hit_rows(results["hit_static"], results["hit_container"])
    lines.append(sources_row(results["sources"]))
    lines.append(cold_row(results["cold"]))
    lines.append(concurrent_row(results["concurrent"]))
    lines.append(list_row(results["hit_static"], results["go_list"]))
    lines.append(rss_row(results["hit_static"], results["hit_container"], results["cold"]))
    lines += breakdown_table(results["cold"])
    lines += sources_table(results["sources"])
    if results.get("notes"):
        lines += ["", *results["notes"]]
    return "\n".join(lines) + "\n"


def header(results: Json) -> list[str]:
    m, v = results["machine"], results["versions"]
    return [
        "# docker-credential-ecr benchmark",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['platform']}; "
        f"load average at start {m['load_average_at_start']}; {m['date']}.",
        f"Versions: Python {v['python']}, docker-credential-ecr {v['docker-credential-ecr']}, "
        f"boto3 {v['boto3']}, botocore {v['botocore']}, {v['aws --version']}; Go helper: {v['go helper']} "
        f"(Debian amazon-ecr-credential-helper {v['go helper debian package']}).",
        "Medians of interleaved runs; a ratio is the median of per-pair ratios. Calls are counted by the fakes.",
        "Every tool reaches its fake through a loopback TLS proxy (HTTPS_PROXY, AWS_CA_BUNDLE), as it would AWS."
        if not results.get("direct")
        else "--direct: ours and awscli call their fakes over plain HTTP (AWS_ENDPOINT_URL_*); Go through TLS.",
    ]


def hit_rows(hs: Json, hc: Json) -> list[str]:
    lines = []
    for label, hit, key in (
        ("static keys in env", hs, None),
        (f"container credentials endpoint answering in {int(CONTAINER_DELAY * 1000)} ms", hc, "container"),
    ):
        r, ratio, calls = hit["runs"], hit["ratio"], hit["network_calls"]
        quiet = calls["ours"][key] == 0 if key else not sum(calls["ours"].values())
        lines.append(
            f"| cache hit, {label} ({hit['pairs']} pairs) | ≤ {TARGETS['hit/bare']}x bare python, "
            f"{'0 endpoint calls' if key else 'no network'} | "
            f"{r['ours']['median_ms']} ms, calls {calls_text(calls['ours'])}; "
            f"through pip's console-script template: {r['ours-pip-shim']['median_ms']} ms "
            f"({ratio['ours-pip-shim/bare']}x) | "
            f"bare `python -c pass` {r['bare']['median_ms']} ms | {ratio['ours/bare']}x bare | "
            f"{r['go']['median_ms']} ms (ours/Go {ratio['ours/go']}x), calls {calls_text(calls['go'])} | "
            f"{verdict(ratio['ours/bare'] <= TARGETS['hit/bare'] and quiet)} |"
        )
    return lines


def sources_row(src: Json) -> str:
    ours_total = 0
    parts, go_parts = [], []
    for source, row in src.items():
        ours = row.get("ours", {})
        go = row.get("go", {})
        if "error" in ours:
            parts.append(f"{source}: error")
            ours_total += 1
        else:
            n = sum(ours["network_calls"].values())
            ours_total += n
            parts.append(f"{source} {n}")
        go_parts.append(f"{source} {'error' if 'error' in go else sum(go['network_calls'].values())}")
    hits = next(iter(src.values()))["ours"].get("hits", "?")
    return (
        f"| cache hit, any credential source ({hits} hits each) | 0 network calls | calls: {', '.join(parts)} | | | "
        f"calls: {', '.join(go_parts)} | {verdict(ours_total == 0)} |"
    )


def cold_row(cold: Json) -> str:
    r = cold["runs"]
    return (
        f"| cold `get` ({cold['pairs']} pairs) | ≤ {TARGETS['cold/aws']}x `aws ecr get-login-password` | "
        f"{r['ours']['median_ms']} ms | "
        f"aws {r['aws']['median_ms']} ms | {cold['ratio']['ours/aws']}x aws | "
        f"{r['go']['median_ms']} ms (ours/Go {cold['ratio']['ours/go']}x) | "
        f"{verdict(cold['ratio']['ours/aws'] <= TARGETS['cold/aws'])} |"
    )


def concurrent_row(conc: Json) -> str:
    ours_calls = [c["api_calls"] for c in conc["ours"]]
    ours_fail = [c["failures"] for c in conc["ours"]]
    go_calls = [c["api_calls"] for c in conc["go"]]
    return (
        f"| {CONCURRENCY} concurrent cold `get`s ({len(ours_calls)} rounds) | exactly 1 API call, 0 failures | "
        f"API calls {ours_calls}, failures {ours_fail} | | | API calls {go_calls}, "
        f"failures {[c['failures'] for c in conc['go']]} | "
        f"{verdict(all(c == 1 for c in ours_calls) and not any(ours_fail))} |"
    )


def list_row(hs: Json, gl: Json) -> str:
    r = hs["runs"]
    list_ok = hs["ratio"]["ours-list/bare"] <= TARGETS["list/bare"] and not sum(hs["network_calls"]["ours"].values())
    return (
        f"| `list` ({hs['pairs']} pairs, in the static-hit loop) | no network, ≤ {TARGETS['list/bare']}x bare | "
        f"{r['ours-list']['median_ms']} ms (calls: see the static hit row, same loop) | "
        f"bare {r['bare']['median_ms']} ms | "
        f"{hs['ratio']['ours-list/bare']}x bare | {gl['runs']['median_ms']} ms, calls in "
        f"{gl['runs']['runs']} runs: {calls_text(gl['network_calls'])} | "
        f"{verdict(list_ok)} |"
    )


def rss_row(hs: Json, hc: Json, cold: Json) -> str:
    hit_rss = max(hs["runs"]["ours"]["peak_rss_mib_max"], hc["runs"]["ours"]["peak_rss_mib_max"])
    cold_rss = cold["runs"]["ours"]["peak_rss_mib_max"]
    return (
        f"| peak RSS (max over runs) | ≤ {TARGETS['hit_rss_mib']:g} MiB hit, ≤ {TARGETS['cold_rss_mib']:g} MiB cold | "
        f"hit {hit_rss} MiB, cold {cold_rss} MiB | "
        f"bare {hs['runs']['bare']['peak_rss_mib_max']} MiB, aws {cold['runs']['aws']['peak_rss_mib_max']} MiB | | "
        f"hit {hs['runs']['go']['peak_rss_mib_max']} MiB, cold {cold['runs']['go']['peak_rss_mib_max']} MiB | "
        f"{verdict(hit_rss <= TARGETS['hit_rss_mib'] and cold_rss <= TARGETS['cold_rss_mib'])} |"
    )


def breakdown_table(cold: Json) -> list[str]:
    lines = ["", "Cold `get`, where the time goes (medians, ms):", "", "| phase | ms |", "|---|---|"]
    lines += [f"| {k} | {val} |" for k, val in cold["breakdown"].items() if k != "error"]
    lines.append(
        f"| for comparison: cold `get` through the console script, interleaved median | "
        f"{cold['runs']['ours']['median_ms']} |"
    )
    if "error" in cold["breakdown"]:
        lines.append(f"\nBreakdown error: `{cold['breakdown']['error']}`")
    return lines


def sources_table(src: Json) -> list[str]:
    lines = ["", "Network calls per credential source on cache hits (ours / Go):", ""]
    lines += ["| source | ours | Go helper |", "|---|---|---|"]
    for source, row in src.items():
        cells = []
        for tool in ("ours", "go"):
            t = row.get(tool, {})
            cells.append(
                f"error: {t['error'][:120]}"
                if "error" in t
                else f"{calls_text(t['network_calls'])} in {t['hits']} hits ({t['median_ms']} ms median)"
            )
        lines.append(f"| {source} | {cells[0]} | {cells[1]} |")
    return lines
