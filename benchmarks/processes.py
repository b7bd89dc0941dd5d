"""Running and timing processes: one run, many at once, interleaved rounds, peak RSS.

Wall times are taken by the harness around ``Popen`` and ``wait``, so they include its own fork and
exec of the child (the same for every tool). Standard library only.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TIME = "/usr/bin/time"  # GNU time (Debian package "time"), for peak RSS

# One command of a round: its name, argv, environment and stdin.
Command = tuple[str, list[str], dict[str, str], bytes]
T = TypeVar("T")


class Sample:
    """One process run: wall time, exit status and output."""

    __slots__ = ("rc", "stderr", "stdout", "wall_ms")

    def __init__(self, wall_ms: float, rc: int, stdout: str, stderr: str) -> None:
        self.wall_ms = wall_ms
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def secret_of(sample: Sample) -> str | None:
    """The Secret of a successful `get`, None for anything else."""
    if sample.rc != 0:
        return None
    try:
        answer = json.loads(sample.stdout)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("Username") != "AWS" or not answer.get("Secret"):
        return None
    return str(answer["Secret"])


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    """``fn(*args, **kwargs)`` and the milliseconds it took, for runs the harness does not spawn itself."""
    started = time.perf_counter()
    done = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000.0, done


class Runner:
    """Runs processes with stdin from bytes and stdout/stderr to files (no pipe can fill up)."""

    def __init__(self, workdir: Path) -> None:
        self._out = open(workdir / "stdout.tmp", "w+b")  # noqa: SIM115 - reused for every run, closed in close()
        self._err = open(workdir / "stderr.tmp", "w+b")  # noqa: SIM115

    def close(self) -> None:
        self._out.close()
        self._err.close()

    def run(self, argv: list[str], env: dict[str, str], stdin: bytes = b"") -> Sample:
        for f in (self._out, self._err):
            f.seek(0)
            f.truncate()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=self._out, stderr=self._err)
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = proc.wait()
        wall = (time.perf_counter() - start) * 1000.0
        return Sample(wall, rc, _read(self._out), _read(self._err))

    def peak_rss_kib(self, argv: list[str], env: dict[str, str], stdin: bytes = b"") -> int:
        """Peak RSS of one run, from GNU time. Not from our own wait4: Linux carries the parent's
        high-water mark across fork and exec, so every child of this (large) harness would report at
        least the harness's RSS; time(1) is a small process, so its child's figure is the program's."""
        report = self._out.name + ".rss"
        sample = self.run([TIME, "-f", "%M", "-o", report, *argv], env, stdin)
        text = Path(report).read_text().strip().splitlines()
        if sample.rc != 0 and not text:
            raise RuntimeError(f"{TIME} {argv} failed: {sample.stderr!r}")
        return int(text[-1])


def _read(f: IO[bytes]) -> str:
    f.seek(0)
    return f.read().decode("utf-8", "replace")


def spawn_many(argv: list[str], env: dict[str, str], stdin: bytes, count: int, workdir: Path) -> list[Sample]:
    """``count`` copies started back to back, then all fed and reaped: they run concurrently."""
    procs = []
    for i in range(count):
        out = open(workdir / f"c{i}.out", "w+b")  # noqa: SIM115 - closed below
        err = open(workdir / f"c{i}.err", "w+b")  # noqa: SIM115
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err)
        procs.append((proc, out, err, start))
    for proc, *_ in procs:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    samples = []
    for proc, out, err, start in procs:
        rc = proc.wait()
        samples.append(Sample((time.perf_counter() - start) * 1000.0, rc, _read(out), _read(err)))
        out.close()
        err.close()
    return samples


def interleave(
    runner: Runner, commands: list[Command], pairs: int, before: Callable[[str], None] | None = None
) -> dict[str, list[Sample]]:
    """Run every command once per round, rotating the order each round; ``before(name)`` runs untimed."""
    results: dict[str, list[Sample]] = {name: [] for name, *_ in commands}
    for name, argv, env, stdin in _rounds(commands, pairs, before, rotate=True):
        results[name].append(runner.run(argv, env, stdin))
    return results


def memory(
    runner: Runner, commands: list[Command], runs: int, before: Callable[[str], None] | None = None
) -> dict[str, list[int]]:
    """Peak RSS of ``runs`` extra runs of each command (untimed)."""
    found: dict[str, list[int]] = {name: [] for name, *_ in commands}
    for name, argv, env, stdin in _rounds(commands, runs, before, rotate=False):
        found[name].append(runner.peak_rss_kib(argv, env, stdin))
    return found


def _rounds(
    commands: list[Command], rounds: int, before: Callable[[str], None] | None, *, rotate: bool
) -> Iterator[Command]:
    """Each command once per round (shifted by one more place each round with ``rotate``), after
    ``before(name)``."""
    for i in range(rounds):
        shift = i % len(commands) if rotate else 0
        for command in commands[shift:] + commands[:shift]:
            if before is not None:
                before(command[0])
            yield command
