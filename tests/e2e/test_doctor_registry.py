"""`doctor REGISTRY` tries the cached token at the real registry (GET /v2/ with basic auth).

A token the registry no longer takes is the case docker never reports to the helper: `get` keeps
serving it from the cache. The rig's second fake AWS endpoint issues passwords the registry does not
know, which is that case exactly: AWS hands out a token, the registry refuses it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from .rig import Rig
from .support import ECR_HOST, HELPER_PROGRAM, PUBLIC_HOST

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

pytestmark = pytest.mark.e2e

HOSTS = [pytest.param(ECR_HOST, id="ecr"), pytest.param(PUBLIC_HOST, id="ecr-public")]
REJECTED = f"rejected by the registry: run `{HELPER_PROGRAM} cache clear`"


def helper(rig: Rig, env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return rig.ns.run([str(rig.venv_bin / HELPER_PROGRAM), *args], env=env, input=input, timeout=60)


def doctor(rig: Rig, env: dict[str, str], host: str) -> tuple[int, dict[str, object], str]:
    done = helper(rig, env, "doctor", "--json", host)
    doc = json.loads(done.stdout)
    check = doc["sections"]["registry_auth"]
    assert isinstance(check, dict)
    return done.returncode, check, done.stdout + done.stderr


@pytest.mark.parametrize("host", HOSTS)
def test_doctor_says_when_the_registry_rejects_the_cached_token(rig: Rig, host: str) -> None:
    home = rig.new_home(cred_helpers={host: "ecr-login"})
    env = rig.env(home, fake=rig.foreign_fake)
    got = helper(rig, env, "get", input=host)
    assert got.returncode == 0, got.stderr
    cached = json.loads(got.stdout)["Secret"]
    mark = rig.registry.mark()

    status, check, output = doctor(rig, env, host)

    assert status == 1
    assert check["status"] == "failed"
    assert check["http_status"] == 401
    assert check["accepted"] is False
    assert check["problems"] == [{"level": "fail", "message": REJECTED}]
    assert 401 in rig.registry.statuses(mark, "/v2/", "docker-credential-ecr/")  # it really asked
    leaked = cached in output
    assert not leaked
    text = helper(rig, env, "doctor", host)
    assert f"FAILED: {REJECTED}" in text.stdout
    leaked = cached in text.stdout + text.stderr
    assert not leaked

    # docker is never told: get keeps answering with the token the registry refuses, from the cache.
    operation = "ecr-public" if host == PUBLIC_HOST else "ecr"
    calls = rig.foreign_fake.calls(operation)
    again = helper(rig, env, "get", input=host)
    served_from_cache = json.loads(again.stdout)["Secret"] == cached  # no secret in assertion output
    assert served_from_cache
    assert rig.foreign_fake.calls(operation) == calls
    # What the line says to do works: after `cache clear` the next get asks AWS again.
    cleared = helper(rig, env, "cache", "clear")
    assert cleared.returncode == 0, cleared.stderr
    assert helper(rig, env, "get", input=host).returncode == 0
    assert rig.foreign_fake.calls(operation) == calls + 1


@pytest.mark.parametrize("host", HOSTS)
def test_doctor_says_the_registry_takes_the_cached_token(rig: Rig, host: str, tmp_path: Path) -> None:
    env = rig.env(rig.new_home(cred_helpers={host: "ecr-login"}))
    assert helper(rig, env, "get", input=host).returncode == 0
    mark = rig.registry.mark()

    status, check, output = doctor(rig, env, f"https://{host}")

    assert status == 0, output
    assert (check["status"], check["http_status"], check["accepted"]) == ("ok", 200, True)
    assert check["url"] == f"https://{host}/v2/"
    assert rig.registry.authorized(mark, "/v2/", "docker-credential-ecr/") == 1
    leaked = rig.password in output
    assert not leaked
