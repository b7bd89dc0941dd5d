"""Fixtures of the end-to-end suite: one namespace, registry and fake AWS endpoint per session.

If a part cannot run on this machine the suite says so loudly: with ``CI=true`` every e2e test
fails with the reason, otherwise it is skipped with it (``-ra`` prints it in the summary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import pytest

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
