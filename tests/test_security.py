"""What the helper refuses to trust, and what it never lets out (issue #13), in one process or one user.

The cases that need two real users (an attacker planting files for a victim) are in
``test_security_multiuser.py``; these are the ones a single user shows: the config file's checks as
seen by ``doctor``, the fallback helper's lookup and environment, the log file, proxy passwords, and
ECR hosts in any spelling.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support import ECR_HOST, run_helper

NOBODY = 65534


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# -- 1. the config file ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "owner", "said"),
    [
        pytest.param(0o666, None, "is writable by other users (mode 0666)", id="world-writable"),
        pytest.param(0o620, None, "is writable by other users (mode 0620)", id="group-writable"),
        pytest.param(0o644, NOBODY, f"belongs to another user (uid {NOBODY})", id="another-owner"),
    ],
)
def test_doctor_names_a_refused_config_file(
    env: dict[str, str], tmp_path: Path, mode: int, owner: int | None, said: str
) -> None:
    config = write(tmp_path / "config.toml", 'fallback = "pass"\n', mode)
    if owner is not None:
        os.chown(config, owner, owner)
    env = {**env, "DOCKER_CREDENTIAL_ECR_CONFIG": str(config)}
    proc = run_helper(["doctor", "--json", "--no-fetch"], env)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    environment = report["sections"]["environment"]
    assert environment["config_refused"] == f"config file {config} {said}: not used" + (
        f"; run chmod go-w {config}" if "writable" in said else ""
    )
    assert "config_fallback" not in environment or environment["config_fallback"] is None
    # `get` says the same once on stderr and answers as with no file.
    proc = run_helper(["get"], env, ECR_HOST)
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [f"docker-credential-ecr-login: {environment['config_refused']}"]
