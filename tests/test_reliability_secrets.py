"""Secrets: no registry password, secret key or session token the fake issued appears anywhere the
helper wrote except its cache files, nor in anything it printed on stderr.

The test runs its own gauntlet first (every fault kind, stale fallback, an assumed role from the
config file and one from an AWS profile, debug logging to a file, the extra commands), then scans
that together with everything the other reliability tests of this session recorded (this module
runs after them: pytest takes files in name order). Run alone, it still scans its own gauntlet.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from docker_credential_ecr import store as cachemod
from fakeecr import FAULT_KINDS, FakeAWS, access_key_for_role
from reliability import JOURNAL, age_entries, answer, make_env, run

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
# The store's files, where secrets belong (0600 in a 0700 directory, checked elsewhere).
SECRET_FILES = frozenset({cachemod.FILE_NAME, cachemod.CREDENTIALS_FILE_NAME})
ROLE_HOST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
PUBLIC = "public.ecr.aws"
ROLE_ARN = "arn:aws:iam::210987654321:role/ecr-pull"
PROFILE_ROLE_ARN = "arn:aws:iam::123456789012:role/ci-builder"
GRAM, STRIDE = 24, 8  # any leaked run of GRAM + STRIDE characters contains a sampled gram
_RUN = re.compile(rb"[A-Za-z0-9+/=_\-]{%d,}" % GRAM)


def _forms(secret: str) -> list[bytes]:
    """A secret as it could appear: itself, and (a password) as the base64 'AWS:<password>' token."""
    return [secret.encode(), base64.b64encode(b"AWS:" + secret.encode())]


def _grams(secrets: set[str]) -> dict[bytes, str]:
    grams: dict[bytes, str] = {}
    for secret in secrets:
        for form in _forms(secret):
            for i in range(0, max(1, len(form) - GRAM + 1), STRIDE):
                grams[form[i : i + GRAM]] = secret[:8] + "…"
    return grams


def find_leaks(secrets: set[str], texts: list[tuple[str, str]], roots: set[Path]) -> list[str]:
    """Where a piece of a secret (GRAM + STRIDE characters or more) shows: stderr texts, files under roots.

    Files named cache.json (the token cache and the role-credential cache beside it) are the one
    place secrets belong; only regular files are read, so a planted FIFO cannot hang the scan.
    """
    grams = _grams(secrets)

    def hits(data: bytes) -> set[str]:
        found = set()
        for run_ in _RUN.finditer(data):
            chunk = run_.group()
            for i in range(len(chunk) - GRAM + 1):
                owner = grams.get(chunk[i : i + GRAM])
                if owner is not None:
                    found.add(owner)
        return found

    leaks = [f"stderr of {label}: {sorted(h)}" for label, text in texts if (h := hits(text.encode()))]
    seen: set[Path] = set()
    for root in sorted(roots):
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path in seen or path.name in SECRET_FILES or path.is_symlink() or not path.is_file():
                continue
            seen.add(path)
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if h := hits(data):
                leaks.append(f"{path}: {sorted(h)}")
    return leaks


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    secret = "s3cr3t-" + "Ab0_" * 400
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "log").write_bytes(b"x " + secret[500:540].encode() + b" y")
    (tmp_path / "a" / "cache.json").write_text(secret)
    (tmp_path / "a" / "token").write_bytes(base64.b64encode(b"AWS:" + secret.encode())[900:1000])
    leaks = find_leaks({secret}, [("ok", "nothing"), ("bad", "…" + secret[-40:])], {tmp_path})
    assert leaks == [
        "stderr of bad: ['s3cr3t-A…']",
        f"{tmp_path / 'a' / 'log'}: ['s3cr3t-A…']",
        f"{tmp_path / 'a' / 'token'}: ['s3cr3t-A…']",
    ]


def _gauntlet(tmp_path: Path, fake: FakeAWS) -> list[tuple[str, str]]:
    """Drive the helper through successes and failures, logging at debug; returns extra texts to scan."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        f"[profile chain]\nrole_arn = {PROFILE_ROLE_ARN}\nsource_profile = base\nregion = us-east-1\n"
        "[profile base]\nregion = us-east-1\n"
    )
    (home / ".aws" / "credentials").write_text(
        f"[base]\naws_access_key_id = AKIAFAKEFAKEFAKE0009\naws_secret_access_key = {'b' * 40}\n"
    )
    config = home / "helper.toml"
    config.write_text(f'[[registry]]\nmatch = "210987654321"\nrole_arn = "{ROLE_ARN}"\n')
    env = make_env(
        tmp_path, fake, AWS_ECR_LOG_LEVEL="debug", AWS_ECR_TIMEOUT="6", DOCKER_CREDENTIAL_ECR_CONFIG=str(config)
    )
    extra: list[tuple[str, str]] = []

    for host in (HOST, PUBLIC, ROLE_HOST, HOST, ROLE_HOST):  # misses, an assumed role, hits
        answer(run(env, "get", host, fake=fake, label=f"secrets get {host}"))
    run(env, "list", None)
    # Every fault, with a stale token to fall back on (a short deadline: hang and slow cost it whole).
    quick = {**env, "AWS_ECR_TIMEOUT": "2"}
    for kind in FAULT_KINDS:
        for op in ("ecr", "ecr-public") if kind not in ("hang", "slow") else ("ecr",):
            fake.clear_faults()
            fake.add_fault(op, kind, times=None, delay=5.0 if kind == "slow" else 0.0)
            age_entries(env, issued_ago=8 * 3600, expires_in=4 * 3600)
            proc = run(quick, "get", HOST if op == "ecr" else PUBLIC, label=f"secrets {op} {kind} stale")
            assert proc.returncode == 0
    fake.clear_faults()
    for kind in ("access-denied", "expired-token", "throttle", "malformed"):
        fake.add_fault("sts", kind, times=None)
        age_entries(env, issued_ago=13 * 3600, expires_in=-60)
        run(env, "get", ROLE_HOST, label=f"secrets sts {kind}")
        fake.clear_faults()
    for kind in ("bad-token", "no-colon", "access-denied", "unrecognized-client"):
        fake.add_fault("ecr", kind, times=None)
        age_entries(env, issued_ago=13 * 3600, expires_in=-60)
        assert run(env, "get", HOST, label=f"secrets {kind} no cache").returncode == 1
        fake.clear_faults()
    # An AWS profile that assumes a role through botocore's own chain, with the cache off.
    chain = {**env, "AWS_PROFILE": "chain", "AWS_ECR_DISABLE_CACHE": "1"}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        chain.pop(key, None)
    answer(run(chain, "get", HOST, fake=fake, label="secrets profile chain"))
    assert any(r.access_key_id == access_key_for_role(PROFILE_ROLE_ARN) for r in fake.requests)
    fake.add_fault("ecr", "access-denied", times=1)
    assert run(chain, "get", HOST, label="secrets profile chain denied").returncode == 1
    # The commands that talk about credentials, the token cache and the kubelet; their stdout too.
    # doctor tries the cached token at the registry: through a proxy on a closed loopback port, never
    # beyond the machine (its "could not ask" line is searched for secrets like the rest).
    dead_proxy = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    for args in (["cache", "show"], ["doctor", HOST], ["doctor", "--json", ROLE_HOST], ["doctor", PUBLIC]):
        out, err = run_command({**env, **dead_proxy}, args)
        extra.append((" ".join(args), out + err))
    kubelet = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest"}
    proc_k = run(env, "kubelet", json.dumps({**kubelet, "image": f"{HOST}/app:1"}), label="secrets kubelet")
    assert proc_k.returncode == 0
    return extra


