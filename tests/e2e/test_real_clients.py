"""Real clients, a real registry, the helper as installed: do the clients accept its answers?

Only third-party programs talk to the helper here: skopeo (containers/image), docker-py and the
docker CLI, against the CNCF distribution registry with TLS and htpasswd auth answering as an ECR
registry and as ECR Public, with the helper getting its tokens from the fake AWS endpoint through
the real boto3. Negative controls show the same commands fail when the credentials are wrong or
missing, so a pass means the helper's answer is what opened the registry.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .rig import SEED_DOCKER_TAG, SEED_REPOSITORY, SEED_TAG, Rig
from .support import (
    AUTH_ERROR,
    ECR_HOST,
    PUBLIC_HOST,
    base_env,
    oci_layer_file,
    oci_manifest_digest,
    stub_calls,
)

if TYPE_CHECKING:
    import subprocess

pytestmark = pytest.mark.e2e

# The fake's operation names: ECR's and ECR Public's GetAuthorizationToken.
ECR_OP = "ecr"
PUBLIC_OP = "ecr-public"
OPERATION = {ECR_HOST: ECR_OP, PUBLIC_HOST: PUBLIC_OP}
OTHER_OPERATION = {ECR_HOST: PUBLIC_OP, PUBLIC_HOST: ECR_OP}

HOSTS = [pytest.param(ECR_HOST, id="ecr"), pytest.param(PUBLIC_HOST, id="ecr-public")]
MODES = ["credHelpers", "credsStore"]


def docker_config(mode: str, host: str, helper: str = "ecr-login") -> dict[str, Any]:
    if mode == "credHelpers":
        return {"cred_helpers": {host: helper}}
    return {"creds_store": helper}


def slug(host: str) -> str:
    return "public" if host == PUBLIC_HOST else "private"


def explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"


def test_the_namespace_keeps_the_machine_untouched(rig: Rig) -> None:
    inside = rig.ns.run(["getent", "hosts", ECR_HOST, PUBLIC_HOST], env=base_env(), timeout=10)
    assert inside.stdout.split().count("127.0.0.1") == 2, explain(inside)
    assert ECR_HOST not in Path("/etc/hosts").read_text(), "the machine's own /etc/hosts was changed"
    links = rig.ns.run(["ip", "-o", "link", "show"], env=base_env(), timeout=10)
    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"], explain(links)


@pytest.mark.parametrize("host", HOSTS)
def test_skopeo_copies_in_and_out_and_inspects_with_the_helper(rig: Rig, host: str, tmp_path: Path) -> None:
    env = rig.env(rig.new_home(cred_helpers={host: "ecr-login"}))
    repository = f"e2e/roundtrip-{slug(host)}"
    reference = f"docker://{host}/{repository}:v1"
    before = {op: rig.fake.calls(op) for op in (ECR_OP, PUBLIC_OP)}

    push = rig.skopeo("copy", "--preserve-digests", f"oci:{rig.image.layout}:{rig.image.tag}", reference, env=env)
    assert push.returncode == 0, explain(push)
    back = tmp_path / "back"
    pull = rig.skopeo("copy", "--preserve-digests", reference, f"oci:{back}:v1", env=env)
    assert pull.returncode == 0, explain(pull)
    inspect = rig.skopeo("inspect", reference, env=env)
    assert inspect.returncode == 0, explain(inspect)

    assert oci_manifest_digest(back, "v1") == rig.image.digest
    assert oci_layer_file(back, rig.image.layer_digest, rig.image.file_name) == rig.image.file_content
    info = json.loads(inspect.stdout)
    assert info["Digest"] == rig.image.digest
    assert info["Name"] == f"{host}/{repository}"
    # The token came from the right API, and the registry saw the helper's user on this repository.
    assert rig.fake.calls(OPERATION[host]) > before[OPERATION[host]]
    assert rig.fake.calls(OTHER_OPERATION[host]) == before[OTHER_OPERATION[host]]
    assert rig.registry.authenticated_users(repository, host) == {"AWS"}


CONTROLS = [
    pytest.param("ecr-wrongpw", id="helper-returns-a-wrong-password"),
    pytest.param("ecr-notfound", id="helper-answers-not-found"),
    pytest.param("foreign-token", id="real-helper-with-a-token-the-registry-does-not-know"),
    pytest.param("no-helper", id="no-helper-configured"),
]


def control_env(rig: Rig, control: str, host: str) -> dict[str, str]:
    """A client environment whose docker config or token source cannot open the registry."""
    if control == "no-helper":
        return rig.env(rig.new_home(cred_helpers={}))
    if control == "foreign-token":
        return rig.env(rig.new_home(cred_helpers={host: "ecr-login"}), fake=rig.foreign_fake)
    return rig.env(rig.new_home(cred_helpers={host: control}))


class ControlEvidence:
    """Shows a negative control really went through the helper path it is meant to exercise."""

    def __init__(self, rig: Rig, control: str, host: str) -> None:
        self.rig, self.control, self.host = rig, control, host
        self.stub_before = len(stub_calls(rig.stub_logs, control))
        self.foreign_before = rig.foreign_fake.calls(OPERATION[host])

    def check(self) -> None:
        if self.control.startswith("ecr-"):
            assert len(stub_calls(self.rig.stub_logs, self.control)) > self.stub_before
        if self.control == "foreign-token":
            assert self.rig.foreign_fake.calls(OPERATION[self.host]) > self.foreign_before


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("control", CONTROLS)
def test_negative_controls_make_skopeo_fail_with_an_authentication_error(rig: Rig, control: str, host: str) -> None:
    """The skopeo commands that pass above must fail when the helper's answer cannot open the registry."""
    env = control_env(rig, control, host)
    evidence = ControlEvidence(rig, control, host)
    repository = f"e2e/denied-{slug(host)}-{control}"

    inspect = rig.skopeo("inspect", f"docker://{host}/{SEED_REPOSITORY}:{SEED_TAG}", env=env)
    push = rig.skopeo("copy", f"oci:{rig.image.layout}:{rig.image.tag}", f"docker://{host}/{repository}:v1", env=env)
    for done in (inspect, push):
        assert done.returncode != 0, explain(done)
        assert AUTH_ERROR.search(done.stderr), explain(done)
    assert rig.registry.authenticated_users(repository, host) == set()
    evidence.check()


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("control", CONTROLS)
def test_negative_controls_make_docker_cli_fail(docker_rig: Rig, control: str, host: str) -> None:
    """Likewise `docker manifest inspect`. The CLI reports a refusal with credentials as "no such
    manifest" (without any, as "no basic auth credentials"): the registry's access log says what
    really happened."""
    rig = docker_rig
    env = control_env(rig, control, host)
    evidence = ControlEvidence(rig, control, host)
    mark = rig.registry.mark()
    manifest = rig.docker("manifest", "inspect", f"{host}/{SEED_REPOSITORY}:{SEED_DOCKER_TAG}", env=env)
    assert manifest.returncode != 0, explain(manifest)
    assert 401 in rig.registry.statuses(mark, "/v2/", "Docker-Client/"), explain(manifest)
    assert 200 not in rig.registry.statuses(mark, f"/v2/{SEED_REPOSITORY}/", "Docker-Client/"), explain(manifest)
    evidence.check()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("host", HOSTS)
