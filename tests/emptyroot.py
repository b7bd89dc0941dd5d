"""Run the self-contained artifact in an empty root: the half of test_selfcontained.py inside a namespace.

Usage (as root, already inside ``unshare --net --mount``)::

    python tests/emptyroot.py TARBALL VERSION WORKDIR

Brings up ``lo`` of the new (empty) network namespace, starts the fake AWS and the TLS proxy of
``benchmarks/tlsproxy.py`` on it, extracts TARBALL into WORKDIR/root, which then holds the artifact's
directory, one CA file (``/etc/ssl/certs/ca-certificates.crt``: the proxy's certificate) and ``/tmp``,
nothing else: no /lib, /usr, /bin, /proc, /dev, libc or Python. Each command runs through the host's
``chroot`` into that root with a bare environment: no endpoint override, the real AWS host names,
``HTTPS_PROXY`` to the loopback proxy, no ``AWS_CA_BUNDLE`` (the artifact must find the root's CA file
itself). Prints one ``ok`` line per check; exit 1 at the first failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fakeecr import FakeAWS  # noqa: E402

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NOT_FOUND = "credentials not found in native keychain"
CA_FILE = "etc/ssl/certs/ca-certificates.crt"
# Under qemu-user (packaging/arm64 runs the arm64 artifact here) a cold get is about ten times slower.
EMULATED = os.environ.get("ECR_TEST_EMULATED") == "1"
TIMEOUT = 600.0 if EMULATED else 120.0
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"  # the host's, found on the host's PATH


class Failed(Exception):
    pass


def tlsproxy() -> Any:
    spec = importlib.util.spec_from_file_location("tlsproxy", HERE.parent / "benchmarks" / "tlsproxy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_root(tarball: Path, root: Path, ca_cert: Path) -> str:
    """Extract the artifact into an empty root, add one CA file and /tmp; the artifact's top directory."""
    root.mkdir(mode=0o755)
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        if any(Path(n).is_absolute() or ".." in Path(n).parts or n.split("/")[0] != top for n in names):
            raise Failed(f"{tarball.name} holds paths outside its top directory")
        tar.extractall(root)  # noqa: S202 - the names were checked just above
    (root / CA_FILE).parent.mkdir(parents=True)
    shutil.copyfile(ca_cert, root / CA_FILE)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    found = sorted(p.name for p in root.iterdir())
    if found != sorted([top, "etc", "tmp"]):
        raise Failed(f"the root holds {found}")
    return top


