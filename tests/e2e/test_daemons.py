"""Real daemons and container tools pull, push and build through the installed helper.

dockerd 20.10 (its own containerd, its builtin BuildKit and its legacy builder) driven by the docker
CLI it came with, docker-compose (v1, docker-py), and rootful podman and buildah, against the
registry of the rig answering as an ECR registry and as ECR Public. No `docker login` anywhere: every
credential comes from ``docker-credential-ecr-login get`` (through a wrapper that counts the calls),
which gets its token from the fake AWS endpoint through the real boto3. Negative controls show the
same commands fail without the helper's answer, so a pass means the helper opened the registry.

dockerd sees the registry on DAEMON_ADDRESS (outside 127/8, so it checks TLS) and trusts it only
through ``/etc/docker/certs.d/<host>/ca.crt``: see daemons.py.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .daemons import (
    BASE_CONTENT,
    BASE_FILE,
    BASE_REPOSITORY,
    BASE_TAG,
    DOCKER_HUB_KEY,
    Containers,
    Daemons,
    Dockerd,
    FakeHub,
    helper_calls,
    sha256,
)
from .rig import Rig
from .support import ECR_HOST, PUBLIC_HOST, stub_calls

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

HOSTS = [pytest.param(ECR_HOST, id="ecr"), pytest.param(PUBLIC_HOST, id="ecr-public")]
DOCKER_UA = "docker/20.10"  # dockerd's user agent in the registry's access log


def explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"


def slug(host: str) -> str:
    return "public" if host == PUBLIC_HOST else "private"


def unique(prefix: str) -> str:
    return f"e2e/{prefix}-{uuid.uuid4().hex[:8]}"


def docker_home(rig: Rig, mode: str, host: str, helper: str = "ecr-login") -> Path:
    if mode == "credhelpers":
        return rig.new_home(cred_helpers={host: helper})
    if mode == "credsstore":
        return rig.new_home(creds_store=helper)
    raise AssertionError(mode)


@pytest.fixture
def calls_log(tmp_path: Path) -> Path:
    return tmp_path / "helper-calls.log"


def gets(log: Path) -> list[str]:
    return [line for line in helper_calls(log) if line.startswith("get ")]


# --- dockerd: pull, push, builds -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["credhelpers", "credsstore"])
@pytest.mark.parametrize("host", HOSTS)
def test_dockerd_pull(
    *, rig: Rig, daemons: Daemons, dockerd: Dockerd, host: str, mode: str, calls_log: Path, request: Any
) -> None:
    env = daemons.client_env(rig, docker_home(rig, mode, host), calls_log)
    image = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    dockerd.docker("rmi", image, env=env)  # absent, so the daemon really pulls it
    mark = dockerd.registry.mark()
    before = rig.fake.calls("ecr-public" if host == PUBLIC_HOST else "ecr")

    pulled = dockerd.docker("pull", image, env=env)
    assert pulled.returncode == 0, explain(pulled)

    inspected = dockerd.docker("image", "inspect", image, env=env)
    assert inspected.returncode == 0, explain(inspected)
    info = json.loads(inspected.stdout)[0]
    assert f"{host}/{BASE_REPOSITORY}@{daemons.base.digest}" in info["RepoDigests"]
    # dockerd fetched the manifest with the helper's user, on the registry address outside 127/8.
    assert 200 in dockerd.registry.statuses(mark, f"/v2/{BASE_REPOSITORY}/manifests/", DOCKER_UA)
    assert dockerd.registry.authorized(mark, f"/v2/{BASE_REPOSITORY}/manifests/", DOCKER_UA) > 0
    assert gets(calls_log) == [f"get {host}"], helper_calls(calls_log)
    assert rig.fake.calls("ecr-public" if host == PUBLIC_HOST else "ecr") > before
    record_calls(request, "docker pull", mode, calls_log)


@pytest.mark.parametrize("mode", ["credhelpers", "credsstore"])
@pytest.mark.parametrize("host", HOSTS)
def test_dockerd_push(
    *, rig: Rig, daemons: Daemons, dockerd: Dockerd, host: str, mode: str, calls_log: Path, request: Any
) -> None:
    env = daemons.client_env(rig, docker_home(rig, mode, host), calls_log)
    base = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    pulled = dockerd.docker("pull", base, env=env)
    assert pulled.returncode == 0, explain(pulled)
    repository = unique(f"pushed-{mode}-{slug(host)}")
    target = f"{host}/{repository}:v1"
    assert dockerd.docker("tag", base, target, env=env).returncode == 0
    calls_log.unlink(missing_ok=True)

    pushed = dockerd.docker("push", target, env=env)
    assert pushed.returncode == 0, explain(pushed)

    assert gets(calls_log) == [f"get {host}"], helper_calls(calls_log)
    assert dockerd.registry.authenticated_users(repository, host) == {"AWS"}
    # What dockerd pushed is there, for a client that logs in without any helper.
    creds = ("--creds", f"AWS:{rig.password}")
    inspect = rig.skopeo("inspect", "--config", *creds, f"docker://{host}/{repository}:v1", env=env)
    assert inspect.returncode == 0, explain(inspect)
    assert json.loads(inspect.stdout)["rootfs"]["diff_ids"] == [base_diff_id(daemons)]
    record_calls(request, "docker push", mode, calls_log)


def base_diff_id(daemons: Daemons) -> str:
    """The uncompressed digest of the base image's layer (docker recompresses layers it pushes)."""
    config = daemons.base.layout / "blobs" / "sha256" / daemons.base.config_digest.removeprefix("sha256:")
    return str(json.loads(config.read_text())["rootfs"]["diff_ids"][0])


