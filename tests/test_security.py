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

from fakeecr import FakeAWS
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


# -- 5. proxy passwords, in every form botocore accepts ----------------------------------------------
# botocore takes HTTPS_PROXY/HTTP_PROXY/ALL_PROXY (any case) through urllib's getproxies(), prefixes
# "http://" to anything without "http:"/"https:" (httpsession.ProxyConfiguration._fix_proxy_url) and
# reads the user info with urlparse, which splits at the last "@".
PASSWORD = "Zq7s3cr3tW"
PROXY_FORMS = [
    pytest.param(f"http://alice:{PASSWORD}@proxy.example:3128", id="http"),
    pytest.param(f"https://alice:{PASSWORD}@proxy.example:3128/", id="https-with-slash"),
    pytest.param(f"HTTP://alice:{PASSWORD}@proxy.example:3128", id="upper-case-scheme"),
    pytest.param(f"alice:{PASSWORD}@proxy.example:3128", id="no-scheme"),
    pytest.param(f"//alice:{PASSWORD}@proxy.example:3128", id="scheme-relative"),
    pytest.param(f"http://alice:{PASSWORD}@x@proxy.example:3128", id="at-in-password"),
    pytest.param(f"alice:{PASSWORD}@x@proxy.example:3128", id="at-in-password-no-scheme"),
    pytest.param(f"http://alice:{PASSWORD}:x@proxy.example:3128", id="colon-in-password"),
    pytest.param(f"http://alice:{PASSWORD}%40x@proxy.example:3128", id="percent-encoded"),
    pytest.param(f"http://{PASSWORD}@proxy.example:3128", id="token-as-user"),
    pytest.param(f"{PASSWORD}@proxy.example:3128", id="token-as-user-no-scheme"),
    pytest.param(f"socks5://alice:{PASSWORD}@proxy.example:1080", id="other-scheme"),
    pytest.param(f"http://alice:{PASSWORD}@[::1]:3128", id="ipv6-host"),
]


@pytest.mark.parametrize("proxy", PROXY_FORMS)
def test_mask_userinfo_keeps_the_host_and_drops_the_password(proxy: str) -> None:
    from docker_credential_ecr.log import mask_userinfo

    masked = mask_userinfo(proxy)
    assert PASSWORD not in masked
    assert "alice" not in masked
    assert masked.endswith(proxy.rpartition("@")[2])
    assert "***@" in masked


@pytest.mark.parametrize("proxy", PROXY_FORMS)
def test_no_proxy_password_in_doctor_get_or_the_log(env: dict[str, str], tmp_path: Path, proxy: str) -> None:
    log = tmp_path / "logs" / "ecr.log"
    environ = {
        **env,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "ALL_PROXY": proxy,
        "NO_PROXY": "",
        "no_proxy": "",
        "AWS_ECR_LOG_LEVEL": "debug",
        "AWS_ECR_LOG_FILE": str(log),
        "AWS_ECR_TIMEOUT": "10",
    }
    text = run_helper(["doctor"], environ)
    as_json = run_helper(["doctor", "--json"], environ)
    got = run_helper(["get"], environ, ECR_HOST)
    shown = json.loads(as_json.stdout)["sections"]["credentials"]["variables"]
    assert set(shown) >= {"HTTPS_PROXY", "http_proxy", "ALL_PROXY"}
    assert shown["HTTPS_PROXY"].endswith(proxy.rpartition("@")[2])
    everything = [text.stdout, text.stderr, as_json.stdout, as_json.stderr, got.stdout, got.stderr]
    everything.append(log.read_text() if log.exists() else "")
    for output in everything:
        assert PASSWORD not in output
        assert PASSWORD.lower() not in output.lower()


@pytest.mark.parametrize("proxy", PROXY_FORMS)
def test_the_log_redacts_proxy_user_info_in_free_text(proxy: str) -> None:
    from docker_credential_ecr import log

    for text in (f"proxy {proxy} refused", f"HTTPS_PROXY={proxy}", f'Failed to connect to proxy URL: "{proxy}"'):
        assert PASSWORD not in log.redact(text), text


