"""Entry point of the self-contained bundle: one executable, two names.

``docker-credential-ecr-login`` is the credential helper; ``ecr-credential-provider`` (a symlink to
it, or a copy) is the kubelet plugin, as the two console scripts of the wheel.

Run through the static launcher (``packaging/launcher``), the name the user called comes in
``DOCKER_CREDENTIAL_ECR_ARGV0``: PyInstaller's bootloader needs argv[0] to be its own path.

TLS trust: the bundle carries its own OpenSSL, whose built-in paths are the build machine's. Unless
the user set ``AWS_CA_BUNDLE``, the host's system store is used where there is one (``SSL_CERT_FILE``,
``SSL_CERT_DIR``, then the usual Debian/Ubuntu/Alpine, RHEL/Amazon Linux/Fedora and SUSE files and
directories), else botocore's bundled ``cacert.pem`` (Mozilla's roots), by setting ``AWS_CA_BUNDLE``
for botocore. ``doctor`` shows the choice.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import MutableMapping

# The files and then the directories where Linux distributions keep their CA store.
SYSTEM_CA_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine (ca-certificates), Gentoo, Arch
    "/etc/pki/tls/certs/ca-bundle.crt",  # RHEL, CentOS, Fedora, Amazon Linux 2 and 2023
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # RHEL 7+, the file the one above links to
    "/etc/ssl/ca-bundle.pem",  # openSUSE, SLES
    "/etc/ssl/cert.pem",  # Alpine without ca-certificates (LibreSSL's), macOS
)
SYSTEM_CA_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")


def system_ca(environ: MutableMapping[str, str], root: str = "/") -> str | None:
    """The host's CA store: SSL_CERT_FILE, SSL_CERT_DIR, the known files, the known directories."""

    def under(path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    cert_file = environ.get("SSL_CERT_FILE", "")
    if cert_file and os.path.isfile(under(cert_file)):
        return cert_file
    for cert_dir in environ.get("SSL_CERT_DIR", "").split(":"):
        if cert_dir and os.path.isdir(under(cert_dir)):
            return cert_dir
    for path in SYSTEM_CA_FILES:
        if os.path.isfile(under(path)):
            return path
    for path in SYSTEM_CA_DIRS:
        # A directory counts only with hashed links in it (c_rehash/update-ca-certificates): a bare
        # /etc/ssl/certs holding one unhashed file would trust nothing.
        try:
            if any(name.endswith(".0") for name in os.listdir(under(path))):
                return path
        except OSError:
            continue
    return None


def prepare(environ: MutableMapping[str, str], argv: list[str]) -> None:
    called_as = environ.pop("DOCKER_CREDENTIAL_ECR_ARGV0", "")
    if called_as and argv:
        argv[0] = called_as
    # PyInstaller's bootloader state: not for the programs the helper runs.
    for name in (
        "_PYI_ARCHIVE_FILE",
        "_PYI_PARENT_PROCESS_LEVEL",
        "_PYI_LINUX_PROCESS_NAME",
        "_PYI_APPLICATION_HOME_DIR",
    ):
        environ.pop(name, None)
    if not environ.get("AWS_CA_BUNDLE"):
        store = system_ca(environ)
        if store is not None:
            environ["AWS_CA_BUNDLE"] = store


if __name__ == "__main__":
    prepare(os.environ, sys.argv)
    from docker_credential_ecr.cli import finish, kubelet_main, main

    name = os.path.basename(sys.argv[0] if sys.argv else "")
    finish(kubelet_main() if name.startswith("ecr-credential-provider") else main())
