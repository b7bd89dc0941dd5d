"""Logging you control: off by default, on by variable or config, rotated, private, and redacted."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from docker_credential_ecr import log
from docker_credential_ecr.config import Config
from docker_credential_ecr.settings import APP_NAME, Settings
from fakeecr import DEFAULT_SECRET_ACCESS_KEY, FakeAWS
from support import ECR_HOST, WEST_HOST, get_ok, platformdirs_user_dir, run_helper

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

ROLE = "arn:aws:iam::210987654321:role/ecr-pull"


@pytest.fixture(autouse=True)
def _no_logging_left_on() -> Iterator[None]:
    yield
    log.shutdown()


def default_log_file(home: Path) -> Path:
    return home / ".local" / "state" / APP_NAME / "log" / "docker-credential-ecr.log"


def secrets_of(fake: FakeAWS) -> list[str]:
    """Everything secret the fake handed out or was given, and the encoded forms it travelled in."""
    issued = [*fake.issued, *fake.issued_secrets, DEFAULT_SECRET_ACCESS_KEY]
    encoded = [base64.b64encode(b"AWS:" + p.encode()).decode() for p in fake.issued]
    # Fragments too: a redaction that cut a token in two would leak its pieces.
    return [*issued, *encoded, *(s[:16] for s in issued), *(s[-16:] for s in issued)]


def assert_no_secrets(text: str, fake: FakeAWS) -> None:
    leaked = [s for s in secrets_of(fake) if s in text]
    assert leaked == []


# -- where ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the hand-written path covers Linux/BSD")
@pytest.mark.parametrize("xdg", [None, "/tmp/xdg-state", "  ", "relative/state"])
def test_default_log_dir_equals_platformdirs(monkeypatch: pytest.MonkeyPatch, xdg: str | None) -> None:
    if xdg is not None:
        monkeypatch.setenv("XDG_STATE_HOME", xdg)
    assert log.default_log_dir(os.environ) == platformdirs_user_dir("log", APP_NAME)


@pytest.mark.parametrize(
    ("environ", "config", "level", "where"),
    [
        pytest.param({}, None, "off", None, id="default-off"),
        pytest.param({"AWS_ECR_LOG_LEVEL": "INFO"}, None, "info", "default", id="env"),
        pytest.param({"AWS_ECR_LOG_LEVEL": "warn"}, None, "warning", "default", id="warn"),
        pytest.param({"AWS_ECR_LOG_LEVEL": "chatty"}, None, "off", "default", id="unknown-is-off"),
        pytest.param({}, Config(log_level="debug", log_file="~/ecr.log"), "debug", "~/ecr.log", id="config"),
        pytest.param({"AWS_ECR_LOG_LEVEL": "off"}, Config(log_level="debug"), "off", "default", id="env-wins"),
        pytest.param(
            {"AWS_ECR_LOG_LEVEL": "error", "AWS_ECR_LOG_FILE": "/var/tmp/x.log"},
            Config(log_file="/y.log"),
            "error",
            "/var/tmp/x.log",
            id="env-file-wins",
        ),
    ],
)
def test_level_and_file(home: Path, environ: dict[str, str], config: Config | None, level: str, where: str) -> None:
    settings = Settings.from_environ({"HOME": str(home), **environ})
    assert log.level(settings, config) == level
    if where == "default":
        assert log.log_file(settings, config) == str(default_log_file(home))
    elif where is not None:
        assert log.log_file(settings, config) == where.replace("~", str(home))


# -- redaction --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '{"ServerURL":"h","Username":"AWS","Secret":"s3cr3t value"}',
            '{"ServerURL":"h","Username":"AWS","Secret":[REDACTED]}',
            id="json-secret",
        ),
        pytest.param(
            "{'SecretAccessKey': 'abc', 'X-Amz-Security-Token': b'FwoGZXIvYXdz'}",
            "{'SecretAccessKey': [REDACTED], 'X-Amz-Security-Token': [REDACTED]}",
            id="repr-and-bytes",
        ),
        pytest.param("password=hunter2 next", "password=[REDACTED] next", id="key-value"),
        pytest.param("<SessionToken>Fwo+/=</SessionToken>", "<SessionToken>[REDACTED]</SessionToken>", id="xml"),
        pytest.param(
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAX/20250101/us-east-1/ecr/aws4_request, "
            "SignedHeaders=host, Signature=0badc0ffee",
            "Authorization: [REDACTED] Credential=[REDACTED], SignedHeaders=host, Signature=[REDACTED]",
            id="auth-header",
        ),
        pytest.param(
            "proxy https://bob:pa55@proxy.example.com:3128/",
            "proxy https://[REDACTED]@proxy.example.com:3128/",
            id="userinfo",
        ),
        pytest.param(
            "GET https://bucket.s3.amazonaws.com/layer?X-Amz-Credential=a&X-Amz-Signature=b done",
            "GET https://bucket.s3.amazonaws.com/layer?[REDACTED] done",
            id="presigned-url",
        ),
        pytest.param("token QVdTOmV5SnBZWGx2WVdRaU9pSXhT end", "token [REDACTED] end", id="long-token"),
        pytest.param(
            "get 123456789012.dkr.ecr.us-east-1.amazonaws.com: hit (0.4 ms)",
            "get 123456789012.dkr.ecr.us-east-1.amazonaws.com: hit (0.4 ms)",
            id="host-kept",
        ),
        pytest.param(
            f"assuming {ROLE} from /home/user/.cache/docker-credential-ecr/roles/cache.json",
            f"assuming {ROLE} from /home/user/.cache/docker-credential-ecr/roles/cache.json",
            id="arn-and-path-kept",
        ),
        pytest.param("key AKIAFAKEFAKEFAKE0001", "key AKIAFAKEFAKEFAKE0001", id="access-key-id-kept"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert log.redact(text) == expected


# -- in process: the handler ---------------------------------------------------------------------------
def test_off_by_default_touches_nothing(home: Path) -> None:
    assert log.setup(Settings.from_environ({"HOME": str(home)})) is False
    assert not log.enabled()
    log.info("nothing %s", "here")
    assert not (home / ".local").exists()


def test_rotates_privately(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log, "MAX_BYTES", 400)
    monkeypatch.setattr(os, "umask", os.umask)  # restored after the test
    os.umask(0o022)
    path = tmp_path / "logs" / "ecr.log"
    settings = Settings.from_environ(
        {"HOME": str(tmp_path), "AWS_ECR_LOG_LEVEL": "info", "AWS_ECR_LOG_FILE": str(path)}
    )
    assert log.setup(settings) is True
    assert log.setup(settings) is True  # idempotent: one handler, not two
    for i in range(60):
        log.info("line %d of the rotation test", i)
    log.debug("not at info level")
    log.shutdown()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["ecr.log", "ecr.log.1", "ecr.log.2", "ecr.log.3"]
    for name in files:
        assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "line 59 of the rotation test" in text
    assert text.count("line 59") == 1
    assert "not at info level" not in text


def test_unopenable_log_file_turns_logging_off(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    settings = Settings.from_environ(
        {"HOME": str(tmp_path), "AWS_ECR_LOG_LEVEL": "info", "AWS_ECR_LOG_FILE": str(tmp_path / "file" / "x.log")}
    )
    assert log.setup(settings) is False
    assert not log.enabled()
    problem = log.problem()
    assert problem is not None
    assert problem.startswith(f"cannot open the log file {tmp_path / 'file' / 'x.log'}: ")


# -- end to end ----------------------------------------------------------------------------------------
def test_nothing_is_logged_or_imported_by_default(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    get_ok(env)
    code = (
        "import sys; from docker_credential_ecr.cli import main; sys.argv = ['x', 'get']; status = main(); "
        "sys.stderr.write(repr((status, 'logging' in sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input=ECR_HOST.encode(), env=env, capture_output=True, check=False, timeout=60
    )
    assert proc.stderr.decode() == "(0, False)"  # a hit never imports logging
    assert not default_log_file(home).parent.exists()


def test_info_logs_each_get_and_no_secret(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    environ = {**env, "AWS_ECR_LOG_LEVEL": "info"}
    get_ok(environ)
    get_ok(environ)
    fake.add_fault("ecr", "access-denied", times=None)
    failed = run_helper(["get"], environ, WEST_HOST)
    assert failed.returncode == 1
    path = default_log_file(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    lines = text.splitlines()
    assert [line.split("] ", 1)[1] for line in lines if " INFO " in line] == [
        f"get {ECR_HOST}: miss, fetched (" + lines[0].rsplit("(", 1)[1],
        f"get {ECR_HOST}: hit (" + lines[1].rsplit("(", 1)[1],
        f"get {WEST_HOST}: failed (" + lines[3].rsplit("(", 1)[1],
    ]
    assert f"WARNING [docker_credential_ecr] {failed.stderr.split(': ', 1)[1].strip()}" in text
    assert "botocore" not in text
    assert_no_secrets(text, fake)


def test_debug_from_the_config_includes_botocore_redacted(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    path = home / "logs" / "ecr.log"
    config = home / ".config" / APP_NAME / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'log_level = "debug"\nlog_file = "~/logs/ecr.log"\n[[registry]]\nmatch = "123456789012"\nrole_arn = "{ROLE}"\n'
    )
    environ = {**env, "XDG_CONFIG_HOME": str(home / ".config")}
    get_ok(environ)  # assumes the role: STS answers with a secret key and a session token
    get_ok(environ, "public.ecr.aws")
    assert len(fake.issued_secrets) == 2
    text = path.read_text()
    assert "botocore" in text
    assert "AssumeRole" in text
    assert_no_secrets(text, fake)
    assert "[REDACTED]" in text


def test_env_off_overrides_the_config(env: dict[str, str], home: Path, fake: FakeAWS) -> None:
    config = home / ".config" / APP_NAME / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('log_level = "debug"\n')
    get_ok({**env, "XDG_CONFIG_HOME": str(home / ".config"), "AWS_ECR_LOG_LEVEL": "off"})
    assert not default_log_file(home).parent.exists()


def test_unwritable_log_never_breaks_get(env: dict[str, str], tmp_path: Path, fake: FakeAWS) -> None:
    (tmp_path / "file").write_text("")
    get_ok({**env, "AWS_ECR_LOG_LEVEL": "debug", "AWS_ECR_LOG_FILE": str(tmp_path / "file" / "x.log")})


def test_fallback_calls_are_logged_without_credentials(env: dict[str, str], home: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-sink"
    script.write_text("#!/bin/sh\ncat >/dev/null\n")
    script.chmod(0o755)
    config = home / ".config" / APP_NAME / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('fallback = "sink"\nlog_level = "debug"\n')
    environ = {**env, "XDG_CONFIG_HOME": str(home / ".config"), "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}
    body = '{"ServerURL":"ghcr.io","Username":"octocat","Secret":"ghp_fallbackSecret123"}'
    proc = run_helper(["store"], environ, body)
    assert (proc.returncode, proc.stderr) == (0, "")
    text = default_log_file(home).read_text()
    assert "store ghcr.io: passed to docker-credential-sink, exit status 0" in text
    assert "ghp_fallbackSecret123" not in text
    assert "octocat" not in text
