"""Fixtures of the end-to-end suite: one namespace, registry and fake AWS endpoint per session.

If a part cannot run on this machine the suite says so loudly: with ``CI=true`` every e2e test
fails with the reason, otherwise it is skipped with it (``-ra`` prints it in the summary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import pytest

from .daemons import (
    BASE_REPOSITORY,
    BASE_TAG,
    DAEMON_ADDRESS,
    HUB_ADDRESS,
    HUB_HOSTS,
    Containers,
    Daemons,
    Dockerd,
    FakeHub,
    add_addresses,
    build_busybox_image,
    daemon_cli,
    process_leftovers,
    require,
    write_counter,
    write_etc_containers,
    write_hub_alias_stub,
)
from .rig import HOSTS, Rig, build
from .support import Namespace, Registry, Unavailable, in_ci, installed_helper, make_pki, stop

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
        base = build_busybox_image(rig.root / "base-image", BASE_TAG)
    except Unavailable as exc:
        unavailable(str(exc))
    env = rig.env(rig.new_home())
    for host in HOSTS:
        pushed = rig.skopeo(
            *("copy", "--preserve-digests", "--dest-creds", f"AWS:{rig.password}"),
            *(f"oci:{base.layout}:{BASE_TAG}", f"docker://{host}/{BASE_REPOSITORY}:{BASE_TAG}"),
            env=env,
            timeout=60,
        )
        assert pushed.returncode == 0, f"pushing the base image to {host}: {pushed.stderr}"
    counter_bin = rig.root / "counter-bin"
    write_counter(counter_bin, installed_helper())
    hub_stub_log = rig.stub_logs / "ecr-hubalias.log"
    write_hub_alias_stub(rig.stub_bin, hub_stub_log, rig.password)
    return Daemons(rig.root, base, counter_bin, hub_stub_log)


@pytest.fixture(scope="session")
def dockerd(rig: Rig, daemons: Daemons) -> Iterator[Dockerd]:
    """One dockerd for the session, with a second registry process on DAEMON_ADDRESS (same storage)
    and the fake Docker Hub on HUB_ADDRESS; see daemons.py."""
    directory = rig.root / "dockerd"
    hub = FakeHub(rig.ns, rig.root / "hub", make_pki(rig.root / "hub-pki", HUB_HOSTS))
    registry = Registry(
        rig.ns,
        rig.root / "registry-daemon",
        rig.pki,
        rig.registry.htpasswd,
        listen=f"{DAEMON_ADDRESS}:443",
        storage=rig.registry.directory / "storage",
    )
    etc_docker, hosts_file = rig.root / "etc-docker", rig.root / "dockerd-hosts"
    daemon = Dockerd(rig.ns, directory, etc_docker, hosts_file, hub.pki.ca_cert, registry, hub)
    try:
        require("dockerd", "containerd", "runc")
        daemon_cli()
        add_addresses(rig.ns, DAEMON_ADDRESS, HUB_ADDRESS)
        registry.start()
        hub.start()
        for host in HOSTS:
            certs = etc_docker / "certs.d" / host
            certs.mkdir(parents=True)
            (certs / "ca.crt").write_bytes(rig.pki.ca_cert.read_bytes())
        names = [f"{DAEMON_ADDRESS}\t{host}\n" for host in HOSTS] + [f"{HUB_ADDRESS}\t{host}\n" for host in HUB_HOSTS]
        hosts_file.write_text("127.0.0.1\tlocalhost\n" + "".join(names))
        daemon.start()
    except Unavailable as exc:
        daemon.close()
        unavailable(str(exc))
    except BaseException:
        daemon.close()
        raise
    try:
        yield daemon
    finally:
        daemon.close()
        if hub.proc is not None:
            stop(hub.proc)
        leftovers = process_leftovers(str(directory))
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
