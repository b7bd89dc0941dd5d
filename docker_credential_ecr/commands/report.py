"""doctor's report: the :class:`Section` type its checks fill in, and its text and JSON renderings.

The checks themselves are in :mod:`doctor`; this module knows nothing of AWS, Docker or the cache,
only facts (JSON-ready values) and problems (a failure or a warning), and how to print them.
"""

from __future__ import annotations

import json
import time

from docker_credential_ecr import __version__
from docker_credential_ecr.commands.cache import relative
from docker_credential_ecr.commands.dockerconfig import EXECUTABLE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

FAIL, WARN = "fail", "warn"


class Section:
    """One part of the report: facts (JSON-ready) and problems, each a failure or a warning."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.facts: dict[str, object] = {}
        self.problems: list[tuple[str, str]] = []
        self.skipped: str | None = None

    def fail(self, message: str) -> None:
        self.problems.append((FAIL, message))

    def warn(self, message: str) -> None:
        self.problems.append((WARN, message))

    @property
    def status(self) -> str:
        levels = {level for level, _ in self.problems}
        if FAIL in levels:
            return "failed"
        if WARN in levels:
            return "warning"
        return "skipped" if self.skipped else "ok"

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"status": self.status}
        if self.skipped:
            doc["skipped"] = self.skipped
        doc.update(self.facts)
        doc["problems"] = [{"level": level, "message": message} for level, message in self.problems]
        return doc


def report_json(server_url: str | None, sections: list[Section]) -> str:
    ok = not failed(sections)
    doc = {
        "ok": ok,
        "version": __version__,
        "registry": server_url,
        "sections": {s.name: s.to_json() for s in sections},
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


TITLES = {
    "registry": "Registry",
    "environment": "Environment",
    "docker": "Docker",
    "credentials": "AWS credentials",
    "cache": "Token cache",
    "fetch": "Live token fetch",
    "registry_auth": "Cached token at the registry",
}


def report_text(server_url: str | None, sections: list[Section], now: float) -> str:
    lines = [f"{EXECUTABLE} doctor (docker-credential-ecr {__version__})" + (f": {server_url}" if server_url else "")]
    for section in sections:
        lines.append("")
        title = TITLES.get(section.name, section.name)
        status = section.status.upper() if section.status in ("failed", "warning") else section.status
        lines.append(f"{title}: {status}" + (f" ({section.skipped})" if section.skipped else ""))
        # The error is the failure line below; JSON has it as a fact too, for scripts.
        _fact_lines(lines, {k: v for k, v in section.facts.items() if k != "error"}, "  ", now)
        for level, message in section.problems:
            lines.append(f"  {'FAILED' if level == FAIL else 'warning'}: {message}")
    failures = [TITLES.get(s.name, s.name) for s in sections if any(lv == FAIL for lv, _ in s.problems)]
    warnings = sum(1 for s in sections for lv, _ in s.problems if lv == WARN)
    lines.append("")
    if failures:
        lines.append(f"Result: FAILED ({', '.join(failures)})" + (f", {warnings} warning(s)" if warnings else ""))
    else:
        lines.append("Result: ok" + (f", {warnings} warning(s)" if warnings else ""))
    return "\n".join(lines) + "\n"


def _fact_lines(lines: list[str], facts: Mapping[str, object], indent: str, now: float) -> None:
    width = max((len(k) for k in facts), default=0) + 2
    for key, value in facts.items():
        label = key.replace("_", " ") if key.islower() else key  # variable names stay as they are
        if isinstance(value, dict):
            if not value:
                lines.append(f"{indent}{label}: -")
                continue
            lines.append(f"{indent}{label}:")
            _fact_lines(lines, value, indent + "  ", now)
            continue
        lines.append(f"{indent}{label + ':':<{width}} {_text(key, value, now)}")


def _text(key: str, value: object, now: float) -> str:  # noqa: PLR0911 - one return per kind of value
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "-"
    if key.endswith("_at") and isinstance(value, str):
        epoch = _epoch(value)
        return f"{value} ({relative(epoch, now)})" if epoch is not None else value
    if key.endswith("_seconds") and isinstance(value, (int, float)):
        return f"{value:g} s"
    if key == "elapsed_ms":
        return f"{value} ms"
    return str(value)


def _epoch(text: str) -> float | None:
    import calendar

    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def failed(sections: list[Section]) -> bool:
    """Whether any section failed (doctor exits 1 then)."""
    return any(level == FAIL for s in sections for level, _ in s.problems)
