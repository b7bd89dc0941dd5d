"""The self-contained artifact needs nothing from the host but the kernel.

``packaging/check`` builds ``build/packaging/dist/docker-credential-ecr-VERSION-linux-ARCH.tar.gz``
(``ECR_SELFCONTAINED_TARBALL`` names another); these tests run that tarball as a user gets it:

- in an empty root (``tests/emptyroot.py``, inside ``unshare --net --mount``): the artifact, one CA
  file and /tmp, nothing else; ``get`` over TLS through a loopback proxy, ``list``, ``version``,
  ``doctor``, the kubelet mode;
- on this host with ``LD_DEBUG=libs`` and an ``nsswitch.conf`` that asks for NSS modules: the loader
  never even tries a file outside the artifact;
- ``packaging/selfcontain.py check`` refuses a library path or a loader that would reach the host.

They need root, ``unshare``, ``chroot`` and the built tarball: skipped without them, failed when
``CI=true`` (CI must run them).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from docker_credential_ecr._version import __version__
from fakeecr import FakeAWS
from support import ECR_HOST

ROOT = Path(__file__).resolve().parent.parent
TARBALL_ENV = "ECR_SELFCONTAINED_TARBALL"
NAME = f"docker-credential-ecr-{__version__}-linux-{platform.machine()}"


def missing(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: this test must run)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def tarball() -> Path:
    path = Path(os.environ.get(TARBALL_ENV) or ROOT / "build" / "packaging" / "dist" / f"{NAME}.tar.gz")
    if not path.is_file():
        missing(f"{path} is not built (packaging/check builds it)")
    return path


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        missing("needs root (namespaces, chroot)")
    for tool in ("unshare", "chroot", "ip", "patchelf"):
        if shutil.which(tool) is None:
            missing(f"needs {tool}")


def extract(tarball: Path, into: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(into)  # noqa: S202 - our own artifact, built by packaging/check
    return into / tarball.name.removesuffix(".tar.gz")


@pytest.mark.slow
@pytest.mark.usefixtures("as_root")
def test_runs_in_an_empty_root_with_only_a_ca_file(tarball: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        ["unshare", "--net", "--mount", "--", sys.executable, str(ROOT / "tests" / "emptyroot.py"),
         str(tarball), __version__, str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("  ok  ") == 8, proc.stdout


@pytest.mark.slow
@pytest.mark.usefixtures("as_root")
def test_the_loader_never_tries_a_host_library(tarball: Path, tmp_path: Path, fake: FakeAWS) -> None:
    """NSS modules the host's nsswitch.conf names are looked for only where they cannot be found."""
    top = extract(tarball, tmp_path)
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("passwd: systemd files\ngroup: files\nhosts: mymachines files dns\n", encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        **fake.env(),
        # A name, not an address: getaddrinfo goes through NSS (mymachines first).
        "AWS_ENDPOINT_URL": fake.url.replace("127.0.0.1", "localhost"),
        "AWS_ENDPOINT_URL_ECR": fake.url.replace("127.0.0.1", "localhost"),
        "NO_PROXY": "localhost",
        "AWS_ECR_DISABLE_CACHE": "1",
    }
    # LD_DEBUG for the artifact alone (sh and mount are host programs, traced with it they would count).
    script = 'mount --bind "$0" /etc/nsswitch.conf && exec env LD_DEBUG=libs "$@"'
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script, str(nsswitch),
         str(top / "docker-credential-ecr-login"), "get"],
        input=ECR_HOST, capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert fake.calls("ecr") == 1
    tried = re.findall(r"trying file=(\S+)", proc.stderr)
    loaded = re.findall(r"calling init: (\S+)", proc.stderr)
    assert any("libnss_mymachines" in path for path in tried), "NSS did not look for its module"
    assert any("/_ssl." in path for path in loaded), "the TLS module was not loaded"
    inside = str(top.resolve()) + "/"
    outside = sorted({p for p in tried if not p.startswith(inside) and not re.match(r"/_+/", p)})
    assert outside == [], f"the loader tried host files: {outside[:10]}"
    assert [p for p in loaded if not p.startswith(inside)] == []


