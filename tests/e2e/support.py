"""The machinery of the end-to-end suite: a private network + mount namespace, a test CA, a real
registry, the fake AWS endpoint, a tiny OCI image, stub helpers for the negative controls.

Everything the clients talk to lives in one namespace created with ``unshare --mount --net``:
loopback only, and an ``/etc/hosts`` bind-mounted over the machine's (privately, so the machine's
own file is never touched) that sends the ECR host names to 127.0.0.1. The pytest process stays in
the root namespaces; every process of the suite is started inside with ``nsenter`` and stopped at
the end, and is also killed by the kernel if pytest itself dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

HERE = Path(__file__).resolve().parent
TESTS_DIR = HERE.parent

ACCOUNT = "123456789012"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
PUBLIC_HOST = "public.ecr.aws"
HELPER_PROGRAM = "docker-credential-ecr-login"
NOT_FOUND = "credentials not found in native keychain"
# What containers/image and the docker CLI print when the registry answers 401.
AUTH_ERROR = re.compile(r"unauthorized|authentication required|401", re.IGNORECASE)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


class Unavailable(Exception):
    """A part the suite needs cannot run on this machine (missing tool, no namespaces, ...)."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def which(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise Unavailable(f"`{name}` is not on PATH")
    return found


# --- processes -------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc: Any = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it if the pytest process goes away."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps; closes our pipe ends."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line from ``proc.stdout`` within ``timeout`` seconds, or an Unavailable error."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise Unavailable(f"{proc.args!r} printed nothing within {timeout:.0f}s")
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr is not None else ""
        raise Unavailable(f"{proc.args!r} exited with {proc.wait(5)} before it was ready: {err.strip()}")
    return line.rstrip("\n")


