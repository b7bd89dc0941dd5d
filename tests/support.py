"""Shared test helpers: run the installed console script in a sealed environment.

Subprocess tests use the console script as installed (a wheel in CI), with HOME, the cache and the
AWS endpoints pointed at the test's own directories and the local fake; nothing from the machine's
own environment (AWS_*, DOCKER_*, proxies) leaks in, and nothing can reach real AWS. Every run is
recorded for the secrets scan (``secretscan.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import secretscan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from fakeecr import FakeAWS

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
OTHER_ACCOUNT_HOST = "210987654321.dkr.ecr.us-east-1.amazonaws.com"
WEST_HOST = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
PUBLIC_HOST = "public.ecr.aws"
NOT_FOUND = "credentials not found in native keychain"
# Under emulation (packaging/arm64 runs tests in an arm64 root under qemu-user, ECR_TEST_EMULATED=1) a
# cold get imports botocore about ten times slower: longer bounds there, the same events counted.
EMULATED = os.environ.get("ECR_TEST_EMULATED") == "1"
RUN_TIMEOUT = 300.0 if EMULATED else 60.0


def bin_dir() -> Path:
    """The directory of the running interpreter's scripts (the venv the package is installed in)."""
    return Path(sys.executable).parent


def helper_exe(name: str = "docker-credential-ecr-login") -> str:
    exe = shutil.which(name, path=str(bin_dir()))
    if exe is None:
        raise RuntimeError(f"{name} is not installed next to {sys.executable}: pip install the package first")
    return exe


# The XDG spec's directories: (variable, default under HOME); platformdirs adds "log" under the state dir.
_XDG = {
    "cache": ("XDG_CACHE_HOME", ".cache"),
    "config": ("XDG_CONFIG_HOME", ".config"),
    "log": ("XDG_STATE_HOME", ".local/state"),
}


def platformdirs_user_dir(kind: str, app: str) -> str:
    """``platformdirs.user_<kind>_dir(app)`` (Linux/BSD), by the XDG spec where platformdirs predates it.

    The spec: a relative path in an XDG variable is invalid and ignored; platformdirs also treats a
    relative HOME as unset (the passwd entry is asked). Recent platformdirs follow both rules, and then
    its answer is the expected one. Older ones take them verbatim and answer a relative path (one
    that moves with the working directory): 4.4, the newest for Python 3.9, both; 4.12, the newest
    for 3.10, a relative HOME. There, and only there, the answer is spelled out from the rules.
    """
    import platformdirs

    theirs: str = getattr(platformdirs, f"user_{kind}_dir")(app)
    if os.path.isabs(theirs):
        return theirs
    variable, default = _XDG[kind]
    base = os.environ.get(variable, "")
    if not os.path.isabs(base):
        home = os.environ.get("HOME", "")
        if not os.path.isabs(home):
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        base = os.path.join(home, default)
    return os.path.join(base, app, "log") if kind == "log" else os.path.join(base, app)


def sealed_env(home: Path, *extra: Mapping[str, str]) -> dict[str, str]:
    """A minimal environment: PATH, HOME and locale only, plus ``extra`` (later mappings win)."""
    env = {
        "PATH": f"{bin_dir()}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        # Point every AWS file at the test's HOME, never at the machine's.
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if EMULATED:
        env["AWS_ECR_TIMEOUT"] = "240"  # a test's own AWS_ECR_TIMEOUT (in extra) still wins
    for mapping in extra:
        env.update(mapping)
    return env


def helper_env(tmp_path: Path, fake: FakeAWS, **extra: str) -> dict[str, str]:
    """The sealed environment of a helper subprocess against ``fake``: the one every test builds.

    HOME is ``tmp_path/home`` (created), the cache ``tmp_path/cache``, the AWS config and credentials
    files in that HOME (``fake.env()`` points them at /dev/null: tests write them), the fake's
    endpoints and static keys, then ``extra``. The secrets scan watches ``fake`` from here on.
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    secretscan.watch(fake)
    files = {
        "AWS_ECR_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
    }
    return sealed_env(home, fake.env(), files, extra)


def run_helper(
    args: list[str],
    env: Mapping[str, str],
    stdin: str | bytes | None = "",
    *,
    exe: str | None = None,
    timeout: float = RUN_TIMEOUT,
    label: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run the console script; ``stdin=None`` leaves stdin closed (as CI runners and docker-py may).

    Its stderr and the directories it could write are recorded for the secrets scan (``label`` names it).
    """
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [exe or helper_exe(), *args],
        input=data,
        stdin=subprocess.DEVNULL if data is None else None,
        capture_output=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )
    result = subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    secretscan.record(label or " ".join(args), env, result.stderr)
    return result


def get_ok(env: Mapping[str, str], server_url: str = ECR_HOST) -> dict[str, str]:
    """A successful `get`: exit 0, nothing on stderr, the three fields; returns the answer."""
    proc = run_helper(["get"], env, server_url)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stderr == ""
    answer: dict[str, str] = json.loads(proc.stdout)
    assert list(answer) == ["ServerURL", "Username", "Secret"]
    return answer
