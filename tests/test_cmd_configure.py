"""`configure`: credHelpers entries in the Docker config, written atomically, nothing else touched."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import botocore.session
import pytest

from docker_credential_ecr import registry
from docker_credential_ecr.commands import configure
from fakeecr import FakeAWS
from support import ECR_HOST, PUBLIC_HOST, WEST_HOST, bin_dir, run_helper, sealed_env

ACCOUNT = "123456789012"
EU_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.fixture
def docker_dir(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """~/.docker, not created; PATH finds the installed helper (no PATH warning unless a test wants one)."""
    monkeypatch.setenv("PATH", str(bin_dir()))
    return home / ".docker"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        status = configure.main(list(args))
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def read(path: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads(path.read_text())
    return doc


def helpers(path: Path) -> dict[str, str]:
    value = read(path)["credHelpers"]
    assert isinstance(value, dict)
    return value


# -- a new file -----------------------------------------------------------------------------------
def test_new_file_is_private_and_in_dockers_format(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, ECR_HOST, PUBLIC_HOST)
    config = docker_dir / "config.json"
    assert (status, err) == (0, "")
    assert helpers(config) == {ECR_HOST: "ecr-login", PUBLIC_HOST: "ecr-login"}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(docker_dir.stat().st_mode) == 0o700
    assert config.read_text().startswith('{\n\t"credHelpers": {\n\t\t"')
    assert f'added     "{ECR_HOST}": "ecr-login"' in out
    assert sorted(p.name for p in docker_dir.iterdir()) == ["config.json"]  # no temp file left behind


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(ECR_HOST, id="host"),
        pytest.param(f"https://{ECR_HOST}", id="https"),
        pytest.param(f"https://{ECR_HOST.upper()}:443/v2/", id="url-upper-port-path"),
        pytest.param(f"{ECR_HOST}/team/app", id="host-repo"),
    ],
)
def test_any_spelling_writes_the_canonical_host(
    docker_dir: Path, capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    assert run(capsys, spelling, ECR_HOST)[0] == 0
    assert helpers(docker_dir / "config.json") == {ECR_HOST: "ecr-login"}


# -- an existing file -----------------------------------------------------------------------------
EXISTING = """{
  "auths": {
    "https://index.docker.io/v1/": {
      "auth": "dXNlcjpwYXNz"
    }
  },
  "credHelpers": {
    "gcr.io": "gcloud",
    "WEST": "ecr-login"
  },
  "credsStore": "desktop",
  "psFormat": "table {{.ID}}",
  "zzz-unknown": [1, 2.5, null, true, "ü"]
}""".replace("WEST", WEST_HOST)


def test_keeps_other_keys_order_indent_mode_and_no_trailing_newline(
    docker_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docker_dir.mkdir()
    config = docker_dir / "config.json"
    config.write_text(EXISTING)
    config.chmod(0o640)
    status, _, err = run(capsys, ECR_HOST)
    assert (status, err) == (0, "")
    text = config.read_text()
    doc = json.loads(text)
    before = json.loads(EXISTING)
    assert list(doc) == list(before)
    assert doc["credHelpers"] == {"gcr.io": "gcloud", WEST_HOST: "ecr-login", ECR_HOST: "ecr-login"}
    assert list(doc["credHelpers"]) == ["gcr.io", WEST_HOST, ECR_HOST]
    assert doc["credsStore"] == "desktop"  # another store is left alone unless --credsstore is asked for
    assert {k: v for k, v in doc.items() if k != "credHelpers"} == {
        k: v for k, v in before.items() if k != "credHelpers"
    }
    assert '\n  "auths": {\n    "https://index.docker.io/v1/": {' in text
    assert not text.endswith("\n")
    assert "ü" in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_an_existing_ecr_login_entry_is_a_no_op(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docker_dir.mkdir()
    config = docker_dir / "config.json"
    config.write_text(EXISTING)
    before = config.stat()
    status, out, err = run(capsys, WEST_HOST)
    assert (status, err) == (0, "")
    assert "already configured, nothing to change" in out
    after = config.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert config.read_text() == EXISTING


def test_refuses_to_replace_another_helper_without_force(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docker_dir.mkdir()
    config = docker_dir / "config.json"
    config.write_text(json.dumps({"credHelpers": {ECR_HOST: "desktop"}}))
    before = config.read_text()
    status, out, err = run(capsys, ECR_HOST, PUBLIC_HOST)
    assert status == 1
    assert out == ""
    assert err.splitlines() == [
        f"docker-credential-ecr-login configure: error: {ECR_HOST} already uses the credential helper "
        f'"desktop" in {config}; use --force to replace it'
    ]
    assert config.read_text() == before  # not even the other host was added

    status, out, err = run(capsys, ECR_HOST, PUBLIC_HOST, "--force")
    assert (status, err) == (0, "")
    assert f'replaced  "{ECR_HOST}": "desktop" -> "ecr-login"' in out
    assert helpers(config) == {ECR_HOST: "ecr-login", PUBLIC_HOST: "ecr-login"}


def test_creds_store(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docker_dir.mkdir()
    config = docker_dir / "config.json"
    config.write_text(EXISTING)
    status, _, err = run(capsys, "--credsstore")
    assert status == 1
    assert err.strip() == (
        'docker-credential-ecr-login configure: error: "credsStore" is already "desktop" in '
        f"{config}; use --force to replace it"
    )
    assert read(config)["credsStore"] == "desktop"

    status, out, err = run(capsys, "--credsstore", "--force")
    assert status == 0
    assert read(config)["credsStore"] == "ecr-login"
    assert 'credsStore "desktop" -> "ecr-login"' in out
    assert 'docker no longer finds the logins kept in the "desktop" store' in err

    config.write_text("{}")
    status, out, err = run(capsys, "--credsstore")
    assert (status, err) == (0, "")
    assert read(config) == {"credsStore": "ecr-login"}
    assert run(capsys, "--credsstore")[1].endswith("already configured, nothing to change\n")


def test_dry_run_prints_a_diff_and_writes_nothing(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, ECR_HOST, "--dry-run")
    assert status == 0
    assert out.splitlines()[:2] == ["--- /dev/null", f"+++ {docker_dir / 'config.json'}"]
    assert f'+\t\t"{ECR_HOST}": "ecr-login"' in out
    assert not docker_dir.exists()

    docker_dir.mkdir()
    config = docker_dir / "config.json"
    config.write_text(EXISTING)
    status, out, _ = run(capsys, ECR_HOST, "--dry-run")
    assert status == 0
    assert f'-    "{WEST_HOST}": "ecr-login"\n+    "{WEST_HOST}": "ecr-login",\n+    "{ECR_HOST}": "ecr-login"\n' in out
    assert out.endswith("\n")
    assert config.read_text() == EXISTING


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"auths": {}', "is not valid JSON (line 1 column 13", id="truncated"),
        pytest.param("[]", "does not hold a JSON object", id="array"),
        pytest.param('{"credHelpers": ["x"]}', '"credHelpers" in', id="helpers-not-object"),
    ],
)
def test_invalid_config_is_never_overwritten(
    docker_dir: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    docker_dir.mkdir()
    config = docker_dir / "config.json"
    config.write_text(content)
    status, out, err = run(capsys, ECR_HOST, "--force")
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert message in err
    assert "nothing was changed" in err
    assert config.read_text() == content


def test_an_empty_file_is_an_empty_config(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docker_dir.mkdir()
    (docker_dir / "config.json").write_text("")
    assert run(capsys, ECR_HOST)[0] == 0
    assert helpers(docker_dir / "config.json") == {ECR_HOST: "ecr-login"}


def test_a_symlinked_config_is_edited_where_it_points(
    docker_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docker_dir.mkdir()
    target = tmp_path / "dotfiles" / "docker.json"
    target.parent.mkdir()
    target.write_text('{"auths": {}}')
    (docker_dir / "config.json").symlink_to(target)
    assert run(capsys, ECR_HOST)[0] == 0
    assert (docker_dir / "config.json").is_symlink()
    assert json.loads(target.read_text()) == {"auths": {}, "credHelpers": {ECR_HOST: "ecr-login"}}


def test_docker_config_env_and_option(
    docker_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "from-env"))
    assert run(capsys, ECR_HOST)[0] == 0
    assert helpers(tmp_path / "from-env" / "config.json") == {ECR_HOST: "ecr-login"}
    assert run(capsys, PUBLIC_HOST, "--docker-config", str(tmp_path / "from-option"))[0] == 0
    assert helpers(tmp_path / "from-option" / "config.json") == {PUBLIC_HOST: "ecr-login"}
    assert not docker_dir.exists()


# -- hosts from accounts and regions --------------------------------------------------------------
def test_accounts_times_regions(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = "210987654321"
    status, _, _ = run(capsys, "--account", f"{ACCOUNT},{other}", "--region", "us-east-1", "--regions", "eu-west-1")
    assert status == 0
    assert list(helpers(docker_dir / "config.json")) == [
        ECR_HOST,
        EU_HOST,
        f"{other}.dkr.ecr.us-east-1.amazonaws.com",
        f"{other}.dkr.ecr.eu-west-1.amazonaws.com",
    ]


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_account_without_region_uses_the_default_region(
    docker_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "eu-west-1")
    assert run(capsys, "--account", ACCOUNT)[0] == 0
    assert helpers(docker_dir / "config.json") == {EU_HOST: "ecr-login"}


def test_default_region_from_the_profile(
    docker_dir: Path, home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("[profile team]\nregion = us-west-2\n")
    assert run(capsys, "--account", ACCOUNT, "--profile", "team")[0] == 0
    assert helpers(docker_dir / "config.json") == {WEST_HOST: "ecr-login"}


@pytest.mark.parametrize(
    ("args", "host"),
    [
        pytest.param(["--fips", "--region", "us-gov-west-1"], f"{ACCOUNT}.dkr.ecr-fips.us-gov-west-1.amazonaws.com"),
        pytest.param(["--dualstack", "--region", "us-east-1"], f"{ACCOUNT}.dkr-ecr.us-east-1.on.aws"),
        pytest.param(
            ["--dualstack", "--fips", "--region", "cn-north-1"],
            f"{ACCOUNT}.dkr-ecr-fips.cn-north-1.on.amazonwebservices.com.cn",
        ),
    ],
)
def test_fips_and_dualstack_hosts(
    docker_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], host: str
) -> None:
    assert run(capsys, "--account", ACCOUNT, *args)[0] == 0
    assert helpers(docker_dir / "config.json") == {host: "ecr-login"}


def test_public_dualstack(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--public", "--dualstack")[0] == 0
    assert helpers(docker_dir / "config.json") == {"ecr-public.aws.com": "ecr-login"}


def test_all_regions_from_botocores_data_and_the_long_list_warning(
    docker_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    regions = botocore.session.get_session().get_available_regions("ecr")
    status, _, err = run(capsys, "--account", ACCOUNT, "--all-regions")
    assert status == 0
    written = helpers(docker_dir / "config.json")
    assert sorted(written) == sorted(f"{ACCOUNT}.dkr.ecr.{r}.amazonaws.com" for r in regions)
    assert ECR_HOST in written
    assert f"warning: {len(regions)} credHelpers entries: classic `docker build` runs a helper" in err


def test_all_regions_of_another_partition(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--account", ACCOUNT, "--all-regions", "--partition", "aws-cn")[0] == 0
    written = helpers(docker_dir / "config.json")
    assert written
    assert all(h.endswith(".amazonaws.com.cn") for h in written)


def test_caller_account_from_sts(
    docker_dir: Path, fake: FakeAWS, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    fake.configure(account="555555555555")
    assert run(capsys, "--region", "us-west-2")[0] == 0
    assert helpers(docker_dir / "config.json") == {"555555555555.dkr.ecr.us-west-2.amazonaws.com": "ecr-login"}
    assert fake.calls("sts:GetCallerIdentity") == 1


def test_caller_account_failure_is_one_line(
    docker_dir: Path, fake: FakeAWS, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    fake.add_fault("sts:GetCallerIdentity", "access-denied", times=None)
    status, out, err = run(capsys, "--region", "us-west-2")
    assert status == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "cannot find your account with STS GetCallerIdentity (" in err
    assert "AccessDenied" in err
    assert err.rstrip().endswith("pass --account")
    assert fake.env()["AWS_SECRET_ACCESS_KEY"] not in err
    assert not docker_dir.exists()


# -- usage errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "name at least one registry", id="nothing"),
        pytest.param(
            ["example.com"], "'example.com' is not an ECR or ECR Public registry host, nor an alias", id="not-ecr"
        ),
        pytest.param([f"http://{ECR_HOST}"], f"'http://{ECR_HOST}': a plain http:// registry never", id="http"),
        pytest.param(["--account", "12345", "--region", "us-east-1"], "is not a 12-digit AWS account id", id="acct"),
        pytest.param(["--account", ACCOUNT], "no region: pass --region", id="no-region"),
        pytest.param(["--region", "us-east-1", "--all-regions"], "not allowed with argument", id="exclusive"),
        pytest.param(["--account", ACCOUNT, "--partition", "aws-cn"], "--partition only goes with", id="partition"),
        pytest.param(
            ["--account", ACCOUNT, "--region", "us-iso-east-1", "--dualstack"],
            "ECR has no dual-stack registry host in region 'us-iso-east-1'",
            id="no-dualstack",
        ),
        pytest.param(["--account", ACCOUNT, "--region", "nowhere"], "no registry host in region 'nowhere'", id="rgn"),
        pytest.param(["--bogus"], "unrecognized arguments: --bogus", id="unknown-option"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    docker_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, out, err = run(capsys, *args)
    assert status == 2
    assert out == ""
    last = err.splitlines()[-1]
    assert last.startswith("docker-credential-ecr-login configure: error: ")
    assert message in last
    assert not docker_dir.exists()


# -- warnings -------------------------------------------------------------------------------------
def test_warns_when_the_executable_is_not_on_path(
    docker_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    status, _, err = run(capsys, ECR_HOST)
    assert status == 0
    assert err.splitlines() == [
        "docker-credential-ecr-login configure: warning: docker-credential-ecr-login is not on PATH, so docker "
        "will not find it: add its directory to PATH (or link it into /usr/local/bin)"
    ]
    assert helpers(docker_dir / "config.json") == {ECR_HOST: "ecr-login"}


# -- through the console script -------------------------------------------------------------------
def test_console_script(home: Path) -> None:
    env = sealed_env(home)
    proc = run_helper(["configure", ECR_HOST], env)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads((home / ".docker" / "config.json").read_text()) == {"credHelpers": {ECR_HOST: "ecr-login"}}
    helped = run_helper(["configure", "--help"], env)
    assert helped.returncode == 0
    assert "usage: docker-credential-ecr-login configure" in helped.stdout
    assert "--dry-run" in helped.stdout
    assert run_helper(["configure", "--nope"], env).returncode == 2


def test_unwritable_directory_is_an_error(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    docker_dir.mkdir()
    docker_dir.chmod(0o500)
    try:
        status, _, err = run(capsys, ECR_HOST)
    finally:
        docker_dir.chmod(0o700)
    assert status == 1
    assert f"error: cannot write {docker_dir / 'config.json'}" in err


# -- registry.host_for, which configure builds hosts with -----------------------------------------
@pytest.mark.parametrize(
    ("region", "fips", "dualstack"),
    [
        ("us-east-1", False, False),
        ("us-gov-east-1", True, False),
        ("cn-northwest-1", False, True),
        ("eu-isoe-west-1", False, False),
        ("eusc-de-east-1", True, False),
        ("us-isob-east-1", True, False),
    ],
)
def test_host_for_is_the_inverse_of_parse(region: str, fips: bool, dualstack: bool) -> None:
    host = registry.host_for(ACCOUNT, region.upper(), fips=fips, dualstack=dualstack)
    assert host is not None
    parsed = registry.parse(host)
    assert parsed is not None
    assert (parsed.account, parsed.region, parsed.fips, parsed.dualstack, parsed.host) == (
        ACCOUNT,
        region,
        fips,
        dualstack,
        host,
    )


def test_host_for_refuses_what_cannot_exist() -> None:
    assert registry.host_for("1234", "us-east-1") is None
    assert registry.host_for(ACCOUNT, "us-iso-east-1", dualstack=True) is None
    assert registry.host_for(ACCOUNT, "not a region") is None


def test_a_file_where_the_directory_should_be_is_an_error(docker_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docker_dir.write_text("not a directory")
    status, out, err = run(capsys, ECR_HOST)
    assert (status, out) == (1, "")
    assert f"error: cannot read {docker_dir / 'config.json'}: Not a directory" in err
    assert docker_dir.read_text() == "not a directory"


# -- aliases from the helper's config file --------------------------------------------------------
def test_an_alias_from_the_config_file(
    docker_dir: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = home / "helper.toml"
    config.write_text(f'[aliases]\n"Mirror.Example.com" = "{ECR_HOST}"\n"mirror.example.com:5000" = "{WEST_HOST}"\n')
    monkeypatch.setenv("DOCKER_CREDENTIAL_ECR_CONFIG", str(config))
    status, _, err = run(capsys, "https://mirror.example.com/v2/", "MIRROR.example.com:5000/team/app")
    assert (status, err) == (0, "")
    assert helpers(docker_dir / "config.json") == {
        "mirror.example.com": "ecr-login",
        "mirror.example.com:5000": "ecr-login",
    }
    assert not (home / ".cache").exists()  # no parsed copy of the config left behind

    config.write_text("aliases = 3\n")
    status, _, err = run(capsys, "mirror.example.com")
    assert status == 2
    assert "'mirror.example.com' is not an ECR registry host, and the config file is unusable: " in err
