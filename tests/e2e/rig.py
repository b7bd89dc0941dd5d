"""The session's test rig: the namespace, the parts running in it, and ways to run clients there."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .support import (
    ECR_HOST,
    HELPER_PROGRAM,
    PUBLIC_HOST,
    TESTS_DIR,
    FakeAws,
    Namespace,
    OciImage,
    Pki,
    Registry,
    Unavailable,
    base_env,
    build_oci_image,
    installed_helper,
    make_pki,
    which,
    write_docker_config,
    write_htpasswd,
    write_stub_helpers,
)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterable, Mapping

HOSTS = (ECR_HOST, PUBLIC_HOST)
SEED_REPOSITORY = "e2e/seed"
SEED_TAG = "v1"
SEED_DOCKER_TAG = "v1-docker"  # the same image converted to Docker schema 2 by skopeo


@dataclass
class Rig:
    """Everything a test needs: the namespace, the parts running in it, and ways to run clients."""

    root: Path
    ns: Namespace
    pki: Pki
    registry: Registry
    fake: FakeAws  # issues the password the registry accepts
    foreign_fake: FakeAws  # issues a password the registry does not know
    image: OciImage
    tools: dict[str, str]
    venv_bin: Path
    stub_bin: Path
    stub_logs: Path
    docker_digests: dict[str, str] = field(default_factory=dict)  # host -> digest of SEED_DOCKER_TAG

    @property
    def password(self) -> str:
        return self.fake.password

    def new_home(
        self,
        *,
        cred_helpers: Mapping[str, str] | None = None,
        creds_store: str | None = None,
        auths: Iterable[str] = (),
    ) -> Path:
        """A fresh HOME with ``~/.docker/config.json`` as given, and its own empty token cache."""
        home = Path(tempfile.mkdtemp(prefix="home-", dir=self.root / "homes"))
        for sub in ("run", "tmp", ".config", ".cache"):
            (home / sub).mkdir()
        write_docker_config(home, cred_helpers=cred_helpers, creds_store=creds_store, auths=auths)
        return home

    def env(self, home: Path, *, fake: FakeAws | None = None, **extra: str) -> dict[str, str]:
        """The environment every client runs with: venv bin (the helper as installed) first on PATH."""
        env = base_env(
            PATH=os.pathsep.join([str(self.venv_bin), str(self.stub_bin), os.environ.get("PATH", "/usr/bin:/bin")]),
            HOME=str(home),
            TMPDIR=str(home / "tmp"),
            SSL_CERT_FILE=str(self.pki.ca_cert),  # Go (skopeo, docker) and Python take the test CA from here
            XDG_RUNTIME_DIR=str(home / "run"),  # keeps skopeo off /run/containers/0/auth.json
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CACHE_HOME=str(home / ".cache"),
            CONTAINERS_REGISTRIES_CONF=str(self.root / "registries.conf"),
            DOCKER_HOST=f"unix://{self.root / 'no-docker-daemon.sock'}",
            AWS_CONFIG_FILE=str(home / ".aws" / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ECR_CACHE_DIR=str(home / "ecr-cache"),
        )
        env.update((fake or self.fake).env)
        env.update(extra)
        return env

    def skopeo(self, *args: str, env: Mapping[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        argv = [self.tools["skopeo"], "--policy", str(self.root / "policy.json")]
        argv += ["--registries.d", str(self.root / "registries.d"), *args]
        return self.ns.run(argv, env=env, timeout=timeout)

    def docker(
        self, *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI, with DOCKER_HOST at a socket nobody listens on: no daemon, on purpose."""
        if "docker" not in self.tools:
            raise Unavailable("the docker CLI is not on PATH (Debian package docker.io, or docker-ce-cli)")
        return self.ns.run([self.tools["docker"], *args], env=env, input=input, timeout=timeout)

    def python(self, script: str, *args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        return self.ns.run([sys.executable, str(Path(__file__).parent / script), *args], env=env, timeout=30)


def _checked(done: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def build(root: Path, ns: Namespace) -> Rig:
    """Start everything in ``ns``; raises Unavailable when a part cannot run on this machine."""
    needed = ("skopeo", "docker-registry", "htpasswd", "openssl", "unshare", "nsenter", "ip", "mount", "getent")
    missing = [name for name in needed if shutil.which(name) is None]
    if missing:
        raise Unavailable(
            f"not on PATH: {', '.join(missing)} (Debian packages: skopeo docker-registry apache2-utils "
            "openssl iproute2 util-linux mount libc-bin)"
        )
    tools = {name: which(name) for name in ("skopeo", "docker-registry")}
    docker = shutil.which("docker")  # optional here: the docker CLI tests ask for it themselves
    if docker is not None:
        tools["docker"] = docker
    helper = installed_helper()
    if not (TESTS_DIR / "fakeecr.py").exists():
        raise Unavailable(f"{TESTS_DIR / 'fakeecr.py'} (the fake AWS endpoint) does not exist")

    ns.start()
    resolved = ns.run(["getent", "hosts", ECR_HOST, PUBLIC_HOST], env=base_env(), timeout=10)
    if resolved.returncode != 0 or resolved.stdout.count("127.0.0.1") != 2:
        raise Unavailable(f"the bind-mounted hosts file does not resolve the ECR names: {resolved.stdout!r}")

    pki = make_pki(root / "pki", HOSTS)
    (root / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    (root / "registries.conf").write_text("# e2e: no mirrors, no search registries\n")
    (root / "registries.d").mkdir()
    (root / "homes").mkdir()

    password = "e2e-" + secrets.token_urlsafe(18)
    fake = FakeAws(ns, password, root / "fake.log")
    foreign_fake = FakeAws(ns, "foreign-" + secrets.token_urlsafe(18), root / "foreign-fake.log")
    htpasswd = root / "htpasswd"
    write_htpasswd(htpasswd, "AWS", password)
    registry = Registry(ns, root / "registry", pki, htpasswd)
    registry.start()

    stub_bin, stub_logs = root / "stub-bin", root / "stub-logs"
    write_stub_helpers(stub_bin, stub_logs, wrong_password="wrong-" + secrets.token_urlsafe(18))
    image = build_oci_image(root / "image", SEED_TAG, "hello.txt", b"hello from docker-credential-ecr e2e\n")
    rig = Rig(root, ns, pki, registry, fake, foreign_fake, image, tools, helper.parent, stub_bin, stub_logs)

    home = rig.new_home()
    env = rig.env(home)
    found = shutil.which(HELPER_PROGRAM, path=env["PATH"])
    if found != str(helper):
        raise RuntimeError(f"{HELPER_PROGRAM} on the clients' PATH is {found}, not the installed {helper}")

    # Seed both registry names with explicit credentials (no helper involved), so that every test
    # starts from a known registry whatever order the tests run in.
    creds = f"AWS:{password}"
    for host in HOSTS:
        seed = f"docker://{host}/{SEED_REPOSITORY}"
        source = f"oci:{image.layout}:{SEED_TAG}"
        _checked(
            rig.skopeo("copy", "--preserve-digests", "--dest-creds", creds, source, f"{seed}:{SEED_TAG}", env=env),
            f"seeding {host}",
        )
        _checked(
            rig.skopeo("copy", "--format", "v2s2", "--dest-creds", creds, source, f"{seed}:{SEED_DOCKER_TAG}", env=env),
            f"seeding {host} (Docker schema 2)",
        )
        inspected = _checked(
            rig.skopeo("inspect", "--creds", creds, f"{seed}:{SEED_DOCKER_TAG}", env=env), f"inspecting {host}"
        )
        rig.docker_digests[host] = json.loads(inspected.stdout)["Digest"]
    return rig
