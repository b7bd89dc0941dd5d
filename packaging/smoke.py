"""Smoke-test one installed or built docker-credential-ecr-login against the local fake ECR.

Usage::

    python packaging/smoke.py --fake-url URL --version V [--isolate] [--provider EXE] EXE

EXE (and the kubelet entry point ``--provider``) run in a clean environment: ``env -i`` with HOME in
a new temporary directory, PATH an empty directory (no python, no aws), the AWS settings of
``fakeecr.env_for`` and nothing else. With ``--isolate`` (root, util-linux ``unshare``) they also run
in a private mount namespace where every Python installation of this machine is hidden (tmpfs over
the directories, /dev/null over the files): a bundle that still loads anything from the host's Python
fails there. Without root or unshare, ``--isolate`` says so and falls back to ``env -i`` alone.

Checks: version / -v / --version; --help; every command's --help; a cold ``get`` (one ECR call), a
cache hit (no call), ``list``; ECR Public; an assume-role profile (STS) and an SSO profile (the
service models a trimmed bundle must keep); a host that is not ECR; ``store`` refused; ``doctor``,
``cache show`` and ``configure`` (every region from botocore's endpoint data, the account from STS);
the kubelet provider answering from the cache. Exit 0 when all pass, 1 otherwise; one line per check.

The harness itself runs under Python (it uses the fake's control plane); the program under test
never sees it.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from docker_credential_ecr.cli import COMMANDS  # noqa: E402
from fakeecr import FakeAWSClient, access_key_for_role, env_for  # noqa: E402

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
PUBLIC_HOST = "public.ecr.aws"
NOT_FOUND = "credentials not found in native keychain"
ROLE = "arn:aws:iam::123456789012:role/smoke-pull"
SSO_START_URL = "https://smoke.awsapps.com/start"
TIMEOUT = 60.0


class Failed(Exception):
    pass


def python_locations() -> tuple[list[str], list[str]]:
    """Directories and files of every Python installation on this machine (to hide them)."""
    dirs = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    if "/.pyenv/" in sys.base_prefix:
        dirs.add(sys.base_prefix.split("/.pyenv/")[0] + "/.pyenv")
    for pattern in ("/usr/lib/python3*", "/usr/local/lib/python3*", "/usr/lib/python2*", "/opt/python*"):
        dirs.update(p for p in glob.glob(pattern) if os.path.isdir(p))
    files: set[str] = set()
    for pattern in ("/usr/bin/python*", "/usr/local/bin/python*", "/usr/lib/*/libpython*", "/usr/local/lib/libpython*"):
        files.update(p for p in glob.glob(pattern) if os.path.isfile(p) and not os.path.islink(p))
    # Never hide what contains the program under test or the root file systems.
    dirs = {d for d in dirs if d not in ("/", "/usr", "/usr/local") and not str(ROOT).startswith(d + "/")}
    # A directory inside another one is hidden with it (and could not be mounted on once hidden).
    dirs = {d for d in dirs if not any(d.startswith(other + "/") for other in dirs)}
    files = {f for f in files if not any(f.startswith(d + "/") for d in dirs)}
    return sorted(dirs), sorted(files)


class Runner:
    def __init__(self, url: str, isolate: bool) -> None:
        self.url = url
        self.work = Path(tempfile.mkdtemp(prefix="ecr-smoke-"))
        self.home = self.work / "home"
        self.home.mkdir()
        (self.work / "empty-path").mkdir()
        self.prefix: list[str] = []
        self.secret = ""
        if isolate:
            self.prefix = self._isolation_prefix()

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def _isolation_prefix(self) -> list[str]:
        unshare = shutil.which("unshare")
        if os.geteuid() != 0 or unshare is None:
            print("note: --isolate needs root and unshare; running with env -i only")
            return []
        dirs, files = python_locations()
        mounts = [f"mount -t tmpfs -o size=1m,mode=0755 none '{d}'" for d in dirs]
        mounts += [f"mount --bind /dev/null '{f}'" for f in files]
        script = " && ".join([*mounts, 'exec "$0" "$@"'])
        prefix = [unshare, "--mount", "--propagation", "private", "sh", "-ec", script]
        probe = subprocess.run([*prefix, "/bin/sh", "-c", "ls /usr/lib/python3*/os.py 2>/dev/null | wc -l"],
                               capture_output=True, text=True, timeout=TIMEOUT, check=False)  # fmt: skip
        if probe.returncode != 0 or probe.stdout.strip() != "0":
            print(f"note: cannot hide Python with unshare ({probe.stderr.strip()[:200]}); running with env -i only")
            return []
        print(f"isolation: private mount namespace hiding {len(dirs)} Python directories and {len(files)} files")
        return prefix

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": str(self.work / "empty-path"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            **env_for(self.url),
            "AWS_CONFIG_FILE": str(self.home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.home / ".aws" / "credentials"),
        }
        env.update(extra)
        return {k: v for k, v in env.items() if v}

    def run(self, exe: str, args: list[str], stdin: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
        command = [*self.prefix, "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in self.env(**extra).items()), exe, *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def expect(condition: bool, what: str, proc: subprocess.CompletedProcess[str] | None = None) -> None:
    if not condition:
        detail = f": exit {proc.returncode}, stdout {proc.stdout[:400]!r}, stderr {proc.stderr[:600]!r}" if proc else ""
        raise Failed(what + detail)


def get_ok(r: Runner, exe: str, host: str, **extra: str) -> dict[str, str]:
    proc = r.run(exe, ["get"], host + "\n", **extra)
    expect(proc.returncode == 0 and proc.stderr == "", f"get {host} succeeds silently", proc)
    answer = json.loads(proc.stdout)
    expect(list(answer) == ["ServerURL", "Username", "Secret"] and answer["Secret"], f"get {host} answer", proc)
    return dict(answer)


def check_cli(r: Runner, exe: str, version: str) -> str:
    for flag in ("version", "-v", "--version"):
        proc = r.run(exe, [flag])
        expect(proc.returncode == 0 and proc.stdout.split()[-1:] == [version], f"{flag} prints {version}", proc)
    proc = r.run(exe, ["--help"])
    expect(proc.returncode == 0 and "Usage:" in proc.stdout and proc.stderr == "", "--help on stdout, exit 0", proc)
    for name in COMMANDS:
        proc = r.run(exe, [name, "--help"])
        expect(proc.returncode == 0 and proc.stdout.strip() != "", f"{name} --help", proc)
    return f"version, -v, --version print {version}; --help and every command's --help ({', '.join(COMMANDS)})"


def check_get_cold(r: Runner, exe: str, fake: FakeAWSClient) -> str:
    before = fake.calls("ecr")
    answer = get_ok(r, exe, HOST)
    expect(answer["Username"] == "AWS" and fake.calls("ecr") == before + 1, "cold get makes one ECR call")
    r.secret = answer["Secret"]
    return "get, cold: a token from the fake, one ECR call"


def check_get_hit(r: Runner, exe: str, fake: FakeAWSClient) -> str:
    before = fake.calls("*")
    answer = get_ok(r, exe, HOST)
    expect(answer["Secret"] == r.secret and fake.calls("*") == before, "second get is a cache hit (no call)")
    proc = r.run(exe, ["list"])
    expect(proc.returncode == 0 and json.loads(proc.stdout) == {f"https://{HOST}": "AWS"}, "list", proc)
    return "get, again: the cached token, no call; list: the cached registry"


def check_public(r: Runner, exe: str, fake: FakeAWSClient) -> str:
    before = fake.calls("ecr-public")
    get_ok(r, exe, PUBLIC_HOST)
    expect(fake.calls("ecr-public") == before + 1, "ECR Public get makes one ECR Public call")
    return "get public.ecr.aws: ECR Public model"


def write_profiles(r: Runner) -> Path:
    aws = r.home / ".aws"
    aws.mkdir(exist_ok=True)
    (aws / "config").write_text(
        "[profile base]\naws_access_key_id = AKIAFAKEFAKEFAKE0009\naws_secret_access_key = smoke-secret\n"
        f"[profile pull]\nrole_arn = {ROLE}\nsource_profile = base\n"
        f"[profile sso]\nsso_start_url = {SSO_START_URL}\nsso_region = us-east-1\n"
        "sso_account_id = 123456789012\nsso_role_name = SmokeSSO\n",
        encoding="utf-8",
    )
    return aws


def check_assume_role(r: Runner, exe: str, fake: FakeAWSClient) -> str:
    write_profiles(r)
    before_sts, before_ecr = fake.calls("sts:AssumeRole"), fake.calls("ecr")
    get_ok(r, exe, HOST, AWS_PROFILE="pull", AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    expect(fake.calls("sts:AssumeRole") == before_sts + 1 and fake.calls("ecr") == before_ecr + 1, "assume role")
    last = fake.requests()[-1]
    expect(last["access_key_id"] == access_key_for_role(ROLE), "ECR called with the role's credentials")
    return "get with an assume-role profile: STS model"


def check_sso(r: Runner, exe: str, fake: FakeAWSClient) -> str:
    cache = write_profiles(r) / "sso" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    token = {"startUrl": SSO_START_URL, "region": "us-east-1", "accessToken": "smoke-bearer"}
    token["expiresAt"] = "2099-01-01T00:00:00Z"
    name = hashlib.sha1(SSO_START_URL.encode()).hexdigest() + ".json"  # noqa: S324 - botocore's file name
    (cache / name).write_text(json.dumps(token), encoding="utf-8")
    before = fake.calls("sso")
    get_ok(r, exe, HOST, AWS_PROFILE="sso", AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    expect(fake.calls("sso") == before + 1, "SSO GetRoleCredentials called")
    return "get with an SSO profile: SSO model"


def check_errors(r: Runner, exe: str, fake: FakeAWSClient) -> str:
    proc = r.run(exe, ["get"], "registry.example.com\n")
    expect(proc.returncode == 1 and proc.stdout.strip() == NOT_FOUND, "non-ECR host is not found", proc)
    proc = r.run(exe, ["store"], json.dumps({"ServerURL": HOST, "Username": "AWS", "Secret": "x"}))
    expect(proc.returncode == 1 and proc.stdout.strip() == "not implemented", "store refused", proc)
    return "get of a non-ECR host, store: the protocol's error texts, exit 1"


def check_commands(r: Runner, exe: str, fake: FakeAWSClient) -> str:
    """The commands run, not only their --help: imports by name and botocore data a bundle must keep."""
    before = fake.calls("sts:GetCallerIdentity")
    runs = {
        "doctor": ["doctor", HOST],
        "cache show": ["cache", "show"],
        "configure --all-regions": ["configure", "--dry-run", "--account", "123456789012", "--all-regions"],
        "configure (account from STS)": ["configure", "--dry-run", "--region", "eu-west-1"],
    }
    # doctor tries the cached token at the registry (a real AWS host name): through a proxy on a closed
    # loopback port, so it ends in a warning and nothing leaves the machine.
    loopback_only = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    for what, args in runs.items():
        proc = r.run(exe, args, **loopback_only)
        crashed = "Traceback" in proc.stdout + proc.stderr or "internal error" in proc.stderr
        expect(proc.returncode == 0 and not crashed, what, proc)
    expect(fake.calls("sts:GetCallerIdentity") == before + 1, "configure asked STS for the account")
    return f"commands run: {', '.join(runs)}"


def check_provider(r: Runner, provider: str, fake: FakeAWSClient) -> str:
    before = fake.calls("*")
    request = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest"}
    request["image"] = f"{HOST}/app:1"
    proc = r.run(provider, [], json.dumps(request))
    expect(proc.returncode == 0, "kubelet provider answers", proc)
    answer = json.loads(proc.stdout)
    expect(answer.get("kind") == "CredentialProviderResponse" and HOST in answer.get("auth", {}), "auth", proc)
    expect(fake.calls("*") == before, "kubelet provider answers from the cache")
    return "ecr-credential-provider: a CredentialProviderResponse from the cache"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("exe")
    parser.add_argument("--provider", help="the ecr-credential-provider executable")
    parser.add_argument("--fake-url", required=True)
    parser.add_argument("--version", required=True, help="the version the program must print")
    parser.add_argument("--isolate", action="store_true", help="also hide this machine's Python (root)")
    args = parser.parse_args(argv)

    r = Runner(args.fake_url, args.isolate)
    fake = FakeAWSClient(args.fake_url)
    exe = args.exe
    checks: list[Callable[[], str]] = [
        lambda: check_cli(r, exe, args.version),
        lambda: check_get_cold(r, exe, fake),
        lambda: check_get_hit(r, exe, fake),
        lambda: check_public(r, exe, fake),
        lambda: check_assume_role(r, exe, fake),
        lambda: check_sso(r, exe, fake),
        lambda: check_errors(r, exe, fake),
        lambda: check_commands(r, exe, fake),
    ]
    if args.provider:
        checks.append(lambda: check_provider(r, args.provider, fake))
    try:
        for run_check in checks:
            print(f"  ok    {run_check()}")
    except (Failed, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"  FAIL  {exc}")
        return 1
    finally:
        r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