def run_command(env: dict[str, str], args: list[str]) -> tuple[str, str]:
    import subprocess

    from support import helper_exe

    proc = subprocess.run([helper_exe(), *args], capture_output=True, env=env, timeout=60, check=False, text=True)
    JOURNAL.record(" ".join(args), env, proc.stderr)
    return proc.stdout, proc.stderr


@pytest.mark.slow
def test_no_secret_outside_the_cache_files(tmp_path: Path, fake: FakeAWS) -> None:
    extra = _gauntlet(tmp_path, fake)
    secrets = JOURNAL.secrets()
    assert len(fake.issued) >= 10
    assert len(fake.issued_secrets) >= 2  # the assumed roles' secret keys and session tokens
    log_files = list((tmp_path / "home").rglob("*.log"))
    assert log_files, "debug logging wrote no file: the redaction was not exercised"
    assert b"[REDACTED]" in b"".join(p.read_bytes() for p in log_files)

    leaks = find_leaks(secrets, [*JOURNAL.stderr, *extra], JOURNAL.roots)
    assert leaks == [], "\n".join(leaks)
    print(
        f"secrets scan: {len(secrets)} issued secrets from {len(JOURNAL.fakes)} fakes, "
        f"{len(JOURNAL.stderr)} stderr captures of {JOURNAL.processes} processes, {len(extra)} command outputs, "
        f"{len(JOURNAL.roots)} directory roots"
    )
