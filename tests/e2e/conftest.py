"""Fixtures of the end-to-end suite: one namespace, registry and fake AWS endpoint per session.

If a part cannot run on this machine the suite says so loudly: with ``CI=true`` every e2e test
fails with the reason, otherwise it is skipped with it (``-ra`` prints it in the summary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import pytest

from .daemons import (
    Containers,
    Daemons,
    Dockerd,
    prepare_daemons,
    process_leftovers,
    require,
    start_dockerd,
    write_etc_containers,
)
from .rig import HOSTS, Rig, build
from .support import Namespace, Unavailable, in_ci

if TYPE_CHECKING:
    from collections.abc import Iterator


def unavailable(reason: str) -> NoReturn:
    message = f"E2E SUITE CANNOT RUN ON THIS MACHINE: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true, so this fails instead of skipping)", pytrace=False)
    pytest.skip(f"{message} (skipped because CI is not 'true'; in CI this fails)")


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("e2e")
    hosts = root / "hosts"
    hosts.write_text("".join(f"127.0.0.1\t{name}\n" for name in ("localhost", *HOSTS)) + "::1\tlocalhost\n")
    ns = Namespace(root, hosts)
    try:
        built = build(root, ns)
    except Unavailable as exc:
        ns.close()
        unavailable(str(exc))
    except BaseException:
        ns.close()
        raise
    try:
        yield built
    finally:
        ns.close()
        leftovers = [p.args for p in ns.processes() if p.poll() is None]
        assert not leftovers, f"e2e processes still running after cleanup: {leftovers}"


@pytest.fixture
def docker_rig(rig: Rig) -> Rig:
    """The rig, for tests that run the docker CLI (which needs no daemon for what they do)."""
    if "docker" not in rig.tools:
        unavailable("the docker CLI is not on PATH (Debian package docker.io, or docker-ce-cli)")
    return rig


@pytest.fixture(scope="session")
def daemons(rig: Rig) -> Daemons:
    """The base image (a static busybox, built here) pushed to both registry names, and the wrapper
    that counts the helper's invocations."""
    try:
        return prepare_daemons(rig)
    except Unavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def dockerd(rig: Rig, daemons: Daemons) -> Iterator[Dockerd]:
    """One dockerd for the session, with a second registry process on DAEMON_ADDRESS (same storage)
    and the fake Docker Hub on HUB_ADDRESS; see daemons.py."""
    try:
        daemon = start_dockerd(rig)
    except Unavailable as exc:
        unavailable(str(exc))
    try:
        yield daemon
    finally:
        daemon.close()
        leftovers = process_leftovers(str(daemon.directory))
        assert not leftovers, f"dockerd left processes behind: {leftovers}"


@pytest.fixture(scope="session")
def containers(rig: Rig, daemons: Daemons) -> Containers:
    """Rootful podman and buildah with their storage under the session's directory."""
    try:
        require("podman", "buildah")
    except Unavailable as exc:
        unavailable(str(exc))
    return Containers(rig.ns, rig.root / "containers", write_etc_containers(rig.root / "etc-containers"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the helper's invocations per command that the daemon tests recorded (record_calls)."""
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == "helper_calls":
                    calls = value["calls"]
                    counts = {action: sum(1 for c in calls if c.split()[0] == action) for action in ("list", "get")}
                    hosts = sorted({c.split(maxsplit=1)[1] for c in calls if c.startswith("get ")})
                    rows.append(
                        f"{value['command']:<34} {value['mode']:<16} list={counts['list']} get={counts['get']} "
                        f"({', '.join(hosts)})  [{report.nodeid.rpartition('::')[2]}]"
                    )
    if rows:
        terminalreporter.write_sep("-", "helper invocations per command (the counting wrapper)")
        for row in sorted(rows):
            terminalreporter.write_line(row)