def selfcontain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "selfcontain.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.usefixtures("as_root")
def test_check_refuses_what_would_come_from_the_host(tarball: Path, tmp_path: Path) -> None:
    top = extract(tarball, tmp_path)
    proc = selfcontain("check", str(top))
    assert proc.returncode == 0, proc.stderr
    assert "all from the bundle" in proc.stdout

    libssl = next((top / "lib" / "_internal").glob("libssl.so*"))
    subprocess.run(["patchelf", "--set-rpath", "/usr/lib/x86_64-linux-gnu", str(libssl)], check=True)
    subprocess.run(["patchelf", "--add-needed", "libhost-only.so.1", str(libssl)], check=True)
    (loader,) = (top / "lib").glob("ld-*.so*")
    host_loader = subprocess.run(["readelf", "-l", "-W", "/bin/sh"], capture_output=True, text=True, check=True)
    interp = re.search(r"interpreter: (\S+)\]", host_loader.stdout)
    assert interp is not None
    shutil.copyfile(interp.group(1), loader)
    proc = selfcontain("check", str(top))
    assert proc.returncode == 1
    assert f"lib/_internal/{libssl.name} needs libhost-only.so.1, which is not in lib/_internal" in proc.stderr
    assert f"lib/_internal/{libssl.name} has RPATH/RUNPATH /usr/lib/x86_64-linux-gnu, outside the bundle" in proc.stderr
    assert f"lib/{loader.name} still reads the host's /etc/ld.so.cache" in proc.stderr
    assert re.search(rf"lib/{re.escape(loader.name)} searches the host's /\S*lib", proc.stderr)


def _entry() -> Any:
    spec = importlib.util.spec_from_file_location("entry", ROOT / "packaging" / "pyinstaller" / "entry.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("files", "environ", "chosen"),
    [
        pytest.param([], {}, None, id="no-store-bundled"),
        pytest.param(["etc/ssl/certs/ca-certificates.crt"], {}, "/etc/ssl/certs/ca-certificates.crt", id="debian"),
        pytest.param(["etc/pki/tls/certs/ca-bundle.crt"], {}, "/etc/pki/tls/certs/ca-bundle.crt", id="rhel"),
        pytest.param(["etc/ssl/ca-bundle.pem"], {}, "/etc/ssl/ca-bundle.pem", id="suse"),
        pytest.param(["etc/ssl/cert.pem"], {}, "/etc/ssl/cert.pem", id="alpine-bare"),
        pytest.param(["etc/ssl/certs/1234abcd.0"], {}, "/etc/ssl/certs", id="hashed-dir"),
        pytest.param(["etc/ssl/certs/README"], {}, None, id="unhashed-dir-is-no-store"),
        pytest.param(
            ["etc/ssl/certs/ca-certificates.crt", "opt/ca.pem"], {"SSL_CERT_FILE": "/opt/ca.pem"}, "/opt/ca.pem",
            id="ssl-cert-file-first",
        ),
        pytest.param(
            ["etc/ssl/certs/ca-certificates.crt", "opt/certs/x.0"], {"SSL_CERT_DIR": "/nowhere:/opt/certs"},
            "/opt/certs", id="ssl-cert-dir-first-existing",
        ),
        pytest.param(
            ["etc/pki/tls/certs/ca-bundle.crt"], {"SSL_CERT_FILE": "/missing.pem"}, "/etc/pki/tls/certs/ca-bundle.crt",
            id="missing-ssl-cert-file-ignored",
        ),
    ],
)  # fmt: skip
def test_ca_store_order(tmp_path: Path, files: list[str], environ: dict[str, str], chosen: str | None) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    assert _entry().system_ca(dict(environ), root=str(tmp_path)) == chosen


def test_entry_sets_aws_ca_bundle_only_when_unset(tmp_path: Path) -> None:
    entry = _entry()
    argv = ["/opt/x/lib/docker-credential-ecr-login", "get"]
    environ = {"DOCKER_CREDENTIAL_ECR_ARGV0": "ecr-credential-provider", "_PYI_PARENT_PROCESS_LEVEL": "1"}
    entry.prepare(environ, argv)
    assert argv == ["ecr-credential-provider", "get"]
    assert "DOCKER_CREDENTIAL_ECR_ARGV0" not in environ
    assert "_PYI_PARENT_PROCESS_LEVEL" not in environ
    assert environ.get("AWS_CA_BUNDLE") == entry.system_ca({})  # this machine's store (or none)
    mine = {"AWS_CA_BUNDLE": str(tmp_path / "mine.pem")}
    entry.prepare(mine, ["x"])
    assert mine == {"AWS_CA_BUNDLE": str(tmp_path / "mine.pem")}