def test_docker_py_resolves_the_helpers_credentials(rig: Rig, host: str, mode: str) -> None:
    home = rig.new_home(**docker_config(mode, host))
    env = rig.env(home)
    before = rig.fake.calls(OPERATION[host])
    done = rig.python(
        "dockerpy_probe.py",
        *("--config", str(home / ".docker" / "config.json"), "--registry", host, "--store", "ecr-login"),
        *("--repository", SEED_REPOSITORY, "--reference", SEED_TAG, "--ca", str(rig.pki.ca_cert)),
        env=env,
    )
    assert done.returncode == 0, explain(done)
    out = json.loads(done.stdout)

    assert out["resolved"] == {"ServerAddress": host, "Username": "AWS", "Password": rig.password}
    assert (out["direct"]["Username"], out["direct"]["Secret"]) == ("AWS", rig.password)
    # The registry takes what docker-py resolved, and refuses the same request without it.
    assert out["with_credentials"] == {"status": 200, "digest": rig.image.digest}
    assert out["anonymous"]["status"] == 401
    # docker-py's build path (list, then get for every key) must not raise.
    assert "ok" in out["all"], out["all"]
    assert host in out["all"]["ok"], out["all"]
    for key, entry in out["all"]["ok"].items():
        if entry:
            assert (entry["Username"], entry["Password"]) == ("AWS", rig.password), key
    assert rig.fake.calls(OPERATION[host]) > before


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("host", HOSTS)
def test_docker_cli_manifest_inspect_uses_the_helper(docker_rig: Rig, host: str, mode: str) -> None:
    """`docker manifest inspect` resolves credentials and talks to the registry in the CLI itself."""
    rig = docker_rig
    env = rig.env(rig.new_home(**docker_config(mode, host)))
    before = rig.fake.calls(OPERATION[host])
    done = rig.docker("manifest", "inspect", "--verbose", f"{host}/{SEED_REPOSITORY}:{SEED_DOCKER_TAG}", env=env)
    assert done.returncode == 0, explain(done)
    info = json.loads(done.stdout)
    assert info["Descriptor"]["digest"] == rig.docker_digests[host]
    # docker 20.10 prints the parsed manifest only, newer CLIs the raw bytes as well
    manifest = info["SchemaV2Manifest"] if "SchemaV2Manifest" in info else json.loads(base64.b64decode(info["Raw"]))
    assert [layer["digest"] for layer in manifest["layers"]] == [rig.image.layer_digest]
    assert rig.fake.calls(OPERATION[host]) > before


