"""Secrets: no registry password, secret key or session token the fake issued appears anywhere the
helper wrote except its cache files, nor in anything it printed on stderr.

The scan itself is ``secretscan.py``. Here: the scanner finds every form of a secret it looks for;
this module's own gauntlet (every fault kind, stale fallback, an assumed role from the config file
and one from an AWS profile, debug logging to a file, the extra commands) leaks nothing, scanned on
its own (so the test means the same alone, in any order, or in parallel); a secret planted where
the helper writes is caught; and the session's scan of everything every test ran fails a run that
leaked, even when each test passed.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import secretscan
from fakeecr import FAULT_KINDS, FakeAWS, access_key_for_role
from reliability import age_entries, answer, cache_file, run
from secretscan import find_leaks
from support import ECR_HOST, helper_env, run_helper, sealed_env

HOST = ECR_HOST
ROLE_HOST = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
PUBLIC = "public.ecr.aws"
ROLE_ARN = "arn:aws:iam::210987654321:role/ecr-pull"
PROFILE_ROLE_ARN = "arn:aws:iam::123456789012:role/ci-builder"
TESTS = Path(__file__).resolve().parent


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    secret = "s3cr3t-" + "Ab0_" * 400
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "log").write_bytes(b"x " + secret[500:540].encode() + b" y")
    (tmp_path / "a" / "cache.json").write_text(secret)
    (tmp_path / "a" / ".aws" / "sso" / "cache").mkdir(parents=True)
    (tmp_path / "a" / ".aws" / "sso" / "cache" / "0123abcd.json").write_text(secret)  # botocore's SSO cache
    (tmp_path / "a" / ".aws" / "sso" / "token").write_text(secret)  # not the cache: a leak
    (tmp_path / "a" / "token").write_bytes(base64.b64encode(b"AWS:" + secret.encode())[900:1000])
    leaks = find_leaks({secret}, [("ok", "nothing"), ("bad", "…" + secret[-40:])], {tmp_path})
    assert leaks == [
        "stderr of bad: ['s3cr3t-A…']",
        f"{tmp_path / 'a' / '.aws' / 'sso' / 'token'}: ['s3cr3t-A…']",
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
    env = helper_env(
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
        proc = run_helper(args, {**env, **dead_proxy}, label=" ".join(args))
        extra.append((" ".join(args), proc.stdout + proc.stderr))
    kubelet = {"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest"}
    proc_k = run(env, "kubelet", json.dumps({**kubelet, "image": f"{HOST}/app:1"}), label="secrets kubelet")
    assert proc_k.returncode == 0
    return extra


@pytest.mark.slow
def test_no_secret_outside_the_cache_files(tmp_path: Path, fake: FakeAWS) -> None:
    with secretscan.journal() as journal:
        extra = _gauntlet(tmp_path, fake)
    assert len(fake.issued) >= 10
    assert len(fake.issued_secrets) >= 2  # the assumed roles' secret keys and session tokens
    assert journal.secrets() == {*fake.issued, *fake.issued_secrets}
    faults = sum(1 if kind in ("hang", "slow") else 2 for kind in FAULT_KINDS)
    runs = 5 + 1 + faults + 4 + 4 + 2 + 4 + 1  # gets, list, faults, STS, ECR failures, profile, commands, kubelet
    assert journal.processes == runs, journal.summary()  # every process of the gauntlet, recorded
    log_files = list((tmp_path / "home").rglob("*.log"))
    assert log_files, "debug logging wrote no file: the redaction was not exercised"
    assert b"[REDACTED]" in b"".join(p.read_bytes() for p in log_files)

    leaks = find_leaks(journal.secrets(), [*journal.stderr, *extra], journal.roots)
    assert leaks == [], "\n".join(leaks)
    print(f"secrets scan of the gauntlet: {journal.summary()}, {len(extra)} command outputs")


def test_a_secret_planted_where_the_helper_writes_is_caught(tmp_path: Path) -> None:
    """The journal's scan, fed by a real get, finds a password copied to a log, stderr or a stray copy."""
    with secretscan.journal(private=True) as journal, FakeAWS() as fake:
        env = helper_env(tmp_path, fake)
        password = answer(run(env, "get", HOST))["Secret"]
        assert journal.scan() == []
        log = tmp_path / "home" / "debug.log"
        log.write_text(f"sent Authorization: Basic {base64.b64encode(b'AWS:' + password.encode()).decode()}\n")
        backup = cache_file(env).with_name("cache.json.bak")
        backup.write_bytes(cache_file(env).read_bytes())
        secretscan.record("planted", env, f"warning: password {password[100:140]} refused\n")
        leaks = journal.scan()
    test = os.environ["PYTEST_CURRENT_TEST"].split(" ")[0]
    assert leaks == [
        f"stderr of {test}: planted: ['{password[:8]}…']",
        f"{backup}: ['{password[:8]}…']",
        f"{log}: ['{password[:8]}…']",
    ]
    assert all(str(tmp_path) not in str(root) for root in secretscan.SESSION.roots)  # private: not the session's


INNER = """
from __future__ import annotations

import json

from fakeecr import FakeAWS
from support import ECR_HOST, helper_env, run_helper


def test_clean(tmp_path):
    with FakeAWS() as fake:
        assert run_helper(["get"], helper_env(tmp_path, fake), ECR_HOST).returncode == 0


def test_leaky(tmp_path):
    with FakeAWS() as fake:
        secret = json.loads(run_helper(["get"], helper_env(tmp_path, fake), ECR_HOST).stdout)["Secret"]
    (tmp_path / "home" / "debug.log").write_text(f"token {secret}\\n")
"""


def test_the_session_scan_fails_a_run_whose_tests_all_passed(tmp_path: Path) -> None:
    """A pytest run with the scan's hooks: both tests pass, one left a token in a log; the run fails."""
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "test_inner.py").write_text(INNER)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "secretscan", "-p", "no:cacheprovider", "-q", "test_inner.py"],
        cwd=tmp_path / "inner",
        env=sealed_env(tmp_path / "home", {"PYTHONPATH": str(TESTS)}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "2 passed" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    report = [line for line in proc.stdout.splitlines() if line.startswith("secrets scan of the session (")]
    assert len(report) == 1, proc.stdout
    assert report[0].endswith("2 stderr captures of 2 processes, 4 directory roots: leaks: 1"), report
    leaks = [line for line in proc.stdout.splitlines() if line.endswith("…']")]
    assert len(leaks) == 1, proc.stdout
    assert "/test_leaky0/home/debug.log: ['" in leaks[0], leaks
