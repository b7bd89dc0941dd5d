"""Two real users on one machine: a private network + mount namespace where an attacker uid plants
files and a victim uid runs the installed helper.

:class:`Box` holds a process in new network and mount namespaces (``unshare --net --mount``, root):
``lo`` is up and nothing else exists, so nothing can leave the machine; ``/dev/shm`` is a fresh tmpfs
(mode 1777, like ``/tmp``) that only this namespace sees, where each test makes its users' homes and
shared directories. The victim's interpreter and the installed package must be reachable by other
uids: a directory on their path that is closed to others (``/root`` is 0700, so are pytest's tmp
dirs) is covered, in this namespace only, by a tmpfs holding bind mounts of just the entries needed.

Commands run through ``nsenter`` as root, or as a uid with ``setpriv --reuid --regid --clear-groups``.
The fake AWS endpoint (``tests/fakeecr.py``, standalone) runs inside the namespace as root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fakeecr
from support import helper_exe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

VICTIM = 61001
ATTACKER = 61002
WORLD = "/dev/shm"
TESTS = Path(__file__).resolve().parent

# Runs as root inside the namespace: make `paths` reachable by every uid, in this namespace only.
REACH = r"""
import os, subprocess, sys
stash = "/dev/shm/.stash"
os.makedirs(stash, mode=0o700, exist_ok=True)
covered = {}
def mount(*args):
    subprocess.run(["mount", *args], check=True)
for target in sys.argv[1:]:
    parts = target.split("/")[1:]
    for depth in range(len(parts)):
        parent = "/" + "/".join(parts[:depth])
        child = os.path.join(parent, parts[depth])
        if parent not in covered:
            if os.stat(parent).st_mode & 0o001:
                continue
            saved = os.path.join(stash, str(len(covered)))
            os.mkdir(saved)
            mount("--bind", parent, saved)
            mount("-t", "tmpfs", "-o", "mode=0755", "reach", parent)
            covered[parent] = saved
        if not os.path.lexists(child):
            original = os.path.join(covered[parent], parts[depth])
            if os.path.isdir(original):
                os.mkdir(child)
            else:
                open(child, "w").close()
            mount("--bind", original, child)