@pytest.mark.parametrize("host", HOSTS)
def test_docker_cli_login_and_logout_in_creds_store_mode(docker_rig: Rig, host: str) -> None:
    """With no daemon the CLI logs in client-side (a real check against the registry), then hands the
    credentials to the helper's `store`; `logout` calls its `erase`. Both must succeed silently."""
    rig = docker_rig
    home = rig.new_home(creds_store="ecr-login")
    config = home / ".docker" / "config.json"
    env = rig.env(home, AWS_ECR_IGNORE_CREDS_STORAGE="true")

    wrong = rig.docker("login", "--username", "AWS", "--password-stdin", host, env=env, input="not-it\n")
    assert wrong.returncode != 0, explain(wrong)
    assert AUTH_ERROR.search(wrong.stderr), explain(wrong)

    login = rig.docker("login", "--username", "AWS", "--password-stdin", host, env=env, input=rig.password + "\n")
    assert login.returncode == 0, explain(login)
    assert "Login Succeeded" in login.stdout + login.stderr
    saved = json.loads(config.read_text())
    assert saved["credsStore"] == "ecr-login"
    assert saved["auths"] == {host: {}}, "the CLI wrote a secret to config.json instead of using the helper"

    logout = rig.docker("logout", host, env=env)
    assert logout.returncode == 0, explain(logout)
    assert "WARNING" not in logout.stderr, explain(logout)
    assert host not in json.loads(config.read_text()).get("auths", {})


def test_docker_cli_login_shows_the_helpers_store_refusal(docker_rig: Rig) -> None:
    """Without AWS_ECR_IGNORE_CREDS_STORAGE the helper refuses `store` as the Go helper does, and the
    CLI reports it rather than pretending the login was saved."""
    rig = docker_rig
    env = rig.env(rig.new_home(creds_store="ecr-login"))
    login = rig.docker("login", "--username", "AWS", "--password-stdin", ECR_HOST, env=env, input=rig.password + "\n")
    assert login.returncode != 0, explain(login)
    assert "Error saving credentials" in login.stderr, explain(login)
    assert "not implemented" in login.stderr, explain(login)
