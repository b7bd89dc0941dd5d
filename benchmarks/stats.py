"""The figures drawn from samples: medians, ratios of interleaved rounds, a run's summary.

A ratio is the median of per-round ratios: each round runs its commands back to back, so machine
noise mostly cancels. (Not named ``statistics``: this folder is first on ``sys.path`` when a script
here runs, and the standard library's module of that name is used below.)
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from processes import Sample

MIB = 1024.0  # ru_maxrss (and GNU time's %M) is in KiB on Linux


def median(values: list[float]) -> float:
    """The median, NaN for no values (a case that could not run has no figure, not an error)."""
    return statistics.median(values) if values else float("nan")


def pair_ratio(a: list[float], b: list[float]) -> float:
    """Median of a[i] / b[i]: each pair ran back to back, so machine noise mostly cancels."""
    assert len(a) == len(b), (len(a), len(b))
    return median([x / y for x, y in zip(a, b) if y > 0])


def walls(samples: dict[str, list[Sample]]) -> dict[str, list[float]]:
    """Each command's wall times in milliseconds, in run order."""
    return {name: [s.wall_ms for s in runs] for name, runs in samples.items()}


def ratios(walls_ms: dict[str, list[float]], *names: str, digits: int = 2) -> dict[str, float]:
    """``"a/b"`` for each name: the pair ratio of command a's rounds to command b's, rounded."""
    out = {}
    for name in names:
        a, b = name.split("/")
        out[name] = round(pair_ratio(walls_ms[a], walls_ms[b]), digits)
    return out


def summary(samples: list[Sample], rss_kib: list[int]) -> dict[str, float | int | None]:
    """A command's runs: count, median, minimum and 90th percentile (ms), peak RSS (MiB), failures."""
    times = [s.wall_ms for s in samples]
    rss = [k / MIB for k in rss_kib]
    return {
        "runs": len(samples),
        "median_ms": round(median(times), 2),
        "min_ms": round(min(times), 2) if times else None,
        "p90_ms": round(statistics.quantiles(times, n=10)[-1], 2) if len(times) >= 10 else None,
        "peak_rss_mib_median": round(median(rss), 1) if rss else None,
        "peak_rss_mib_max": round(max(rss), 1) if rss else None,
        "failures": sum(1 for s in samples if s.rc != 0),
    }
