"""The benchmark cases of DESIGN.md's performance budget, each returning its figures as JSON.

Every case builds sealed homes (``environments``), warms or wipes caches outside the timing, runs
its commands in interleaved rounds (``processes``), counts each tool's calls at its own fake and
summarises (``stats``). ``report`` turns the results into the table. Standard library only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from breakdown import cold_breakdown
from environments import CONTAINER_DELAY, HOST, REGION, SOURCES, Fake, Homes, clean, diff, wipe_cache
from processes import Command, Runner, interleave, memory, secret_of, spawn_many
from stats import median, ratios, summary, walls
from tlsproxy import TLSProxy, ca_bundle, make_certificate
from tools import Tools

CONCURRENCY = 32
MEMORY_RUNS = 5  # extra runs of each command under time(1), for peak RSS
WARM_UP_ROUNDS = 3  # untimed rounds before a hit loop: page cache, pyc files
GO_LIST_RUNS = 5

Json = dict[str, Any]


class Bench:
    """The fakes, proxies and homes of one run, and the cases measured with them."""

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

    def bare(self) -> Command:
        return ("bare", [self.tools.python, "-c", "pass"], {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, b"")

    def get(self, tool: str, env: dict[str, str]) -> Command:
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
        for _ in range(WARM_UP_ROUNDS):
            for _, argv, env, stdin in commands:
                self.runner.run(argv, env, stdin)
        before = {tool: self.fakes[tool].calls() for tool in envs}
        samples = interleave(self.runner, commands, self.pairs)
        calls = {tool: diff(self.fakes[tool].calls(), before[tool]) for tool in envs}
        rss = memory(self.runner, commands, MEMORY_RUNS)
        served_from_cache = {
            tool: sum(1 for s in samples[tool] if secret_of(s) == secrets[tool.split("-")[0]])
            for tool in ("ours", "ours-pip-shim", "go")
        }
        return {
            "pairs": self.pairs,
            "runs": {name: summary(runs, rss[name]) for name, runs in samples.items()},
            "ratio": ratios(walls(samples), "ours/bare", "ours-pip-shim/bare", "ours-list/bare", "ours/go", "go/bare"),
            "network_calls": calls,
            "answers_from_cache": served_from_cache,
        }

    def container_hits(self) -> Json:
        """Cache hits with container credentials, the fake's container endpoint slowed down."""
        for fake in (self.fakes["ours"], self.fakes["go"]):
            fake.slow("container", CONTAINER_DELAY)
        try:
            return self.hit("hit-container", "container")
        finally:
            for fake in (self.fakes["ours"], self.fakes["go"]):
                fake.clear_faults()

    def go_list(self) -> Json:
        """Go's `list`, apart: it calls ECR and ECR Public."""
        env = self.homes.make("go-list", "go", "static")
        self.warm("go", env)
        before = self.fakes["go"].calls()
        runs = [self.runner.run([self.tools.go, "list"], clean(env)) for _ in range(GO_LIST_RUNS)]
        return {"runs": summary(runs, []), "network_calls": diff(self.fakes["go"].calls(), before)}

    def sources(self, hits: int) -> Json:
        """Every credential source: one `get` warms the cache, then ``hits`` gets must stay off the network."""
        out: Json = {}
        for source in SOURCES:
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
        walls_ms = walls(samples)
        return {
            "pairs": self.cold_pairs,
            "runs": {name: summary(runs, rss[name]) for name, runs in samples.items()},
            "ratio": ratios(walls_ms, "ours/aws", "ours/go", "aws/bare"),
            "network_calls": calls,
            "breakdown": cold_breakdown(self.runner, self.tools.python, envs["ours"], median(walls_ms["bare"])),
        }

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