ADDED = "added by the e2e build\n"
# Builds run with --network=none: the namespace has no network, and dockerd (--bridge=none) has no
# bridge for BuildKit's default RUN network ("network bridge not found" without the flag).
NO_NETWORK = "--network=none"


def write_context(directory: Path, base: str) -> Path:
    """FROM the ECR image, COPY a file, RUN the base image's busybox on its own file and ours."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "added.txt").write_text(ADDED)
    (directory / "Dockerfile").write_text(
        f"FROM {base}\nCOPY added.txt /added.txt\nRUN cat /{BASE_FILE} /added.txt > /built.txt\nLABEL e2e.built=yes\n"
    )
    return directory


def check_built(dockerd: Dockerd, daemons: Daemons, tag: str, env: dict[str, str]) -> None:
    inspected = dockerd.docker("image", "inspect", tag, env=env)
    assert inspected.returncode == 0, explain(inspected)
    info = json.loads(inspected.stdout)[0]
    assert info["Config"]["Labels"]["e2e.built"] == "yes"
    # The base layer (from the registry, through the helper's token) is the image's first layer.
    assert info["RootFS"]["Layers"][0] == base_diff_id(daemons)
    assert len(info["RootFS"]["Layers"]) == 3
    # The RUN step ran the base image's busybox on the base image's file.
    ran = dockerd.docker("run", "--rm", NO_NETWORK, tag, "cat", "/built.txt", env=env)
    assert ran.returncode == 0, explain(ran)
    assert ran.stdout == BASE_CONTENT.decode() + ADDED


@pytest.mark.parametrize("host", HOSTS)
def test_dockerd_buildkit_build_credhelpers(
    *, rig: Rig, daemons: Daemons, dockerd: Dockerd, host: str, calls_log: Path, tmp_path: Path, request: Any
) -> None:
    """BuildKit (the daemon's builtin builder) resolves FROM through the CLI's session, which asks the helper."""
    env = daemons.client_env(rig, docker_home(rig, "credhelpers", host), calls_log, DOCKER_BUILDKIT="1")
    base = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    dockerd.docker("rmi", base, env=env)
    tag = f"e2e-local/buildkit-{slug(host)}:{uuid.uuid4().hex[:8]}"
    mark = dockerd.registry.mark()

    context = str(write_context(tmp_path / "ctx", base))
    built = dockerd.docker("build", NO_NETWORK, "--progress=plain", "-t", tag, context, env=env)
    assert built.returncode == 0, explain(built)

    check_built(dockerd, daemons, tag, env)
    assert f"get {host}" in gets(calls_log), helper_calls(calls_log)
    # BuildKit's own resolver (containerd's) fetched the base, not the classic pull code.
    assert f"load metadata for {base}" in built.stderr, explain(built)
    assert dockerd.registry.authorized(mark, f"/v2/{BASE_REPOSITORY}/manifests/", "containerd/") > 0
    record_calls(request, "DOCKER_BUILDKIT=1 docker build", "credhelpers", calls_log)


@pytest.mark.parametrize("host", HOSTS)
def test_dockerd_legacy_build_credsstore(
    *, rig: Rig, daemons: Daemons, dockerd: Dockerd, host: str, calls_log: Path, tmp_path: Path, request: Any
) -> None:
    """The legacy builder takes every credential up front: `list`, then `get` for each key it returned."""
    home = docker_home(rig, "credsstore", host)
    env = daemons.client_env(rig, home, calls_log, DOCKER_BUILDKIT="0")
    # Warm the helper's cache for this host, so `list` has an entry to return.
    warm = dockerd.docker("pull", f"{host}/{BASE_REPOSITORY}:{BASE_TAG}", env=env)
    assert warm.returncode == 0, explain(warm)
    dockerd.docker("rmi", f"{host}/{BASE_REPOSITORY}:{BASE_TAG}", env=env)
    calls_log.unlink(missing_ok=True)
    tag = f"e2e-local/legacy-{slug(host)}:{uuid.uuid4().hex[:8]}"

    built = dockerd.docker(
        "build",
        NO_NETWORK,
        "-t",
        tag,
        str(write_context(tmp_path / "ctx", f"{host}/{BASE_REPOSITORY}:{BASE_TAG}")),
        env=env,
    )
    assert built.returncode == 0, explain(built)

    check_built(dockerd, daemons, tag, env)
    calls = helper_calls(calls_log)
    assert calls[0] == "list", calls
    assert any(call.startswith("get ") and host in call for call in calls[1:]), calls
    record_calls(request, "DOCKER_BUILDKIT=0 docker build", "credsstore", calls_log)


def test_dockerd_legacy_build_credsstore_with_a_cold_cache_pulls_anonymously(
    rig: Rig, daemons: Daemons, dockerd: Dockerd, calls_log: Path, tmp_path: Path
) -> None:
    """What the README says about the classic builder: with `credsStore`, `list` answers from the
    cache, so before any `get` for the host the builder has no credential for it and FROM fails."""
    env = daemons.client_env(rig, docker_home(rig, "credsstore", ECR_HOST), calls_log, DOCKER_BUILDKIT="0")
    base = f"{ECR_HOST}/{BASE_REPOSITORY}:{BASE_TAG}"
    dockerd.docker("rmi", base, env=env)
    context = str(write_context(tmp_path / "ctx", base))
    built = dockerd.docker("build", NO_NETWORK, "-t", "e2e-local/cold:v1", context, env=env)
    assert built.returncode != 0, explain(built)
    assert "no basic auth credentials" in built.stderr, explain(built)
    assert helper_calls(calls_log) == ["list"]


def test_docker_compose_pull_credhelpers(
    *, rig: Rig, daemons: Daemons, dockerd: Dockerd, calls_log: Path, tmp_path: Path, request: Any
) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is not on PATH (Debian package docker-compose)")
    host = ECR_HOST
    env = daemons.client_env(rig, docker_home(rig, "credhelpers", host), calls_log)
    env["DOCKER_HOST"] = f"unix://{dockerd.socket}"
    image = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    dockerd.docker("rmi", image, env=env)
    project = tmp_path / "project"
    project.mkdir()
    (project / "docker-compose.yml").write_text(f'version: "3"\nservices:\n  app:\n    image: {image}\n')

    pulled = rig.ns.run(
        [compose, "--project-directory", str(project), "-f", str(project / "docker-compose.yml"), "pull"],
        env=env,
        timeout=90,
    )
    assert pulled.returncode == 0, explain(pulled)
    inspected = dockerd.docker("image", "inspect", image, env=env)
    assert inspected.returncode == 0, explain(inspected)
    assert f"get {host}" in gets(calls_log), helper_calls(calls_log)
    record_calls(request, "docker-compose pull", "credhelpers", calls_log)


def record_calls(request: Any, command: str, mode: str, log: Path) -> None:
    """Keep the helper's invocations of this test for the summary (see conftest)."""
    request.node.user_properties.append(
        ("helper_calls", {"command": command, "mode": mode, "calls": helper_calls(log)})
    )


def test_dockerd_checks_the_registry_certificate_against_certs_d(
    rig: Rig, daemons: Daemons, dockerd: Dockerd, tmp_path: Path
) -> None:
    """dockerd reaches the registry outside 127/8, so it verifies TLS; its only trust for the test CA is
    /etc/docker/certs.d/<host>/ca.crt. Without that file the same pull fails on the certificate."""
    host = ECR_HOST
    env = daemons.client_env(rig, docker_home(rig, "credhelpers", host), tmp_path / "calls")
    image = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    ca = dockerd.etc_docker / "certs.d" / host / "ca.crt"
    aside = ca.with_name("ca.crt.aside")
    dockerd.docker("rmi", image, env=env)
    ca.rename(aside)
    try:
        untrusted = dockerd.docker("pull", image, env=env)
    finally:
        aside.rename(ca)
    assert untrusted.returncode != 0, explain(untrusted)
    assert "x509: certificate signed by unknown authority" in untrusted.stderr, explain(untrusted)

    trusted = dockerd.docker("pull", image, env=env)
    assert trusted.returncode == 0, explain(trusted)


# --- podman and buildah (containers/image): credHelpers in docker's config, or registries.conf --------

CONTAINERS_MODES = ["credhelpers", "registries-conf"]


def containers_env(rig: Rig, daemons: Daemons, mode: str, host: str, log: Path) -> dict[str, str]:
    """credHelpers in ~/.docker/config.json, or `credential-helpers` in registries.conf (no docker config)."""
    if mode == "credhelpers":
        return daemons.client_env(rig, rig.new_home(cred_helpers={host: "ecr-login"}), log)
    home = rig.new_home()
    conf = home / "registries.conf"
    conf.write_text('credential-helpers = ["ecr-login"]\n')
    return daemons.client_env(rig, home, log, CONTAINERS_REGISTRIES_CONF=str(conf))


@pytest.mark.parametrize("mode", CONTAINERS_MODES)
@pytest.mark.parametrize("host", HOSTS)
def test_podman_pull_push_build(
    *, rig: Rig, daemons: Daemons, containers: Containers, host: str, mode: str, tmp_path: Path, request: Any
) -> None:
    log = tmp_path / "calls"
    env = containers_env(rig, daemons, mode, host, log)
    base = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    containers.podman("rmi", "--force", base, env=env)

    pulled = containers.podman("pull", "--quiet", base, env=env)
    assert pulled.returncode == 0, explain(pulled)
    assert gets(log) == [f"get {host}"], helper_calls(log)
    record_calls(request, "podman pull", mode, log)

    log.unlink()
    repository = unique(f"podman-{mode}-{slug(host)}")
    assert containers.podman("tag", base, f"{host}/{repository}:v1", env=env).returncode == 0
    pushed = containers.podman("push", f"{host}/{repository}:v1", env=env)
    assert pushed.returncode == 0, explain(pushed)
    assert f"get {host}" in gets(log), helper_calls(log)
    record_calls(request, "podman push", mode, log)
    assert daemons_authorized_push(rig, repository, host)

    log.unlink()
    containers.podman("rmi", "--force", base, env=env)
    tag = f"localhost/e2e-podman-build:{uuid.uuid4().hex[:8]}"
    built = containers.podman("build", NO_NETWORK, "-t", tag, str(write_context(tmp_path / "ctx", base)), env=env)
    assert built.returncode == 0, explain(built)
    assert f"get {host}" in gets(log), helper_calls(log)
    record_calls(request, "podman build", mode, log)
    inspected = containers.podman("image", "inspect", tag, env=env)
    assert inspected.returncode == 0, explain(inspected)
    info = json.loads(inspected.stdout)[0]
    assert info["RootFS"]["Layers"][0] == base_diff_id(daemons)
    assert len(info["RootFS"]["Layers"]) == 3  # base, COPY, RUN (which ran the base's busybox)
    assert info["Labels"]["e2e.built"] == "yes"


@pytest.mark.parametrize("mode", CONTAINERS_MODES)
@pytest.mark.parametrize("host", HOSTS)
def test_buildah_bud_push(
    *, rig: Rig, daemons: Daemons, containers: Containers, host: str, mode: str, tmp_path: Path, request: Any
) -> None:
    log = tmp_path / "calls"
    env = containers_env(rig, daemons, mode, host, log)
    base = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    containers.buildah("rmi", "--force", base, env=env)
    repository = unique(f"buildah-{mode}-{slug(host)}")
    target = f"{host}/{repository}:v1"

    built = containers.buildah("bud", NO_NETWORK, "-t", target, str(write_context(tmp_path / "ctx", base)), env=env)
    assert built.returncode == 0, explain(built)
    assert f"get {host}" in gets(log), helper_calls(log)
    record_calls(request, "buildah bud", mode, log)

    log.unlink()
    pushed = containers.buildah("push", target, env=env)
    assert pushed.returncode == 0, explain(pushed)
    assert f"get {host}" in gets(log), helper_calls(log)
    record_calls(request, "buildah push", mode, log)
    assert daemons_authorized_push(rig, repository, host)
    creds = ("--creds", f"AWS:{rig.password}")
    inspect = rig.skopeo("inspect", "--config", *creds, f"docker://{target}", env=env)
    assert inspect.returncode == 0, explain(inspect)
    diff_ids = json.loads(inspect.stdout)["rootfs"]["diff_ids"]
    assert diff_ids[0] == base_diff_id(daemons)
    assert len(diff_ids) == 2  # base, then COPY and RUN in one layer (buildah bud's default, --layers=false)


def daemons_authorized_push(rig: Rig, repository: str, host: str) -> bool:
    """The registry (on 127.0.0.1 for podman and buildah) took a manifest for ``repository`` as AWS."""
    return (
        rig.registry.authorized(0, f"/v2/{repository}/manifests/", "") > 0
        and rig.registry.statuses(0, f"/v2/{repository}/manifests/", "").count(201) >= 1
    )


# --- negative controls: the same pulls fail without the helper's answer ---------------------------------

CONTROLS = [
    pytest.param("ecr-wrongpw", id="helper-returns-a-wrong-password"),
    pytest.param("ecr-notfound", id="helper-answers-not-found"),
    pytest.param("not-on-path", id="helper-not-on-path"),
]


def control_env(rig: Rig, daemons: Daemons, control: str, host: str, log: Path) -> dict[str, str]:
    if control == "not-on-path":
        # credHelpers names ecr-login, but PATH has neither it nor the Go helper of the same name.
        env = daemons.client_env(rig, rig.new_home(cred_helpers={host: "ecr-login"}), log)
        env["PATH"] = str(rig.stub_bin)
        return env
    return daemons.client_env(rig, rig.new_home(cred_helpers={host: control}), log)


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("host", HOSTS)
def test_negative_controls_make_dockerd_pull_fail(
    *, rig: Rig, daemons: Daemons, dockerd: Dockerd, host: str, control: str, tmp_path: Path
) -> None:
    env = control_env(rig, daemons, control, host, tmp_path / "calls")
    image = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    dockerd.docker("rmi", image, env=daemons.client_env(rig, rig.new_home()))
    stubbed = len(stub_calls(rig.stub_logs, control))
    mark = dockerd.registry.mark()

    pulled = dockerd.docker("pull", image, env=env)

    assert pulled.returncode != 0, explain(pulled)
    assert dockerd.docker("image", "inspect", image, env=env).returncode != 0
    assert dockerd.registry.authorized(mark, "/v2/", DOCKER_UA) == 0
    assert 401 in dockerd.registry.statuses(mark, "/v2/", DOCKER_UA), explain(pulled)
    if control == "not-on-path":
        # The CLI drops the helper's exec error on pull and lets the daemon try anonymously.
        assert "no basic auth credentials" in pulled.stderr, explain(pulled)
    else:
        assert len(stub_calls(rig.stub_logs, control)) > stubbed


@pytest.mark.parametrize("control", CONTROLS)
def test_negative_controls_make_podman_pull_fail(
    *, rig: Rig, daemons: Daemons, containers: Containers, control: str, tmp_path: Path
) -> None:
    host = ECR_HOST
    env = control_env(rig, daemons, control, host, tmp_path / "calls")
    if control == "not-on-path":
        env["PATH"] = f"{rig.stub_bin}:/nonexistent"
    image = f"{host}/{BASE_REPOSITORY}:{BASE_TAG}"
    containers.podman("rmi", "--force", image, env=env)
    stubbed = len(stub_calls(rig.stub_logs, control))
    mark = rig.registry.mark()

    pulled = containers.podman("pull", image, env=env)

    assert pulled.returncode != 0, explain(pulled)
    assert rig.registry.authorized(mark, "/v2/", "") == 0
    if control != "not-on-path":
        assert len(stub_calls(rig.stub_logs, control)) > stubbed


# --- Docker Hub registry mirrors ----------------------------------------------------------------------


@pytest.fixture
def mirrored(dockerd: Dockerd) -> Iterator[Dockerd]:
    """dockerd with `registry-mirrors` pointing at the ECR host (a pull-through cache), reloaded live."""
    dockerd.reload({"registry-mirrors": [f"https://{ECR_HOST}"]})
    try:
        yield dockerd
    finally:
        dockerd.reload({})


def hub_saw_token(hub: FakeHub, since: int, password: str) -> list[dict[str, Any]]:
    """The fake Docker Hub's requests after ``since`` that carried ``password`` (by its SHA-256)."""
    digest = sha256(password)
    return [
        r for r in hub.requests()[since:] if digest in (r.get("basic_password_sha256"), r.get("form_password_sha256"))
    ]


def test_dockerd_registry_mirror_sends_docker_hub_credentials_to_docker_hub_on_a_miss(
    *, rig: Rig, daemons: Daemons, mirrored: Dockerd
) -> None:
    """The finding behind refusing Docker Hub aliases. A helper that answers Docker Hub's key with the
    ECR token (what an [aliases] entry for index.docker.io would do) opens the mirror, but when the
    mirror misses, dockerd falls back to Docker Hub with the same credentials."""
    env = daemons.client_env(rig, rig.new_home(creds_store="ecr-hubalias"))
    asked = len(stub_calls(rig.stub_logs, "ecr-hubalias"))
    hub_mark, mark = len(mirrored.hub.requests()), mirrored.registry.mark()
    mirrored.docker("rmi", f"{BASE_REPOSITORY}:{BASE_TAG}", env=env)

    present = mirrored.docker("pull", f"{BASE_REPOSITORY}:{BASE_TAG}", env=env)  # a Docker Hub name
    assert present.returncode == 0, explain(present)
    # docker asks for Docker Hub's key only (never the mirror's host), and the mirror took the answer.
    assert stub_calls(rig.stub_logs, "ecr-hubalias")[asked:] == [f"get {DOCKER_HUB_KEY}"]
    assert mirrored.registry.authorized(mark, f"/v2/{BASE_REPOSITORY}/manifests/", DOCKER_UA) > 0
    assert mirrored.hub.requests()[hub_mark:] == []

    hub_mark = len(mirrored.hub.requests())
    absent = mirrored.docker("pull", f"{unique('absent')}:v1", env=env)
    assert absent.returncode != 0, explain(absent)
    assert "registry-1.docker.io" in absent.stderr, explain(absent)
    leaked = hub_saw_token(mirrored.hub, hub_mark, rig.password)
    assert leaked, mirrored.hub.requests()[hub_mark:]
    assert {r["host"] for r in leaked} == {"auth.docker.io"}


def test_dockerd_registry_mirror_gets_no_ecr_token_through_a_docker_hub_alias(
    *, rig: Rig, daemons: Daemons, mirrored: Dockerd, calls_log: Path
) -> None:
    """This helper refuses an alias for Docker Hub: the config error is reported, Docker Hub's key gets
    not-found, and no ECR token reaches Docker Hub, on a mirror hit or a miss."""
    home = rig.new_home(creds_store="ecr-login")
    config = home / ".config" / "docker-credential-ecr" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[aliases]\n"index.docker.io" = "{ECR_HOST}"\n')
    env = daemons.client_env(rig, home, calls_log)
    hub_mark = len(mirrored.hub.requests())
    mirrored.docker("rmi", f"{BASE_REPOSITORY}:{BASE_TAG}", env=env)

    for image in (f"{BASE_REPOSITORY}:{BASE_TAG}", f"{unique('absent')}:v1"):
        pulled = mirrored.docker("pull", image, env=env)
        assert pulled.returncode != 0, explain(pulled)
    assert hub_saw_token(mirrored.hub, hub_mark, rig.password) == []
    assert gets(calls_log) == [f"get {DOCKER_HUB_KEY}"] * 2, helper_calls(calls_log)
    direct = rig.ns.run(
        [str(daemons.counter_bin / "docker-credential-ecr-login"), "get"], env=env, input=DOCKER_HUB_KEY
    )
    assert direct.returncode == 1
    assert "names Docker Hub" in direct.stderr, explain(direct)