class Root:
    def __init__(self, root: Path, top: str, proxy: Any) -> None:
        self.root = root
        self.top = top
        self.proxy = proxy

    def run(
        self, args: list[str], stdin: str = "", program: str = "docker-credential-ecr-login", **extra: str
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"/{self.top}",  # inside the root: only the artifact's directory
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0001",
            "AWS_SECRET_ACCESS_KEY": "fakeSecretAccessKeyFakeSecretAccessKey00",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ECR_TIMEOUT": "240" if EMULATED else "30",
            "HTTPS_PROXY": self.proxy.url,
            **extra,
        }
        # chroot(8) from the host execs PROGRAM inside the root; a bare name is found on the root's PATH.
        return subprocess.run(
            [CHROOT, str(self.root), program, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
            check=False,
        )


def expect(condition: bool, what: str, proc: subprocess.CompletedProcess[str] | None = None) -> None:
    if not condition:
        detail = f": exit {proc.returncode}, stdout {proc.stdout[:300]!r}, stderr {proc.stderr[:800]!r}" if proc else ""
        raise Failed(what + detail)


def checks(r: Root, fake: FakeAWS, version: str) -> list[str]:
    done = []
    absolute = f"/{r.top}/docker-credential-ecr-login"
    proc = r.run(["version"], program=absolute)
    expect(proc.returncode == 0 and proc.stdout.split()[-1:] == [version], f"version prints {version}", proc)
    proc = r.run(["--version"])  # found on PATH: the launcher finds its directory without /proc
    expect(proc.returncode == 0 and proc.stdout.split()[-1:] == [version], "--version, called by name", proc)
    done.append(f"version (by path and by name, no /proc): {version}")

    proc = r.run(["get"], HOST + "\n", program=absolute)
    expect(proc.returncode == 0 and proc.stderr == "", "get succeeds silently", proc)
    answer = json.loads(proc.stdout)
    expect(answer.get("Username") == "AWS" and answer.get("Secret") == fake.issued[-1], "get: the fake's token", proc)
    expect(fake.calls("ecr") == 1 and r.proxy.requests >= 1, "one ECR call, through the TLS proxy")
    done.append("get: a token over TLS, trusted through the root's CA file (no AWS_CA_BUNDLE)")

    proc = r.run(["get"], HOST + "\n", program=absolute)
    expect(proc.returncode == 0 and json.loads(proc.stdout)["Secret"] == answer["Secret"], "get again", proc)
    expect(fake.calls("ecr") == 1, "the second get is a cache hit (no call)")
    proc = r.run(["list"], program=absolute)
    expect(proc.returncode == 0 and json.loads(proc.stdout) == {f"https://{HOST}": "AWS"}, "list", proc)
    done.append("get again from the cache under /tmp; list")

    proc = r.run(["get"], "registry.example.com\n", program=absolute)
    expect(proc.returncode == 1 and proc.stdout.strip() == NOT_FOUND, "a non-ECR host is not found", proc)
    done.append("get of a non-ECR host: the protocol's error text, exit 1")

    proc = r.run(["doctor", HOST], program=absolute)
    crashed = "Traceback" in proc.stdout + proc.stderr
    expect(proc.returncode == 0 and not crashed and "/etc/ssl/certs/ca-certificates.crt" in proc.stdout, "doctor", proc)
    done.append("doctor: exit 0, shows the CA store it chose")

    request = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest"}
    request["image"] = f"{HOST}/app:1"
    proc = r.run([], json.dumps(request), program=f"/{r.top}/ecr-credential-provider")
    expect(proc.returncode == 0, "kubelet provider answers", proc)
    reply = json.loads(proc.stdout)
    expect(reply.get("kind") == "CredentialProviderResponse" and HOST in reply.get("auth", {}), "kubelet reply", proc)
    done.append("ecr-credential-provider (kubelet mode): a CredentialProviderResponse")

    # Without the CA file the proxy's certificate is trusted by nothing (the bundled store does not
    # know it): the token above came through the root's CA file, not by luck.
    ca = r.root / CA_FILE
    ca.rename(ca.with_suffix(".away"))
    before = fake.calls("ecr")
    try:
        proc = r.run(["get"], HOST + "\n", program=absolute, AWS_ECR_DISABLE_CACHE="1")
    finally:
        ca.with_suffix(".away").rename(ca)
    expect(proc.returncode == 1 and proc.stdout.strip() == NOT_FOUND, "get without the CA file fails", proc)
    expect("certificate" in proc.stderr and fake.calls("ecr") == before, "one line on the untrusted certificate", proc)
    done.append("without the CA file: not found, one stderr line on the certificate, no ECR call")
    return done


def main(argv: list[str]) -> int:
    tarball, version, work = Path(argv[0]).resolve(), argv[1], Path(argv[2]).resolve()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tls = tlsproxy()
    cert, key = tls.make_certificate(work / "certs")
    root = work / "root"
    try:
        top = make_root(tarball, root, cert)
        print(f"  ok    root: /{top}, /{CA_FILE}, /tmp and nothing else")
        with FakeAWS() as fake, tls.TLSProxy(fake.url, cert, key, cert) as proxy:
            for line in checks(Root(root, top, proxy), fake, version):
                print(f"  ok    {line}")
    except (Failed, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"  FAIL  {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
