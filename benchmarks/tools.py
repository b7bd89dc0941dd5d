"""The programs under test, the venv that holds ours and awscli, and the facts a report names.

Ours and the Go helper share a name (``docker-credential-ecr-login``), so every program is run by
its absolute path. Standard library only.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from environments import REPO

GO_HELPER = "/usr/bin/docker-credential-ecr-login"  # Debian amazon-ecr-credential-helper; same name as ours
DEFAULT_VENV = Path(tempfile.gettempdir()) / "docker-credential-ecr-bench-venv"
PIP_SHIM_NAME = "docker-credential-ecr-login-pip-shim"
# pip's console-script template (pip/_internal/operations/install/wheel.py; distlib's and installer's
# are the same).
PIP_SHIM = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from docker_credential_ecr.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def write_pip_shim(venv: Path) -> Path:
    """Our helper behind pip's console-script template, beside the installed launcher, for comparison.

    The wheel ships its own launchers (``packaging/wheel-scripts``), which pip installs as they are.
    A ``[project.scripts]`` entry point would get pip's generated script instead, which runs
    ``import re`` before it imports the package, to tidy ``sys.argv[0]`` on Windows: about half a bare
    interpreter start the helper does not need.
    """
    path = venv / "bin" / PIP_SHIM_NAME
    path.write_text(PIP_SHIM.format(python=venv / "bin" / "python"))
    path.chmod(0o755)
    return path


class Tools:
    """The programs under test, by absolute path (ours and Go's share a name)."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.python = str(venv / "bin" / "python")
        self.ours = str(venv / "bin" / "docker-credential-ecr-login")
        self.aws = str(venv / "bin" / "aws")
        self.go = GO_HELPER
        self.ours_pip_shim = str(venv / "bin" / PIP_SHIM_NAME)

    def default_ca_bundle(self) -> str:
        """The CA bundle botocore verifies AWS with (certifi's, or botocore's own copy)."""
        code = "from botocore.httpsession import get_cert_path; print(get_cert_path(True))"
        return subprocess.run([self.python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def build_venv(venv: Path, python: str, *, reuse: bool) -> Tools:
    """A venv with a NON-editable install of this checkout and awscli (an editable install's ``.pth``
    import hook would add start-up cost that users never pay), plus the pip shim."""
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    if reuse and (venv / "bin" / "python").exists():
        # Keep awscli and the dependencies; reinstall only this checkout (non-editable).
        steps = [[*pip, "install", "--force-reinstall", "--no-deps", str(REPO)]]
    else:
        shutil.rmtree(venv, ignore_errors=True)
        steps = [[python, "-m", "venv", str(venv)], [*pip, "install", str(REPO), "awscli"]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{done.stdout}\n{done.stderr}")
    write_pip_shim(venv)
    return Tools(venv)


def versions(tools: Tools) -> dict[str, Any]:
    """The versions of every program and library measured."""
    code = (
        "import importlib.metadata as m, sys, json; "
        "print(json.dumps({'python': sys.version.split()[0], **{p: m.version(p) for p in "
        "('docker-credential-ecr', 'boto3', 'botocore', 'awscli', 'filelock', 'platformdirs')}}))"
    )
    found: dict[str, Any] = json.loads(
        subprocess.run([tools.python, "-c", code], capture_output=True, check=True).stdout
    )
    aws = subprocess.run([tools.aws, "--version"], capture_output=True, text=True, check=False)
    found["aws --version"] = (aws.stdout or aws.stderr).strip()
    go = subprocess.run([tools.go, "-v"], capture_output=True, text=True, check=False)
    found["go helper"] = " ".join(go.stdout.split())
    deb = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "amazon-ecr-credential-helper"],
        capture_output=True,
        text=True,
        check=False,
    )
    found["go helper debian package"] = deb.stdout.strip() or "unknown"
    return found


def machine() -> dict[str, Any]:
    """The machine and its load when the run starts."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
