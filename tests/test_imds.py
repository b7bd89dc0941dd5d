"""Instance metadata diagnosis: IMDSv2's hop limit seen from a container (awslabs #323, #215, #289).

The fake IMDS drops the answer to the token PUT, as an instance with ``http-put-response-hop-limit``
1 does for a container behind a bridge: the installed helper must say so in one line with the fix,
inside its deadline, and ``doctor`` must show the same.
"""

from __future__ import annotations

import json

import pytest

from docker_credential_ecr.imds import HOP_LIMIT_LINE
from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, get_ok, run_helper

PROGRAM = "docker-credential-ecr-login"


@pytest.fixture
def ec2_env(env: dict[str, str], fake: FakeAWS) -> dict[str, str]:
    """No credentials but the instance's: metadata on, at the fake's IMDS."""
    base = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    return {
        **base,
        "AWS_EC2_METADATA_DISABLED": "false",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.imds_endpoint,
        "AWS_ECR_TIMEOUT": "20",
    }


def token_puts(fake: FakeAWS) -> int:
    return sum(1 for r in fake.requests if (r.op, r.method, r.path) == ("imds", "PUT", "/latest/api/token"))


def test_hop_limit_one_is_named_with_its_fix(fake: FakeAWS, ec2_env: dict[str, str]) -> None:
    fake.configure(imds_drop_token_response=True)
    proc = run_helper(["get"], ec2_env, ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr == f"{PROGRAM}: {HOP_LIMIT_LINE}\n"
    assert "--http-put-response-hop-limit 2" in HOP_LIMIT_LINE
    assert "pass credentials in" in HOP_LIMIT_LINE
    assert token_puts(fake) >= 2  # botocore's own, then the helper's probe: both really unanswered
    assert fake.calls("ecr") == 0


def test_doctor_shows_the_hop_limit(fake: FakeAWS, ec2_env: dict[str, str]) -> None:
    fake.configure(imds_drop_token_response=True)
    proc = run_helper(["doctor", "--json", ECR_HOST], ec2_env)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    credentials = report["sections"]["credentials"]
    assert credentials["instance_metadata"] == "token request unanswered (IMDSv2 hop limit)"
    assert credentials["problems"] == [{"level": "fail", "message": HOP_LIMIT_LINE}]
    assert report["sections"]["fetch"]["error"] == HOP_LIMIT_LINE
    text = run_helper(["doctor", ECR_HOST], ec2_env)
    assert text.stdout.count(HOP_LIMIT_LINE) == 2  # in the credentials section and as the fetch's failure


def test_working_metadata_is_used_and_not_blamed(fake: FakeAWS, ec2_env: dict[str, str]) -> None:
    get_ok(ec2_env)
    assert [r.op for r in fake.requests][-1] == "ecr"
    proc = run_helper(["doctor", "--json", ECR_HOST], ec2_env)
    report = json.loads(proc.stdout)
    assert report["sections"]["credentials"]["instance_metadata"] == "reachable, with an IAM role"
    assert proc.returncode == 0, proc.stdout


def test_metadata_off_means_no_probe(fake: FakeAWS, ec2_env: dict[str, str]) -> None:
    fake.configure(imds_drop_token_response=True)
    proc = run_helper(["get"], {**ec2_env, "AWS_EC2_METADATA_DISABLED": "true"}, ECR_HOST)
    assert proc.returncode == 1
    assert "no AWS credentials found" in proc.stderr
    assert HOP_LIMIT_LINE not in proc.stderr
    assert token_puts(fake) == 0