# -- 10. doctor without a registry still finds out whether credentials resolve -----------------------
def test_doctor_without_a_registry_or_credentials_fails(env: dict[str, str], fake: object) -> None:
    environ = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    proc = run_helper(["doctor"], environ)
    assert proc.returncode == 1, proc.stdout
    assert "no AWS credentials found" in proc.stdout
    assert "Result: FAILED (AWS credentials)" in proc.stdout
    report = json.loads(run_helper(["doctor", "--json"], environ).stdout)
    assert report["ok"] is False
    assert report["sections"]["credentials"]["resolved"] is False
    # A profile that names a missing source profile: the failing source is named.
    config = write(
        Path(env["AWS_CONFIG_FILE"]),
        "[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = gone\n",
    )
    proc = run_helper(["doctor"], {**environ, "AWS_PROFILE": "ci"})
    assert proc.returncode == 1, proc.stdout
    assert "gone" in proc.stdout, proc.stdout
    assert config.exists()
    # With credentials, it resolves them (static keys: no call at all) and passes.
    proc = run_helper(["doctor"], env)
    assert proc.returncode == 0, proc.stdout


# -- 2. a shared cache directory: one token per identity, for every credential source ---------------
def _jwt(sub: str, iat: int) -> str:
    import base64

    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"iss": "https://oidc.eks.us-east-1.amazonaws.com/id/X", "sub": sub, "aud": ["sts.amazonaws.com"]}
    return f"{part({'alg': 'RS256'})}.{part({**claims, 'iat': iat, 'exp': iat + 3600})}.c2ln"


@pytest.mark.parametrize("source", ["container", "web-identity"])
def test_two_pods_sharing_a_cache_directory_get_their_own_tokens(
    env: dict[str, str], fake: FakeAWS, tmp_path: Path, source: str
) -> None:
    """EKS Pod Identity or IRSA: the same environment, one token file each, one cache directory."""
    pods = {}
    for pod in ("a", "b"):
        token = write(tmp_path / pod / "token", _jwt(f"system:serviceaccount:team-{pod}:puller", 1))
        environ = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        pods[pod] = (token, environ)
    for _token, environ in pods.values():
        path = str(tmp_path / "token")  # the same path in both pods' environments: each pod's own file
        environ.update(
            {"AWS_CONTAINER_CREDENTIALS_FULL_URI": fake.container_uri, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": path}
            if source == "container"
            else {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/puller", "AWS_WEB_IDENTITY_TOKEN_FILE": path}
        )

    def get_as(pod: str) -> str:
        token, environ = pods[pod]
        (tmp_path / "token").write_bytes(token.read_bytes())  # this pod's token is what the path holds
        proc = run_helper(["get"], environ, ECR_HOST)
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        secret: str = json.loads(proc.stdout)["Secret"]
        return secret

    a = get_as("a")
    calls = fake.calls("ecr")
    b = get_as("b")
    assert fake.calls("ecr") == calls + 1, "pod B must fetch its own token"
    assert a != b
    assert get_as("a") == a  # each pod still hits its own entry
    # A rotated token of pod A (new iat, same claims) is still pod A: a hit, no call.
    write(pods["a"][0], _jwt("system:serviceaccount:team-a:puller", 99))
    calls = fake.calls("ecr")
    assert get_as("a") == a
    assert fake.calls("ecr") == calls


# -- 8. dependency floors --------------------------------------------------------------------------
def test_the_filelock_floor_excludes_the_releases_with_known_cves() -> None:
    """CVE-2025-68146 (fixed in 3.20.1) and CVE-2026-22701 (fixed in 3.20.3), wherever a fix installs."""
    import sys
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.version import Version

    requirements = [Requirement(r) for r in metadata.requires("docker-credential-ecr") or []]
    for python in ("3.10", "3.11", "3.12", "3.13"):
        wanted = [
            r
            for r in requirements
            if r.name == "filelock" and (r.marker is None or r.marker.evaluate({"python_version": python}))
        ]
        assert wanted, python
        for vulnerable in ("3.12.0", "3.20.0", "3.20.1", "3.20.2"):
            assert not all(r.specifier.contains(vulnerable) for r in wanted), (python, vulnerable)
        assert all(r.specifier.contains("3.20.3") for r in wanted)
    if sys.version_info >= (3, 10):
        assert Version(metadata.version("filelock")) >= Version("3.20.3")