class Namespace:
    """A holder process in new network + mount namespaces, and the means to run things inside it.

    The holder brings ``lo`` up, bind-mounts ``hosts_file`` over ``/etc/hosts`` (mount propagation
    private: the machine never sees it) and then waits on its stdin, so it also ends when the pytest
    process does.
    """

    def __init__(self, workdir: Path, hosts_file: Path) -> None:
        self.workdir = workdir
        self.hosts_file = hosts_file
        self._holder: subprocess.Popen[str] | None = None
        self._children: list[subprocess.Popen[Any]] = []
        self._nsenter = ""

    @property
    def pid(self) -> int:
        assert self._holder is not None, "namespace not started"
        return self._holder.pid

    def start(self) -> None:
        unshare = which("unshare")
        self._nsenter = which("nsenter")
        ip = which("ip")
        mount = which("mount")
        script = 'set -e; "$1" link set lo up; "$2" --bind "$3" /etc/hosts; echo ready; exec cat >/dev/null'
        argv = [unshare, "--mount", "--net", "--propagation", "private", "--"]
        argv += ["/bin/sh", "-c", script, "e2e-netns", ip, mount, str(self.hosts_file)]
        self._holder = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - a tiny async-signal-safe call; the suite starts no threads in pytest
        )
        try:
            line = read_line(self._holder, timeout=15)
        except Unavailable as exc:
            self.close()
            raise Unavailable(f"cannot create a network + mount namespace with `unshare`: {exc}") from None
        if line != "ready":
            self.close()
            raise Unavailable(f"namespace holder said {line!r} instead of 'ready'")

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside the namespace (nsenter execs it: same pid, no extra process)."""
        return [self._nsenter, f"--target={self.pid}", "--net", "--mount", f"--wd={self.workdir}", "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        input: str | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(argv),
            env=dict(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # see start()
        )

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            self.argv(argv),
            env=dict(env),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            text=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - see start()
        )
        self._children.append(proc)
        return proc

    def close(self) -> None:
        """Stop every process started in the namespace (newest first), then the holder."""
        for child in reversed(self._children):
            stop(child)
        if self._holder is not None:
            if self._holder.stdin is not None:
                with contextlib.suppress(OSError):
                    self._holder.stdin.close()  # `cat` sees EOF and the holder exits by itself
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._holder.wait(5)
            stop(self._holder)

    def processes(self) -> list[subprocess.Popen[Any]]:
        return [*self._children, *([self._holder] if self._holder is not None else [])]


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing of the machine's AWS, Docker, containers or CA settings leaks in."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


# --- PKI ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    cert_dir: Path  # a directory holding only ca.crt, for skopeo's --cert-dir options


def _openssl(args: Sequence[str], cwd: Path) -> None:
    done = subprocess.run([which("openssl"), *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def make_pki(directory: Path, hosts: Iterable[str]) -> Pki:
    """A throwaway CA (trusted only through the clients' env and flags) and a server certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(
        [
            *("req", "-x509", *ec, "-sha256", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt"),
            *("-subj", "/CN=docker-credential-ecr e2e throwaway CA"),
            *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        ],
        directory,
    )
    hosts = list(hosts)
    _openssl(["req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={hosts[0]}"], directory)
    (directory / "server.ext").write_text(
        "subjectAltName=" + ",".join(f"DNS:{h}" for h in hosts) + "\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl(
        [
            *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"),
            *("-sha256", "-days", "2", "-extfile", "server.ext", "-out", "server.crt"),
        ],
        directory,
    )
    cert_dir = directory / "certs.d"
    cert_dir.mkdir(exist_ok=True)
    shutil.copy(directory / "ca.crt", cert_dir / "ca.crt")
    return Pki(directory / "ca.crt", directory / "server.crt", directory / "server.key", cert_dir)


# --- the registry ------------------------------------------------------------------------------------


def write_htpasswd(path: Path, user: str, password: str) -> None:
    # bcrypt reads only the first 72 bytes of a password: the suite's passwords are far shorter, and
    # the wrong ones differ from the first byte on, so a negative control cannot pass by truncation.
    assert len(password.encode()) < 72
    done = subprocess.run(
        [which("htpasswd"), "-B", "-b", "-n", user, password],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"htpasswd failed: {done.stderr.strip()}")
    path.write_text(done.stdout.strip() + "\n")


@dataclass
class Registry:
    """The CNCF distribution registry (Debian `docker-registry`) with TLS and htpasswd auth, on :443."""

    ns: Namespace
    directory: Path
    pki: Pki
    htpasswd: Path
    listen: str = "127.0.0.1:443"
    storage: Path | None = None  # another registry's storage, to serve the same images on another address
    proc: subprocess.Popen[str] | None = None
    log: Path = field(init=False)

    def start(self, timeout: float = 20) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = self.directory / "registry.log"
        config = {  # JSON is YAML: no quoting surprises
            "version": "0.1",
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage or self.directory / "storage")},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.listen,
                "secret": secrets.token_hex(16),
                "tls": {"certificate": str(self.pki.server_cert), "key": str(self.pki.server_key)},
            },
            "auth": {"htpasswd": {"realm": "e2e-ecr", "path": str(self.htpasswd)}},
        }
        config_file = self.directory / "config.yml"
        config_file.write_text(json.dumps(config, indent=2))
        with self.log.open("w") as log:
            self.proc = self.ns.spawn(
                [which("docker-registry"), "serve", str(config_file)],
                env=base_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log_text():
            if self.proc.poll() is not None:
                raise Unavailable(f"docker-registry exited with {self.proc.returncode}:\n{self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise Unavailable(f"docker-registry not listening after {timeout:.0f}s:\n{self.log_text()[-2000:]}")
            time.sleep(0.02)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def mark(self) -> int:
        """A position in the log; pass it to ``statuses`` to see only what happened after it."""
        return len(self.log_text())

    def statuses(self, since: int, path: str, user_agent: str) -> list[int]:
        """HTTP statuses of the access-log lines after ``since`` for paths starting with ``path``,
        from clients whose user agent contains ``user_agent``."""
        found = []
        for line in self.log_text()[since:].splitlines():
            access = re.search(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"', line)
            if access and access.group(1).startswith(path) and user_agent in access.group(3):
                found.append(int(access.group(2)))
        return found

    def authorized(self, since: int, path: str, user_agent: str) -> int:
        """How many requests after ``since`` for paths starting with ``path``, from clients whose user
        agent contains ``user_agent``, passed htpasswd (whose only user is AWS): the registry logs
        the user name only on errors, so a clean pull shows up here and not in authenticated_users."""
        count = 0
        for line in self.log_text()[since:].splitlines():
            if 'msg="authorized request"' not in line:
                continue
            fields = dict(re.findall(r'([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)', line))
            uri = fields.get("http.request.uri", "").strip('"')
            if uri.startswith(path) and user_agent in fields.get("http.request.useragent", ""):
                count += 1
        return count

    def authenticated_users(self, repository: str, host: str) -> set[str]:
        """The users the registry logged as authenticated on requests for ``host/repository``."""
        users: set[str] = set()
        for line in self.log_text().splitlines():
            fields = dict(re.findall(r'([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)', line))
            if fields.get("vars.name", "").strip('"') != repository:
                continue
            if fields.get("http.request.host", "").strip('"') != host:
                continue
            user = fields.get("auth.user.name", "").strip('"')
            if user:
                users.add(user)
        return users


# --- the fake AWS endpoint ---------------------------------------------------------------------------


class FakeAws:
    """``tests/fakeecr.py``'s FakeAWS, run by fake_runner.py inside the namespace, driven over a pipe."""

    def __init__(self, ns: Namespace, password: str, stderr_log: Path) -> None:
        self.password = password
        with stderr_log.open("w") as err:
            self.proc = ns.spawn(
                [sys.executable, str(HERE / "fake_runner.py"), "--password", password],
                env=base_env(PYTHONDONTWRITEBYTECODE="1"),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        try:
            hello = json.loads(read_line(self.proc, timeout=30))
        except Unavailable as exc:
            raise Unavailable(f"the fake AWS endpoint did not start: {exc}\n{stderr_log.read_text()}") from None
        self.url: str = hello["url"]
        self.env: dict[str, str] = {str(k): str(v) for k, v in hello["env"].items()}

    def _ask(self, request: Mapping[str, str]) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(read_line(self.proc, timeout=10))
        if "error" in answer:
            raise RuntimeError(f"fake_runner: {answer['error']}")
        return answer["result"]

    def calls(self, operation: str) -> int:
        """How many requests for ``operation`` the fake has answered so far."""
        return int(self._ask({"calls": operation}))

    def issued(self) -> list[str]:
        return [str(p) for p in self._ask({"issued": ""})]


# --- a tiny OCI image, built here, no download --------------------------------------------------------


@dataclass(frozen=True)
class OciImage:
    layout: Path
    tag: str
    digest: str  # of the manifest
    manifest: bytes
    config_digest: str
    layer_digest: str
    file_name: str
    file_content: bytes


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_oci_image(layout: Path, tag: str, file_name: str, file_content: bytes) -> OciImage:
    """An OCI image layout holding one image: one gzip layer with one file, its config, its manifest."""
    info = tarfile.TarInfo(file_name)
    info.size, info.mtime, info.mode = len(file_content), 0, 0o644
    config = {"Labels": {"org.opencontainers.image.title": "docker-credential-ecr e2e"}}
    return build_image(
        layout,
        tag,
        members=[(info, file_content)],
        container_config=config,
        file_name=file_name,
        file_content=file_content,
    )


def build_image(
    layout: Path,
    tag: str,
    *,
    members: Sequence[tuple[tarfile.TarInfo, bytes | None]],
    container_config: Mapping[str, Any],
    file_name: str,
    file_content: bytes,
    history: Sequence[Mapping[str, str]] = (),
) -> OciImage:
    """An OCI image layout holding one image: one gzip layer of ``members``, its config, its manifest.

    ``file_name``/``file_content`` name one regular file of the layer that tests read back. Builders
    that add layers (buildah) want one ``history`` entry per layer of the base image."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> dict[str, Any]:
        digest = _digest(data)
        (blobs / digest.removeprefix("sha256:")).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    layer_tar = raw.getvalue()
    layer = put(gzip.compress(layer_tar, mtime=0))
    config = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": dict(container_config),
                "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
                **({"history": [dict(h) for h in history]} if history else {}),
            },
            sort_keys=True,
        ).encode()
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [{"mediaType": OCI_LAYER_GZIP, **layer}],
        }
    ).encode()
    described = put(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, **described, "annotations": {REF_NAME: tag}}],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return OciImage(
        layout, tag, described["digest"], manifest, config["digest"], layer["digest"], file_name, file_content
    )


def oci_manifest_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(REF_NAME) == tag:
            return str(entry["digest"])
    raise KeyError(f"{tag} not in {layout}/index.json")


def oci_layer_file(layout: Path, layer_digest: str, name: str) -> bytes:
    blob = (layout / "blobs" / "sha256" / layer_digest.removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


# --- credential helpers: the real one on PATH, and stubs for the negative controls -------------------

_STUB = """#!/bin/sh
# docker-credential-{name}: an e2e negative control, never a real helper. {doc}
url=""
case "$1" in get|erase) url=$(cat) ;; esac
printf '%s %s\\n' "$1" "$url" >> '{log}'
case "$1" in
  get) {get} ;;
  list) echo '{{}}' ;;
  store|erase) cat >/dev/null; exit 0 ;;
  *) echo "unknown action: $1"; exit 1 ;;
