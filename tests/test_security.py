"""What the helper refuses to trust, and what it never lets out (issue #13), in one process or one user.

The cases that need two real users (an attacker planting files for a victim) are in
``test_security_multiuser.py``; these are the ones a single user shows: the config file's checks as
seen by ``doctor``, the fallback helper's lookup and environment, the log file, proxy passwords, and
ECR hosts in any spelling.
"""

from __future__ import annotations

import json
import os
import stat
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


# -- 4. the log file ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["symlink", "fifo", "fifo-with-reader", "foreign-file"])
def test_a_log_path_that_is_not_a_file_of_ours_is_refused(env: dict[str, str], tmp_path: Path, kind: str) -> None:
    """In a private directory too: the type and owner checks, not only the directory's."""
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o700)
    log, target = logs / "ecr.log", write(tmp_path / "target", "keep\n", 0o644)
    reader = None
    if kind == "symlink":
        log.symlink_to(target)
        said = "is a symbolic link"
    elif kind.startswith("fifo"):
        os.mkfifo(log, 0o600)
        said = "is not a regular file"
        if kind == "fifo-with-reader":
            reader = os.open(log, os.O_RDONLY | os.O_NONBLOCK)
    else:
        write(log, "", 0o600)
        os.chown(log, NOBODY, NOBODY)
        said = f"belongs to another user (uid {NOBODY})"
    try:
        proc = run_helper(["get"], {**env, "AWS_ECR_LOG_LEVEL": "debug", "AWS_ECR_LOG_FILE": str(log)}, ECR_HOST)
        heard = os.read(reader, 1 << 16) if reader is not None else b""
    finally:
        if reader is not None:
            os.close(reader)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stderr.splitlines() == [f"docker-credential-ecr-login: log file {log} {said}: not logging"]
    assert heard == b""
    assert target.read_text() == "keep\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
