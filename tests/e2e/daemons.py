"""Real daemons and rootful container tools for the end-to-end suite: dockerd (with its own
containerd and builtin BuildKit), podman, buildah, docker-compose, a fake Docker Hub, and a counting
wrapper around the installed helper.

Everything runs inside the suite's namespace (see support.Namespace). On top of that:

- dockerd runs in its own PID namespace (``unshare --pid --fork --kill-child``): when it or the
  ``unshare`` process above it dies, the kernel kills every process left in that namespace
  (containerd, shims), so nothing outlives the suite even if pytest is killed. It also gets its own
  mount namespace, with a tmpfs over ``/run`` and ``/dev/shm`` (containerd puts shim sockets in
  ``/run/containerd`` whatever its state dir), the suite's ``/etc/docker`` (``certs.d`` holding the
  test CA per registry host) and an ``/etc/hosts`` that sends the registry names to
  ``DAEMON_ADDRESS``: an address added to the namespace's own ``lo`` outside 127.0.0.0/8, because
  dockerd treats 127/8 as an insecure registry and would not check the certificate at all.
- podman and buildah run rootful with their storage under the suite's directory, in a private mount
  namespace with a tmpfs over ``/run`` and ``/dev/shm`` (libpod's lock segment lives there).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .support import (
    HELPER_PROGRAM,
    Namespace,
    OciImage,
    Pki,
    Registry,
    Unavailable,
    base_env,
    build_image,
    installed_helper,
    make_pki,
    read_line,
    stop,
    which,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from .rig import Rig

HERE = Path(__file__).resolve().parent

# TEST-NET-1 (RFC 5737): documentation addresses, never a real host; added to the namespace's lo only.
DAEMON_ADDRESS = "192.0.2.10"  # the registry again, as dockerd sees the ECR names
HUB_ADDRESS = "192.0.2.20"  # the fake Docker Hub
HUB_HOSTS = ("registry-1.docker.io", "auth.docker.io", "index.docker.io")
DOCKER_HUB_KEY = "https://index.docker.io/v1/"

BASE_REPOSITORY = "e2e/base"
BASE_TAG = "v1"
BASE_FILE = "etc/e2e-base"
BASE_CONTENT = b"base image of docker-credential-ecr e2e\n"

# The Debian packages each part comes from, for the messages that say what is missing.
PACKAGES = {
    "dockerd": "docker.io",
    "containerd": "containerd (a dependency of docker.io)",
    "runc": "runc (a dependency of docker.io)",
    "podman": "podman",
    "buildah": "buildah",
    "docker-compose": "docker-compose",
    "busybox": "busybox-static",
}


def require(*names: str) -> dict[str, str]:
    """The absolute paths of ``names`` on PATH, or Unavailable naming the packages that give them."""
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        packages = sorted({PACKAGES.get(name, name) for name in missing})
        raise Unavailable(f"not on PATH: {', '.join(missing)} (Debian packages: {' '.join(packages)})")
    return {name: str(path) for name, path in found.items()}


def daemon_cli() -> str:
    """The docker CLI that came with the daemon (Debian's docker.io puts both in /usr): the CLI first
    on PATH may be another version, and a CLI of 23+ sends `docker build` to buildx, not to the
    daemon's builder."""
    cli = shutil.which("docker", path="/usr/bin:/bin")
    if cli is None:
        raise Unavailable("/usr/bin/docker (Debian package docker.io) is not installed")
    return cli


def add_addresses(ns: Namespace, *addresses: str) -> None:
    """Add ``addresses`` to the namespace's own lo (never to the machine's)."""
    for address in addresses:
        added = ns.run([which("ip"), "addr", "add", f"{address}/32", "dev", "lo"], env=base_env(), timeout=10)
        if added.returncode != 0:
            raise Unavailable(f"cannot add {address} to the namespace's lo: {added.stderr.strip()}")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- the base image: a static busybox, built here (no download) -----------------------------------------


def build_busybox_image(layout: Path, tag: str) -> OciImage:
    """An image with /bin/busybox (Debian's busybox-static), /bin/sh linked to it, and one marker file."""
    busybox = Path(require("busybox")["busybox"]).resolve()
    with busybox.open("rb") as f:
        head = f.read(4096)
    if not head.startswith(b"\x7fELF") or b"/lib64/ld-linux" in head or b"/lib/ld-" in head:
        raise Unavailable(f"{busybox} is not a static ELF binary (Debian package busybox-static)")
    data = busybox.read_bytes()

    def entry(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime, info.linkname = kind, mode, size, 0, link
        return info

    members: list[tuple[tarfile.TarInfo, bytes | None]] = [
        (entry("bin", tarfile.DIRTYPE, 0o755), None),
        (entry("bin/busybox", tarfile.REGTYPE, 0o755, len(data)), data),
        (entry("bin/sh", tarfile.SYMTYPE, 0o777, link="busybox"), None),
        (entry("bin/cat", tarfile.SYMTYPE, 0o777, link="busybox"), None),
        (entry("etc", tarfile.DIRTYPE, 0o755), None),
        (entry(BASE_FILE, tarfile.REGTYPE, 0o644, len(BASE_CONTENT)), BASE_CONTENT),
    ]
    config = {"Cmd": ["/bin/sh"], "Labels": {"org.opencontainers.image.title": "docker-credential-ecr e2e base"}}
    history = [{"created": "1970-01-01T00:00:00Z", "created_by": "e2e: busybox-static and a marker file"}]
    return build_image(
        layout,
        tag,
        members=members,
        container_config=config,
        file_name=BASE_FILE,
        file_content=BASE_CONTENT,
        history=history,
    )


# --- the counting wrapper ----------------------------------------------------------------------------

# Put first on PATH as docker-credential-ecr-login: appends "<action> <server URL>" to the file named by
# $E2E_HELPER_LOG (when set), then execs the installed helper with the same argument and stdin.
_COUNTER = """#!/bin/sh
# e2e: counts the helper's invocations, then runs the installed helper. Not a helper itself.
log=${{E2E_HELPER_LOG:-/dev/null}}
case "$1" in
  get|erase) url=$(cat); printf '%s %s\\n' "$1" "$url" >> "$log"; printf '%s' "$url" | exec '{real}' "$@" ;;
  *) printf '%s\\n' "$1" >> "$log"; exec '{real}' "$@" ;;
esac
"""


def write_counter(bin_dir: Path, real_helper: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / HELPER_PROGRAM
    script.write_text(_COUNTER.format(real=real_helper))
    script.chmod(0o755)
    return script


def helper_calls(log: Path) -> list[str]:
    """The invocations the counting wrapper logged: "get <url>", "list", "store", ..."""
    return log.read_text().splitlines() if log.exists() else []


# A stub helper answering every get with the registry's real password, as an [aliases] entry naming a
# Docker Hub host would make this helper answer: the Docker Hub mirror case, without the alias.
_HUB_ALIAS_STUB = """#!/bin/sh
# docker-credential-ecr-hubalias: an e2e probe, never a real helper. Answers get with the ECR token.
url=""
case "$1" in get|erase) url=$(cat) ;; esac
printf '%s %s\\n' "$1" "$url" >> '{log}'
case "$1" in
  get) printf '{{"ServerURL":"%s","Username":"AWS","Secret":"%s"}}\\n' "$url" "$(cat '{secret}')" ;;
  list) echo '{{}}' ;;
  *) exit 0 ;;
esac
"""


def write_hub_alias_stub(bin_dir: Path, log: Path, password: str) -> None:
    secret = bin_dir / "hubalias.secret"
    secret.write_text(password)
    secret.chmod(0o600)
    script = bin_dir / "docker-credential-ecr-hubalias"
    script.write_text(_HUB_ALIAS_STUB.format(log=log, secret=secret))
    script.chmod(0o755)


# --- private mounts --------------------------------------------------------------------------------------

# Binds (pairs of arguments up to "--"), then a tmpfs over /run and /dev/shm, then exec the command.
_PRIVATE_MOUNTS = (
    'set -e; while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift; '
    "mount -t tmpfs -o mode=0755 e2e-run /run; mount -t tmpfs -o mode=1777 e2e-shm /dev/shm; "
    'exec "$@"'
)


def with_private_mounts(argv: Sequence[str], *, pid: bool = False, binds: Iterable[tuple[Path, str]] = ()) -> list[str]:
    """``argv`` in a new mount namespace (and PID namespace with ``pid``) with a tmpfs over /run and
    /dev/shm and each ``(source, target)`` bind-mounted; the machine's mounts are never touched."""
    bind_args = [arg for source, target in binds for arg in (str(source), target)]
    prefix = [which("unshare"), "--mount", "--propagation", "private"]
    if pid:
        prefix += ["--pid", "--fork", "--kill-child", "--mount-proc"]
    return [*prefix, "--", "/bin/sh", "-c", _PRIVATE_MOUNTS, "e2e-mounts", *bind_args, "--", *argv]


# --- dockerd ----------------------------------------------------------------------------------------------


@dataclass
class Dockerd:
    """dockerd (20.10, with its own containerd) inside the namespace; see the module docstring."""

    ns: Namespace
    directory: Path
    etc_docker: Path  # bind-mounted over /etc/docker: certs.d/<host>/ca.crt
    hosts_file: Path  # bind-mounted over /etc/hosts
    ssl_cert_file: Path  # the roots dockerd trusts for Docker Hub (the fake Hub's CA, nothing else)
    registry: Registry  # the rig's registry storage, served again on DAEMON_ADDRESS
    hub: FakeHub
    proc: subprocess.Popen[str] | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def config_file(self) -> Path:
        return self.directory / "daemon.json"

    @property
    def log(self) -> Path:
        return self.directory / "dockerd.log"

    def start(self, timeout: float = 90) -> None:
        tools = require("dockerd", "containerd", "runc")
        for sub in ("data", "exec"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("{}\n")
        argv = [tools["dockerd"], "--config-file", str(self.config_file)]
        argv += ["--data-root", str(self.directory / "data"), "--exec-root", str(self.directory / "exec")]
        argv += ["--pidfile", str(self.directory / "docker.pid"), "-H", f"unix://{self.socket}"]
        argv += ["--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none"]
        argv += ["--ip-forward=false", "--ip-masq=false", "--userland-proxy=false"]
        env = base_env(SSL_CERT_FILE=str(self.ssl_cert_file), HOME=str(self.directory))
        binds = [(self.hosts_file, "/etc/hosts"), (self.etc_docker, "/etc/docker")]
        with self.log.open("w") as log:
            self.proc = self.ns.spawn(
                with_private_mounts(argv, pid=True, binds=binds), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise Unavailable(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if "API listen on" in self.log.read_text(errors="replace") and self.socket.exists():
                break
            if time.monotonic() > deadline:
                raise Unavailable(f"dockerd not listening after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.05)
        version = self.docker("version", "--format", "{{.Server.Version}}", env=base_env(HOME=str(self.directory)))
        if version.returncode != 0:
            raise Unavailable(f"dockerd does not answer `docker version`: {version.stderr.strip()}")
        self.version = version.stdout.strip()

    def log_tail(self, size: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def mark(self) -> int:
        return len(self.log.read_text(errors="replace")) if self.log.exists() else 0

    def log_since(self, mark: int) -> str:
        return self.log.read_text(errors="replace")[mark:]

    def main_pid(self) -> int | None:
        """dockerd's pid as seen from here: the only child of the ``unshare`` that forked it."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            if children:
                return int(children[0])
        return None

    def reload(self, config: Mapping[str, Any]) -> None:
        """Write daemon.json and SIGHUP dockerd (registry-mirrors is reloadable); wait until it says so."""
        pid = self.main_pid()
        assert pid is not None, "dockerd is not running"
        mark = self.mark()
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "Reloaded configuration" not in self.log_since(mark):
            if "Error reloading" in self.log_since(mark) or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not reload its configuration:\n{self.log_since(mark)}")
            time.sleep(0.05)

    def docker(
        self, *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        """The daemon's own CLI (see daemon_cli), talking to this daemon."""
        env = {**env, "DOCKER_HOST": f"unix://{self.socket}"}
        return self.ns.run([daemon_cli(), *args], env=env, input=input, timeout=timeout)

    def close(self) -> None:
        """SIGTERM dockerd (it stops its containerd), end its PID namespace whatever is left, then stop
        the registry process and the fake Docker Hub started for it."""
        if self.proc is not None:
            pid = self.main_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(20)
            # unshare blocks SIGTERM while its child runs: stop() ends with SIGKILL, and --kill-child
            # then takes the PID namespace (and everything in it) down.
            stop(self.proc, grace=1)
        for part in (self.hub.proc, self.registry.proc):
            if part is not None:
                stop(part)


# --- the fake Docker Hub -----------------------------------------------------------------------------


@dataclass
class FakeHub:
    """fake_hub.py on HUB_ADDRESS:443 (TLS, names HUB_HOSTS): records what credentials reach Docker Hub."""

    ns: Namespace
    directory: Path
    pki: Pki
    proc: subprocess.Popen[str] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "requests.jsonl"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(HERE / "fake_hub.py"), "--listen", HUB_ADDRESS, "--log", str(self.log)]
        argv += ["--cert", str(self.pki.server_cert), "--key", str(self.pki.server_key)]
        err: IO[str]
        with (self.directory / "stderr.log").open("w") as err:
            self.proc = self.ns.spawn(
                argv, env=base_env(PYTHONDONTWRITEBYTECODE="1"), stdout=subprocess.PIPE, stderr=err
            )
        line = read_line(self.proc, timeout=30)
        if line != "ready":
            raise Unavailable(f"the fake Docker Hub said {line!r}")

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


# --- podman and buildah ---------------------------------------------------------------------------------


@dataclass
class Containers:
    """Rootful podman and buildah with vfs storage under ``directory`` (not /var/lib/containers)."""

    ns: Namespace
    directory: Path
    etc_containers: Path  # bind-mounted over /etc/containers: policy.json, empty registries.conf

    def _storage(self) -> list[str]:
        return [
            # podman wants a runroot path under 50 characters: the suite's own directory, bind-mounted
            # over /mnt in the tools' private mount namespace (see _private), keeps it across runs.
            *("--root", str(self.directory / "storage"), "--runroot", "/mnt/runroot"),
            *("--storage-driver", "vfs"),
        ]

    def podman(self, *args: str, env: Mapping[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
        argv = [require("podman")["podman"], *self._storage(), "--cgroup-manager", "cgroupfs"]
        argv += ["--events-backend", "file", "--tmpdir", "/mnt/podman-tmp", *args]
        return self.ns.run(self._private(argv), env=self._env(env), timeout=timeout)

    def buildah(self, *args: str, env: Mapping[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
        argv = [require("buildah")["buildah"], *self._storage(), "--cgroup-manager", "cgroupfs", *args]
        return self.ns.run(self._private(argv), env=self._env(env), timeout=timeout)

    def _private(self, argv: Sequence[str]) -> list[str]:
        mnt, cache = self.directory / "mnt", self.directory / "var-lib-containers"
        mnt.mkdir(parents=True, exist_ok=True)
        binds = [(self.etc_containers, "/etc/containers"), (mnt, "/mnt")]
        if Path("/var/lib/containers").is_dir():  # containers/image's blob info cache for root
            cache.mkdir(exist_ok=True)
            binds.append((cache, "/var/lib/containers"))
        return with_private_mounts(argv, binds=binds)

    def _env(self, env: Mapping[str, str]) -> dict[str, str]:
        tmp = self.directory / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {**env, "TMPDIR": str(tmp)}


def write_etc_containers(directory: Path) -> Path:
    """A private /etc/containers: accept any image, no mirrors or search registries, no storage.conf."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    (directory / "registries.conf").write_text("# e2e: no mirrors, no search registries\n")
    (directory / "containers.conf").write_text("# e2e: defaults only\n")
    return directory


# --- the daemon side of the rig -------------------------------------------------------------------------


@dataclass
class Daemons:
    """What the daemon tests add to the rig: the base image and the counting wrapper."""

    root: Path
    base: OciImage
    counter_bin: Path
    hub_stub_log: Path

    def client_env(self, rig: Rig, home: Path, log: Path | None = None, **extra: str) -> dict[str, str]:
        """rig.env with the counting wrapper first on PATH (logging to ``log``)."""
        env = rig.env(home)
        env.update(extra)
        env["PATH"] = os.pathsep.join([str(self.counter_bin), env["PATH"]])
        env["E2E_HELPER_LOG"] = str(log) if log is not None else os.devnull
        return env


def process_leftovers(marker: str) -> list[str]:
    """Command lines of processes on this machine that mention ``marker`` (a directory of the suite)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in cmdline:
                found.append(f"{proc.name}: {cmdline.strip()}")
    return found


def prepare_daemons(rig: Rig) -> Daemons:
    """Build the base image and push it to both registry names (explicit credentials, no helper);
    write the counting wrapper and the Docker Hub alias stub. Raises Unavailable when a part is missing."""
    from .rig import HOSTS

    base = build_busybox_image(rig.root / "base-image", BASE_TAG)
    env = rig.env(rig.new_home())
    for host in HOSTS:
        pushed = rig.skopeo(
            *("copy", "--preserve-digests", "--dest-creds", f"AWS:{rig.password}"),
            *(f"oci:{base.layout}:{BASE_TAG}", f"docker://{host}/{BASE_REPOSITORY}:{BASE_TAG}"),
            env=env,
            timeout=60,
        )
        if pushed.returncode != 0:
            raise RuntimeError(f"pushing the base image to {host}: {pushed.stderr}")
    counter_bin = rig.root / "counter-bin"
    write_counter(counter_bin, installed_helper())
    hub_stub_log = rig.stub_logs / "ecr-hubalias.log"
    write_hub_alias_stub(rig.stub_bin, hub_stub_log, rig.password)
    return Daemons(rig.root, base, counter_bin, hub_stub_log)


def start_dockerd(rig: Rig) -> Dockerd:
    """dockerd in the rig's namespace, with the rig's registry storage served again on DAEMON_ADDRESS
    and the fake Docker Hub on HUB_ADDRESS. Raises Unavailable when a part cannot run here; on any
    failure everything it started is stopped again."""
    from .rig import HOSTS

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
    daemon = Dockerd(rig.ns, rig.root / "dockerd", etc_docker, hosts_file, hub.pki.ca_cert, registry, hub)
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
    except BaseException:
        daemon.close()
        raise
    return daemon