esac
"""

STUBS = {
    "ecr-wrongpw": (
        "Answers every get with user AWS and a password the registry does not know.",
        """printf '{{"ServerURL":"%s","Username":"AWS","Secret":"%s"}}\\n' "$url" '{wrong}'""",
    ),
    "ecr-notfound": (
        "Answers every get with docker's not-found.",
        f"echo '{NOT_FOUND}'; exit 1",
    ),
}


def write_stub_helpers(bin_dir: Path, log_dir: Path, wrong_password: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    for name, (doc, get) in STUBS.items():
        script = bin_dir / f"docker-credential-{name}"
        body = _STUB.format(name=name, doc=doc, log=log_dir / f"{name}.log", get=get.format(wrong=wrong_password))
        script.write_text(body)
        script.chmod(0o755)


def stub_calls(log_dir: Path, name: str) -> list[str]:
    log = log_dir / f"{name}.log"
    return log.read_text().splitlines() if log.exists() else []


def installed_helper() -> Path:
    """The console script of the package as installed in this interpreter's environment."""
    helper = Path(sys.executable).parent / HELPER_PROGRAM
    if not helper.exists():
        raise Unavailable(f"{helper} does not exist: install the package (pip install -e .) in this venv")
    return helper


def write_docker_config(
    home: Path,
    *,
    cred_helpers: Mapping[str, str] | None = None,
    creds_store: str | None = None,
    auths: Iterable[str] = (),
) -> Path:
    config: dict[str, Any] = {"auths": {host: {} for host in auths}}
    if cred_helpers:
        config["credHelpers"] = dict(cred_helpers)
    if creds_store:
        config["credsStore"] = creds_store
    path = home / ".docker" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)
