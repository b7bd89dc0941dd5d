"""Benchmark docker-credential-ecr against the Go helper and ``aws ecr get-login-password``.

One command, standard library only, a few minutes on a 2-core machine::

    python3 benchmarks/run.py [--out DIR] [--pairs 40] [--cold-pairs 30] [--quick]

What it does, all against local fakes of AWS (``tests/fakeecr.py``), nothing else on the network:

1. Builds a fresh venv with a NON-editable install of this checkout and awscli (an editable
   install's ``.pth`` import hook would add start-up cost that users never pay).
2. Starts three fake AWS endpoints, one per tool, so that each tool's network calls are counted
   on their own, and a loopback TLS proxy for the Go helper (``tlsproxy.py`` says why).
3. Runs the cases of the performance budget in DESIGN.md. Timed runs are interleaved (bare
   interpreter, ours, Go, ... in one loop, rotating the order), medians are reported, and each
   ratio is the median of the per-pair ratios. Peak RSS comes from extra runs under GNU time.
4. Writes ``results.json`` and ``results.md`` to the output directory and prints the table.

The numbers are measurements, not assertions: the script exits 0 whatever they are (1 only when it
cannot run). Rows whose target is missed say so in the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tlsproxy import TLSProxy, ca_bundle, make_certificate  # beside this script, not in a package

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "fakeecr.py"
TIME = "/usr/bin/time"  # GNU time (Debian package "time"), for peak RSS
GO_HELPER = "/usr/bin/docker-credential-ecr-login"  # Debian amazon-ecr-credential-helper; same name as ours
ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
REGION = "us-east-1"
STATIC_KEY_ID = "AKIAFAKEFAKEFAKE0001"
STATIC_SECRET = "fakeSecretAccessKeyFakeSecretAccessKey00"  # the fake's, not a real secret
NETWORK_OPS = ("ecr", "ecr-public", "sts", "sso", "container", "imds")
CONTAINER_DELAY = 0.020  # the container credential endpoint answers in 20 ms
CONCURRENCY = 32
MEMORY_RUNS = 5  # extra runs of each command under time(1), for peak RSS
DEFAULT_VENV = Path(tempfile.gettempdir()) / "docker-credential-ecr-bench-venv"
MIB = 1024.0  # ru_maxrss is in KiB on Linux

Json = dict[str, Any]

# The performance budget (DESIGN.md, "Performance budget"), in one place: every verdict reads it.
TARGETS = {
    "hit/bare": 1.25,  # a cache hit within 1.25x the bare interpreter that runs it
    "list/bare": 1.25,  # `list` is a hit too
    "cold/aws": 0.75,  # a cold get within 0.75x `aws ecr get-login-password`
    "hit_rss_mib": 20.0,
    "cold_rss_mib": 50.0,
}


# -- running one process --------------------------------------------------------------------------


class Sample:
    """One process run: wall time, exit status and output."""

    __slots__ = ("rc", "stderr", "stdout", "wall_ms")

    def __init__(self, wall_ms: float, rc: int, stdout: str, stderr: str) -> None:
        self.wall_ms = wall_ms
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


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


def _read(f: Any) -> str:
    f.seek(0)
    return str(f.read().decode("utf-8", "replace"))


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


# -- the fake AWS endpoint ------------------------------------------------------------------------


class Fake:
    """``tests/fakeecr.py`` in its own process, driven through its loopback control plane."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        ready = workdir / f"fake-{name}.url"
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE), "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / f"fake-{name}.log", "wb"),  # noqa: SIM115 - the child owns it
        )
        deadline = time.monotonic() + 20
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fake AWS endpoint {name!r} did not start (see {workdir})")
            time.sleep(0.02)
        self.url = ready.read_text().strip()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, route: str, payload: Json | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_fake/{route}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with self._opener.open(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def calls(self) -> dict[str, int]:
        """Requests per operation so far; STS actions are summed as "sts"."""
        raw: dict[str, int] = self._call("GET", "calls")["calls"]
        counts = dict.fromkeys(NETWORK_OPS, 0)
        for op, n in raw.items():
            key = "sts" if op.startswith("sts:") else op
            counts[key] = counts.get(key, 0) + n
        return counts

    def slow(self, op: str, seconds: float) -> None:
        self._call("POST", "fault", {"op": op, "kind": "slow", "times": None, "delay": seconds})

    def clear_faults(self) -> None:
        self._call("POST", "clear-faults", {})

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {op: after.get(op, 0) - before.get(op, 0) for op in NETWORK_OPS}


# -- tools and their environments -------------------------------------------------------------------


class Tools:
    """The programs under test, by absolute path (ours and Go's share a name)."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.python = str(venv / "bin" / "python")
        self.ours = str(venv / "bin" / "docker-credential-ecr-login")
        self.aws = str(venv / "bin" / "aws")
        self.go = GO_HELPER
        self.ours_pip_shim = str(venv / "bin" / "docker-credential-ecr-login-pip-shim")

    def default_ca_bundle(self) -> str:
        """The CA bundle botocore verifies AWS with (certifi's, or botocore's own copy)."""
        code = "from botocore.httpsession import get_cert_path; print(get_cert_path(True))"
        return subprocess.run([self.python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()

    def write_pip_shim(self) -> None:
        """Our helper behind pip's console-script template, for comparison with the installed launcher.

        The wheel ships its own launchers (``packaging/wheel-scripts``), which pip installs as they are.
        A ``[project.scripts]`` entry point would get pip's generated script instead (distlib's and
        installer's are the same), which runs ``import re`` before it imports the package, to tidy
        ``sys.argv[0]`` on Windows: about half a bare interpreter start the helper does not need.
        """
        path = Path(self.ours_pip_shim)
        path.write_text(
            f"#!{self.python}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
            "from docker_credential_ecr.cli import main\n"
            'if __name__ == "__main__":\n'
            '    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])\n'
            "    sys.exit(main())\n"
        )
        path.chmod(0o755)


def build_venv(venv: Path, python: str, *, reuse: bool) -> Tools:
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    if reuse and (venv / "bin" / "python").exists():
        # Keep awscli and the dependencies; reinstall only this checkout (non-editable).
        steps = [[*pip, "install", "--force-reinstall", "--no-deps", str(REPO)]]
    else:
        shutil.rmtree(venv, ignore_errors=True)
        steps = [[python, "-m", "venv", str(venv)], [*pip, "install", str(REPO), "awscli"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{done.stdout}\n{done.stderr}")
    tools = Tools(venv)
    tools.write_pip_shim()
    return tools


def versions(tools: Tools) -> Json:
    code = (
        "import importlib.metadata as m, sys, json; "
        "print(json.dumps({'python': sys.version.split()[0], **{p: m.version(p) for p in "
        "('docker-credential-ecr', 'boto3', 'botocore', 'awscli', 'filelock', 'platformdirs')}}))"
    )
    found: Json = json.loads(subprocess.run([tools.python, "-c", code], capture_output=True, check=True).stdout)
    aws = subprocess.run([tools.aws, "--version"], capture_output=True, text=True, check=False)
    found["aws --version"] = (aws.stdout or aws.stderr).strip()
    go = subprocess.run([tools.go, "-v"], capture_output=True, text=True, check=False)
    found["go helper"] = " ".join(go.stdout.split())
    deb = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "amazon-ecr-credential-helper"],
        capture_output=True,
        text=True,
        check=False,
    )
    found["go helper debian package"] = deb.stdout.strip() or "unknown"
    return found


def machine() -> Json:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


class Homes:
    """A fresh HOME, cache directories and environment per (case, tool), sealed from the machine's.

    Each tool reaches its own fake through its own TLS proxy, as it would reach AWS (HTTPS_PROXY,
    AWS_CA_BUNDLE); with ``direct``, ours and awscli use ``AWS_ENDPOINT_URL_*`` over plain HTTP instead
    (no TLS: cheaper than real life), and only the Go helper, which cannot, uses its proxy.
    """

    def __init__(self, root: Path, fakes: dict[str, Fake], proxies: dict[str, TLSProxy], *, direct: bool) -> None:
        self.root = root
        self.fakes = fakes
        self.proxies = proxies
        self.direct = direct

    def make(self, case: str, tool: str, source: str) -> dict[str, str]:
        home = self.root / case / tool / "home"
        shutil.rmtree(home.parent, ignore_errors=True)
        (home / ".aws").mkdir(parents=True)
        fake = self.fakes[tool]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ECR_CACHE_DIR": str(home.parent / "ecr-cache"),
        }
        if tool == "go" or not self.direct:
            env.update(self.proxies[tool].env())
        else:
            for name in ("", "_ECR", "_ECR_PUBLIC", "_STS", "_SSO"):
                env[f"AWS_ENDPOINT_URL{name}"] = fake.url
        env.update(credential_source(source, home, fake.url, legacy_sso=tool == "go"))
        return env


def credential_source(source: str, home: Path, fake_url: str, *, legacy_sso: bool = False) -> dict[str, str]:
    """Files under ``home`` and variables for one way of getting AWS credentials.

    SSO uses the ``[sso-session]`` layout that ``aws configure sso`` writes today; with
    ``legacy_sso`` the older one (start URL in the profile), because the Go helper 0.6.0 panics on
    the newer layout ("configured to use SSO but is missing required config").
    """
    aws = home / ".aws"
    if source == "static":
        return {"AWS_ACCESS_KEY_ID": STATIC_KEY_ID, "AWS_SECRET_ACCESS_KEY": STATIC_SECRET}
    if source == "profile":
        (aws / "credentials").write_text(
            f"[bench]\naws_access_key_id = {STATIC_KEY_ID}\naws_secret_access_key = {STATIC_SECRET}\n"
        )
        (aws / "config").write_text(f"[profile bench]\nregion = {REGION}\n")
        return {"AWS_PROFILE": "bench"}
    if source == "sso":
        start_url = "https://bench.awsapps.com/start"
        role = f"sso_account_id = {ACCOUNT}\nsso_role_name = BenchRole\nregion = {REGION}\n"
        if legacy_sso:
            (aws / "config").write_text(
                f"[profile bench-sso]\nsso_start_url = {start_url}\nsso_region = {REGION}\n{role}"
            )
        else:
            (aws / "config").write_text(
                f"[profile bench-sso]\nsso_session = bench\n{role}\n"
                f"[sso-session bench]\nsso_start_url = {start_url}\nsso_region = {REGION}\n"
            )
        # The token `aws sso login` would leave, in a file named by the SHA-1 of the session name
        # (or of the start URL, in the legacy layout).
        cache = aws / "sso" / "cache"
        cache.mkdir(parents=True)
        token = {
            "startUrl": start_url,
            "region": REGION,
            "accessToken": "bench-sso-access-token",
            "expiresAt": "2099-01-01T00:00:00Z",
        }
        name = start_url if legacy_sso else "bench"
        (cache / (hashlib.sha1(name.encode()).hexdigest() + ".json")).write_text(json.dumps(token))
        return {"AWS_PROFILE": "bench-sso"}
    if source == "web-identity":
        token_file = home / "web-identity-token"
        token_file.write_text("eyJhbGciOiJub25lIn0.eyJzdWIiOiJiZW5jaCJ9.c2ln")
        return {
            "AWS_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/bench-web-identity",
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_SESSION_NAME": "bench",
            "AWS_REGION": REGION,
        }
    if source == "imds":
        return {"AWS_EC2_METADATA_DISABLED": "", "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake_url + "/"}
    if source == "container":
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": fake_url + "/container-credentials"}
    raise ValueError(source)


def clean(env: dict[str, str]) -> dict[str, str]:
    """An empty value means "unset" (AWS_EC2_METADATA_DISABLED for IMDS)."""
    return {k: v for k, v in env.items() if v != ""}


def wipe_cache(env: dict[str, str]) -> None:
    shutil.rmtree(env["AWS_ECR_CACHE_DIR"], ignore_errors=True)


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


# -- statistics -----------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pair_ratio(a: list[float], b: list[float]) -> float:
    """Median of a[i] / b[i]: each pair ran back to back, so machine noise mostly cancels."""
    assert len(a) == len(b), (len(a), len(b))
    return median([x / y for x, y in zip(a, b) if y > 0])


def summary(samples: list[Sample], rss_kib: list[int]) -> Json:
    walls = [s.wall_ms for s in samples]
    rss = [k / MIB for k in rss_kib]
    return {
        "runs": len(samples),
        "median_ms": round(median(walls), 2),
        "min_ms": round(min(walls), 2) if walls else None,
        "p90_ms": round(statistics.quantiles(walls, n=10)[-1], 2) if len(walls) >= 10 else None,
        "peak_rss_mib_median": round(median(rss), 1) if rss else None,
        "peak_rss_mib_max": round(max(rss), 1) if rss else None,
        "failures": sum(1 for s in samples if s.rc != 0),
    }


def interleave(
    runner: Runner, commands: list[tuple[str, list[str], dict[str, str], bytes]], pairs: int, before: Any = None
) -> dict[str, list[Sample]]:
    """Run every command once per round, rotating the order each round; ``before(name)`` runs untimed."""
    results: dict[str, list[Sample]] = {name: [] for name, *_ in commands}
    for i in range(pairs):
        shift = i % len(commands)
        for name, argv, env, stdin in commands[shift:] + commands[:shift]:
            if before is not None:
                before(name)
            results[name].append(runner.run(argv, env, stdin))
    return results


def memory(
    runner: Runner, commands: list[tuple[str, list[str], dict[str, str], bytes]], runs: int, before: Any = None
) -> dict[str, list[int]]:
    """Peak RSS of ``runs`` extra runs of each command (untimed)."""
    found: dict[str, list[int]] = {name: [] for name, *_ in commands}
    for _ in range(runs):
        for name, argv, env, stdin in commands:
            if before is not None:
                before(name)
            found[name].append(runner.peak_rss_kib(argv, env, stdin))
    return found


# -- the cases ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, tools: Tools, root: Path, pairs: int, cold_pairs: int, rounds: int, *, direct: bool) -> None:
        self.tools = tools
        self.root = root
        self.pairs = pairs
        self.cold_pairs = cold_pairs
        self.rounds = rounds
        self.runner = Runner(root)
        self.fakes = {tool: Fake(tool, root) for tool in ("ours", "go", "aws")}
        cert, key = make_certificate(root / "proxy")
        bundle = ca_bundle(cert, Path(tools.default_ca_bundle()), root / "proxy" / "ca-bundle.pem")
        # botocore verifies AWS against certifi's ~150 roots, so ours and awscli get those plus the proxy's
        # certificate. Go would load the system roots on its first handshake (none on a hit), but with
        # AWS_CA_BUNDLE set its SDK reads the bundle on every run, hits included: it gets the one
        # certificate, the least it can be given (its cold runs skip parsing ~150 roots: a little
        # optimistic for Go).
        self.proxies = {
            tool: TLSProxy(fake.url, cert, key, cert if tool == "go" else bundle).__enter__()
            for tool, fake in self.fakes.items()
        }
        self.homes = Homes(root, self.fakes, self.proxies, direct=direct)

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.__exit__(None, None, None)
        for fake in self.fakes.values():
            fake.stop()
        self.runner.close()

    def bare(self) -> tuple[str, list[str], dict[str, str], bytes]:
        return ("bare", [self.tools.python, "-c", "pass"], {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, b"")

    def get(self, tool: str, env: dict[str, str]) -> tuple[str, list[str], dict[str, str], bytes]:
        exe = self.tools.go if tool == "go" else self.tools.ours
        return (f"{tool}", [exe, "get"], clean(env), HOST.encode() + b"\n")

    def warm(self, tool: str, env: dict[str, str]) -> str:
        sample = self.runner.run(*self.get(tool, env)[1:])
        secret = secret_of(sample)
        if secret is None:
            raise RuntimeError(f"{tool} could not warm its cache: rc={sample.rc} {sample.stdout!r} {sample.stderr!r}")
        return secret

    def hit(self, case: str, source: str) -> Json:
        """Interleaved cache hits: bare interpreter, ours `get`, ours `list`, Go `get`."""
        envs = {tool: self.homes.make(case, tool, source) for tool in ("ours", "go")}
        secrets = {tool: self.warm(tool, envs[tool]) for tool in envs}
        commands = [
            self.bare(),
            self.get("ours", envs["ours"]),
            ("ours-pip-shim", [self.tools.ours_pip_shim, "get"], clean(envs["ours"]), HOST.encode() + b"\n"),
            ("ours-list", [self.tools.ours, "list"], clean(envs["ours"]), b""),
            self.get("go", envs["go"]),
        ]
        for _ in range(3):  # untimed warm-up: page cache, pyc files
            for _, argv, env, stdin in commands:
                self.runner.run(argv, env, stdin)
        before = {tool: self.fakes[tool].calls() for tool in envs}
        samples = interleave(self.runner, commands, self.pairs)
        calls = {tool: diff(self.fakes[tool].calls(), before[tool]) for tool in envs}
        rss = memory(self.runner, commands, MEMORY_RUNS)
        walls = {name: [s.wall_ms for s in runs] for name, runs in samples.items()}
        served_from_cache = {
            tool: sum(1 for s in samples[tool] if secret_of(s) == secrets[tool.split("-")[0]])
            for tool in ("ours", "ours-pip-shim", "go")
        }
        return {
            "pairs": self.pairs,
            "runs": {name: summary(runs, rss[name]) for name, runs in samples.items()},
            "ratio": {
                "ours/bare": round(pair_ratio(walls["ours"], walls["bare"]), 2),
                "ours-pip-shim/bare": round(pair_ratio(walls["ours-pip-shim"], walls["bare"]), 2),
                "ours-list/bare": round(pair_ratio(walls["ours-list"], walls["bare"]), 2),
                "ours/go": round(pair_ratio(walls["ours"], walls["go"]), 2),
                "go/bare": round(pair_ratio(walls["go"], walls["bare"]), 2),
            },
            "network_calls": calls,
            "answers_from_cache": served_from_cache,
        }

    def go_list(self) -> Json:
        env = self.homes.make("go-list", "go", "static")
        self.warm("go", env)
        before = self.fakes["go"].calls()
        runs = [self.runner.run([self.tools.go, "list"], clean(env)) for _ in range(5)]
        return {"runs": summary(runs, []), "network_calls": diff(self.fakes["go"].calls(), before)}

    def sources(self, hits: int) -> Json:
        """Every credential source: one `get` warms the cache, then ``hits`` gets must stay off the network."""
        out: Json = {}
        for source in ("static", "profile", "sso", "web-identity", "imds", "container"):
            row: Json = {}
            for tool in ("ours", "go"):
                env = self.homes.make(f"source-{source}", tool, source)
                try:
                    secret = self.warm(tool, env)
                except RuntimeError as exc:
                    row[tool] = {"error": str(exc)[:400]}
                    continue
                before = self.fakes[tool].calls()
                runs = [self.runner.run(*self.get(tool, env)[1:]) for _ in range(hits)]
                row[tool] = {
                    "hits": hits,
                    "network_calls": diff(self.fakes[tool].calls(), before),
                    "answers_from_cache": sum(1 for s in runs if secret_of(s) == secret),
                    "median_ms": round(median([s.wall_ms for s in runs]), 2),
                }
            out[source] = row
        return out

    def cold(self) -> Json:
        """Interleaved cold `get`s (each tool's cache wiped first) and `aws ecr get-login-password`."""
        envs = {tool: self.homes.make("cold", tool, "static") for tool in ("ours", "go", "aws")}
        aws_env = clean({**envs["aws"], "AWS_DEFAULT_REGION": REGION})
        commands = [
            self.bare(),
            self.get("ours", envs["ours"]),
            ("aws", [self.tools.aws, "ecr", "get-login-password", "--region", REGION], aws_env, b""),
            self.get("go", envs["go"]),
        ]

        def before(name: str) -> None:
            if name in ("ours", "go"):
                wipe_cache(envs[name])

        for _, argv, env, stdin in commands:  # untimed warm-up
            for tool in ("ours", "go"):
                wipe_cache(envs[tool])
            self.runner.run(argv, env, stdin)
        calls_before = {tool: self.fakes[tool].calls() for tool in envs}
        samples = interleave(self.runner, commands, self.cold_pairs, before)
        calls = {tool: diff(self.fakes[tool].calls(), calls_before[tool]) for tool in envs}
        rss = memory(self.runner, commands, MEMORY_RUNS, before)
        walls = {name: [s.wall_ms for s in runs] for name, runs in samples.items()}
        return {
            "pairs": self.cold_pairs,
            "runs": {name: summary(runs, rss[name]) for name, runs in samples.items()},
            "ratio": {
                "ours/aws": round(pair_ratio(walls["ours"], walls["aws"]), 2),
                "ours/go": round(pair_ratio(walls["ours"], walls["go"]), 2),
                "aws/bare": round(pair_ratio(walls["aws"], walls["bare"]), 2),
            },
            "network_calls": calls,
            "breakdown": self.cold_breakdown(envs["ours"], median(walls["bare"])),
        }

    def cold_breakdown(self, env: dict[str, str], bare_ms: float) -> Json:
        """Where a cold `get` spends its time: BREAKDOWN run 10 times by the venv's interpreter
        (medians); the process's own wall time minus the bare interpreter and the timed phases is
        what is left: interpreter exit (freeing botocore's objects) and the script wrapper."""
        phases: dict[str, list[float]] = {}
        walls: list[float] = []
        error = None
        for _ in range(10):
            wipe_cache(env)
            sample = self.runner.run([self.tools.python, "-c", BREAKDOWN], clean(env))
            try:
                measured = json.loads(sample.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                error = (sample.stdout + sample.stderr)[-400:]
                break
            walls.append(sample.wall_ms)
            for key, value in measured.items():
                phases.setdefault(key, []).append(value)
        result: Json = {"interpreter start (bare `python -c pass`, cold loop median)": round(bare_ms, 1)}
        result.update({k: round(median(v), 1) for k, v in phases.items()})
        if walls:
            result["interpreter exit and the rest"] = round(median(walls) - sum(result.values()), 1)
            result["total (median wall of these runs)"] = round(median(walls), 1)
        if error:
            result["error"] = error
        return result

    def concurrent(self) -> Json:
        """32 `get`s started together on an empty cache: how many API calls, how many failures."""
        out: Json = {}
        for tool in ("ours", "go"):
            env = self.homes.make("concurrent", tool, "static")
            _, argv, cenv, stdin = self.get(tool, env)
            rounds = []
            for _ in range(self.rounds):
                wipe_cache(env)
                before = self.fakes[tool].calls()
                samples = spawn_many(argv, cenv, stdin, CONCURRENCY, self.root)
                calls = diff(self.fakes[tool].calls(), before)
                secrets = {secret_of(s) for s in samples}
                rounds.append(
                    {
                        "api_calls": calls["ecr"] + calls["ecr-public"],
                        "failures": sum(1 for s in samples if secret_of(s) is None),
                        "distinct_tokens": len(secrets - {None}),
                        "slowest_ms": round(max(s.wall_ms for s in samples), 1),
                    }
                )
            out[tool] = rounds
        return out

    def container_hits(self) -> Json:
        for fake in (self.fakes["ours"], self.fakes["go"]):
            fake.slow("container", CONTAINER_DELAY)
        try:
            return self.hit("hit-container", "container")
        finally:
            for fake in (self.fakes["ours"], self.fakes["go"]):
                fake.clear_faults()


# Where a cold `get` spends its time, timed inside the venv's interpreter: the real `get`
# (cli.main, as the console script runs it) with timers around the botocore steps it takes.
BREAKDOWN = r"""
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


# -- the report -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def calls_text(calls: dict[str, int]) -> str:
    total = sum(calls.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{op} {n}" for op, n in calls.items() if n) + ")"


def report(results: Json) -> str:
    m, v = results["machine"], results["versions"]
    hs, hc, cold = results["hit_static"], results["hit_container"], results["cold"]
    lines = [
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
        "",
        "| case | target | ours | reference | ratio | Go helper | result |",
        "|---|---|---|---|---|---|---|",
    ]
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
    src = results["sources"]
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
    lines.append(
        f"| cache hit, any credential source ({hits} hits each) | 0 network calls | calls: {', '.join(parts)} | | | "
        f"calls: {', '.join(go_parts)} | {verdict(ours_total == 0)} |"
    )
    r = cold["runs"]
    lines.append(
        f"| cold `get` ({cold['pairs']} pairs) | ≤ {TARGETS['cold/aws']}x `aws ecr get-login-password` | "
        f"{r['ours']['median_ms']} ms | "
        f"aws {r['aws']['median_ms']} ms | {cold['ratio']['ours/aws']}x aws | "
        f"{r['go']['median_ms']} ms (ours/Go {cold['ratio']['ours/go']}x) | "
        f"{verdict(cold['ratio']['ours/aws'] <= TARGETS['cold/aws'])} |"
    )
    conc = results["concurrent"]
    ours_calls = [c["api_calls"] for c in conc["ours"]]
    ours_fail = [c["failures"] for c in conc["ours"]]
    go_calls = [c["api_calls"] for c in conc["go"]]
    lines.append(
        f"| {CONCURRENCY} concurrent cold `get`s ({len(ours_calls)} rounds) | exactly 1 API call, 0 failures | "
        f"API calls {ours_calls}, failures {ours_fail} | | | API calls {go_calls}, "
        f"failures {[c['failures'] for c in conc['go']]} | "
        f"{verdict(all(c == 1 for c in ours_calls) and not any(ours_fail))} |"
    )
    r = hs["runs"]
    gl = results["go_list"]
    list_ok = hs["ratio"]["ours-list/bare"] <= TARGETS["list/bare"] and not sum(hs["network_calls"]["ours"].values())
    lines.append(
        f"| `list` ({hs['pairs']} pairs, in the static-hit loop) | no network, ≤ {TARGETS['list/bare']}x bare | "
        f"{r['ours-list']['median_ms']} ms (calls: see the static hit row, same loop) | "
        f"bare {r['bare']['median_ms']} ms | "
        f"{hs['ratio']['ours-list/bare']}x bare | {gl['runs']['median_ms']} ms, calls in "
        f"{gl['runs']['runs']} runs: {calls_text(gl['network_calls'])} | "
        f"{verdict(list_ok)} |"
    )
    hit_rss = max(hs["runs"]["ours"]["peak_rss_mib_max"], hc["runs"]["ours"]["peak_rss_mib_max"])
    cold_rss = cold["runs"]["ours"]["peak_rss_mib_max"]
    lines.append(
        f"| peak RSS (max over runs) | ≤ {TARGETS['hit_rss_mib']:g} MiB hit, ≤ {TARGETS['cold_rss_mib']:g} MiB cold | "
        f"hit {hit_rss} MiB, cold {cold_rss} MiB | "
        f"bare {hs['runs']['bare']['peak_rss_mib_max']} MiB, aws {cold['runs']['aws']['peak_rss_mib_max']} MiB | | "
        f"hit {hs['runs']['go']['peak_rss_mib_max']} MiB, cold {cold['runs']['go']['peak_rss_mib_max']} MiB | "
        f"{verdict(hit_rss <= TARGETS['hit_rss_mib'] and cold_rss <= TARGETS['cold_rss_mib'])} |"
    )
    lines += ["", "Cold `get`, where the time goes (medians, ms):", "", "| phase | ms |", "|---|---|"]
    lines += [f"| {k} | {val} |" for k, val in cold["breakdown"].items() if k != "error"]
    lines.append(
        f"| for comparison: cold `get` through the console script, interleaved median | "
        f"{cold['runs']['ours']['median_ms']} |"
    )
    if "error" in cold["breakdown"]:
        lines.append(f"\nBreakdown error: `{cold['breakdown']['error']}`")
    lines += ["", "Network calls per credential source on cache hits (ours / Go):", ""]
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
    if results.get("notes"):
        lines += ["", *results["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
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
    results: Json = {"machine": machine(), "versions": versions(tools), "notes": [], "direct": args.direct}
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