"""


def available() -> str | None:
    """Why the multi-user tests cannot run here, or None."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs root on Linux (real uids and private namespaces)"
    for tool in ("unshare", "nsenter", "setpriv", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"unshare --net --mount is not permitted here: {probe.stderr.decode().strip()}"
    return None


class Box:
    """The namespace, its users and its fake AWS endpoint."""

    def __init__(self) -> None:
        self._holder: subprocess.Popen[str] | None = None
        self._fake: subprocess.Popen[str] | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        self.fake_env: dict[str, str] = {}
        self.exe = helper_exe()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Box:
        script = 'set -e; ip link set lo up; mount -t tmpfs -o mode=1777 world "$1"; echo ready; exec cat >/dev/null'
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "box", WORLD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        line = self._holder.stdout.readline().strip()
        if line != "ready":
            err = self._holder.stderr.read() if self._holder.stderr else ""
            self.close()
            raise RuntimeError(f"namespace holder said {line!r}: {err}")
        # The interpreter the helper runs on, its standard library and the venv it is installed in.
        needed = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
        needed.add(os.path.dirname(os.path.realpath(self.exe)))
        needed.add(os.path.realpath(sys.executable))
        self.check(self.run([sys.executable, "-c", REACH, *sorted(needed)]))
        # The installed helper must run as another uid (its files readable by others: umask 022).
        probe = self.run([self.exe, "version"], uid=VICTIM)
        if probe.returncode != 0:
            self.close()
            raise RuntimeError(f"uid {VICTIM} cannot run {self.exe}: {probe.stderr.strip()}")
        self._start_fake()
        return self

    def _start_fake(self) -> None:
        argv = self._argv([sys.executable, str(TESTS / "fakeecr.py"), "--print-env"])
        self._fake = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self._fake.stdout is not None
        for _ in range(len(fakeecr.env_for("http://x"))):
            line = self._fake.stdout.readline()
            if not line:
                raise RuntimeError("the fake AWS endpoint did not start in the namespace")
            key, _, value = line.removeprefix("export ").rstrip("\n").partition("=")
            self.fake_env[key] = value.strip("'")
        self.fake_url = self.fake_env["AWS_ENDPOINT_URL"]

    def close(self) -> None:
        procs: list[subprocess.Popen[Any]] = [*reversed(self._children)]
        procs += [p for p in (self._fake, self._holder) if p is not None]
        for proc in procs:
            if proc is self._holder and proc.stdin is not None:
                proc.stdin.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self._children.clear()
        self._fake = self._holder = None

    # -- running things inside ------------------------------------------------------------------------
    def _argv(self, argv: Sequence[str], uid: int | None = None, cwd: str | None = None) -> list[str]:
        assert self._holder is not None, "box not started"
        wrapped = ["nsenter", f"--target={self._holder.pid}", "--net", "--mount", "--"]
        if uid is not None:
            wrapped += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
        if cwd is not None:  # the directory exists only in the namespace: change to it once inside
            wrapped += ["/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd]
        return wrapped + list(argv)

    def run(
        self,
        argv: Sequence[str],
        *,
        uid: int | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str = "",
        cwd: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the namespace, as root or as ``uid``; raises TimeoutExpired if it hangs."""
        proc = subprocess.run(
            self._argv(argv, uid, cwd),
            input=stdin.encode(),
            capture_output=True,
            env=dict(env) if env is not None else {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            timeout=timeout,
            check=False,
        )
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        )

    def spawn(self, argv: Sequence[str], *, uid: int | None = None) -> subprocess.Popen[bytes]:
        """A long-lived process in the namespace (a FIFO reader, a lock holder), stopped at close."""
        proc = subprocess.Popen(
            self._argv(argv, uid),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        self._children.append(proc)
        return proc

    @staticmethod
    def check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
        assert proc.returncode == 0, (proc.args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def sh(self, script: str, *, uid: int | None = None) -> str:
        """A shell script in the namespace (as root or ``uid``); its stdout. Fails the test if it fails."""
        return self.check(self.run(["/bin/sh", "-ec", script], uid=uid)).stdout

    def read(self, path: str) -> bytes | None:
        """A file's bytes as root sees them in the namespace (None if absent); never follows a link."""
        code = (
            "import os,sys\n"
            "try: fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)\n"
            "except OSError: sys.exit(3)\n"
            "sys.stdout.write(os.read(fd, 1 << 22).hex())\n"
        )
        proc = self.run([sys.executable, "-c", code, path])
        return None if proc.returncode == 3 else bytes.fromhex(self.check(proc).stdout)

    def fake_state(self) -> dict[str, object]:
        """The fake's record (calls, requests, issued passwords), asked through its control plane."""
        code = (
            "import json,sys\n"
            f"sys.path.insert(0, {str(TESTS)!r})\n"
            "from fakeecr import FakeAWSClient\n"
            "print(json.dumps(FakeAWSClient(sys.argv[1]).state()))\n"
        )
        state: dict[str, object] = json.loads(self.check(self.run([sys.executable, "-c", code, self.fake_url])).stdout)
        return state

    # -- the users ------------------------------------------------------------------------------------
    def make_users(self, case: str) -> Users:
        """Fresh homes for this case: the victim's (0700) and the attacker's, and a shared directory."""
        users = Users(self, f"{WORLD}/{case}")
        self.sh(
            f"mkdir -m 0755 {users.root}\n"
            f"mkdir -m 0700 {users.victim_home} && chown {VICTIM}:{VICTIM} {users.victim_home}\n"
            f"mkdir -m 0700 {users.attacker_home} && chown {ATTACKER}:{ATTACKER} {users.attacker_home}\n"
            # Writable by anyone and not sticky (a group's project directory, a badly made /tmp):
            # the kernel's protected_symlinks/fifos rules do not step in here, only the helper's own.
            f"mkdir -m 0777 {users.shared} && chmod 0777 {users.shared}\n"
        )
        return users


class Users:
    """One case's directories: ``victim_home``, ``attacker_home`` and ``shared`` (0777, not sticky)."""

    def __init__(self, box: Box, root: str) -> None:
        self.box = box
        self.root = root
        self.victim_home = f"{root}/victim"
        self.attacker_home = f"{root}/attacker"
        self.shared = f"{root}/shared"

    def victim_env(self, **extra: str) -> dict[str, str]:
        """The victim's sealed environment: the fake's endpoints and keys, a private cache in HOME."""
        home = self.victim_home
        env = {
            "PATH": f"{os.path.dirname(self.box.exe)}:/usr/bin:/bin",
            "HOME": home,
            "LANG": "C.UTF-8",
            "NO_PROXY": "127.0.0.1,localhost",
            **self.box.fake_env,
            "AWS_CONFIG_FILE": f"{home}/.aws/config",
            "AWS_SHARED_CREDENTIALS_FILE": f"{home}/.aws/credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ECR_TIMEOUT": "20",
        }
        env.update(extra)
        return env

    def get(
        self, server_url: str, env: Mapping[str, str], *, cwd: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`get` by the victim, with the installed helper; a hang fails the test (TimeoutExpired)."""
        return self.box.run([self.box.exe, "get"], uid=VICTIM, env=env, stdin=server_url, cwd=cwd, timeout=45)

    def as_victim(self, script: str) -> str:
        return self.box.sh(script, uid=VICTIM)

    def as_attacker(self, script: str) -> str:
        return self.box.sh(script, uid=ATTACKER)
