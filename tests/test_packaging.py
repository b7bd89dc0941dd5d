"""Packaging: one version everywhere, the CHANGELOG, the man page, --help, and the artifact recipes.

The artifacts themselves (wheel, sdist, pipx install, the self-contained bundle, its tarball and
.deb) are built and smoke-tested by ``packaging/check``, which ``scripts/test`` runs; here are the
fast checks of what they are made from, plus the smoke harness run on the installed console script.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docker_credential_ecr import config, store
from docker_credential_ecr._version import __version__
from docker_credential_ecr.cli import COMMANDS, PROTOCOL_ACTIONS
from fakeecr import FakeAWS
from support import helper_exe, run_helper, sealed_env

ROOT = Path(__file__).resolve().parent.parent
MAN_PAGE = ROOT / "docs" / "docker-credential-ecr-login.1"
SPEC = ROOT / "packaging" / "pyinstaller" / "docker-credential-ecr-login.spec"
SCRIPTS = ("check", "measure", "make-tarball", "deb/build", "arm64")
DOCUMENTED_ENV = (
    "AWS_ECR_CACHE_DIR",
    "AWS_ECR_DISABLE_CACHE",
    "AWS_ECR_IGNORE_CREDS_STORAGE",
    "AWS_ECR_TIMEOUT",
    "AWS_ECR_LOG_LEVEL",
    "DOCKER_CREDENTIAL_ECR_CONFIG",
)


def man_text() -> str:
    return MAN_PAGE.read_text(encoding="utf-8")


def man_section(name: str) -> str:
    match = re.search(rf"^\.SH {name}\n(.*?)(?=^\.SH |\Z)", man_text(), re.M | re.S)
    assert match, f"man page has no {name} section"
    return match.group(1)


# -- one version -----------------------------------------------------------------------------------


def test_installed_metadata_has_the_version() -> None:
    """The built package's version is _version.py's (pyproject.toml holds none of its own)."""
    assert importlib.metadata.version("docker-credential-ecr") == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?", __version__)


@pytest.mark.parametrize("arg", ["version", "-v", "--version"])
def test_version_actions_print_the_version(arg: str, tmp_path: Path) -> None:
    proc = run_helper([arg], sealed_env(tmp_path))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"docker-credential-ecr-login (docker-credential-ecr) {__version__}\n"


def test_kubelet_entry_point_prints_the_version(tmp_path: Path) -> None:
    proc = run_helper(["--version"], sealed_env(tmp_path), exe=helper_exe("ecr-credential-provider"))
    assert proc.returncode == 0
    assert proc.stdout.split()[-1] == __version__


def test_changelog_top_entry_is_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    entries = re.findall(r"^## \[([^\]]+)\](?: - (\S+))?", changelog, re.M)
    assert entries, "CHANGELOG.md has no '## [version] - date' entry"
    released = [(version, date) for version, date in entries if version.lower() != "unreleased"]
    version, date = released[0]
    assert version == __version__, f"CHANGELOG's top entry is {version}, _version.py says {__version__}"
    assert date == "Unreleased" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", date or ""), date
    assert re.search(rf"^\[{re.escape(version)}\]: https://", changelog, re.M), "no link for the top entry"


# -- the man page ----------------------------------------------------------------------------------


def test_man_page_is_generated_from_its_source_and_the_code() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "genman.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    assert f'"docker-credential-ecr {__version__}"' in man_text().splitlines()[2]


def test_man_page_documents_every_action_command_and_variable() -> None:
    actions = man_section("ACTIONS")
    for action in (*PROTOCOL_ACTIONS, "version"):
        assert re.search(rf"^\.B[RI]? .*\b{action}\b", actions, re.M), f"ACTIONS does not document {action}"
    commands = man_section("COMMANDS")
    for command in COMMANDS:
        assert f".B {command}\n" in commands, f"COMMANDS does not document {command}"
    environment = man_section("ENVIRONMENT")
    # Every AWS_ECR_* variable the code reads, whoever added it, and the config file's variable.
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docker_credential_ecr").rglob("*.py"))
    read_by_code = set(re.findall(r"\bAWS_ECR_[A-Z_]*[A-Z]\b", source))
    for name in sorted(read_by_code | set(DOCUMENTED_ENV)):
        assert re.search(rf"^\.B[R]? {name}\b", environment, re.M), f"ENVIRONMENT does not document {name}"
    files = man_section("FILES")
    for name in (store.FILE_NAME, config.FILE_NAME, store.CONFIG_COPY_NAME):  # the names the code uses
        assert name in files, f"FILES does not name {name}"
    status = man_section("EXIT STATUS")
    for code in ("0", "1"):
        assert f".B {code}\n" in status


def test_man_page_renders_without_warnings() -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    proc = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z", str(MAN_PAGE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (proc.returncode, proc.stderr) == (0, "")


def test_man_l_shows_the_page(tmp_path: Path) -> None:
    man = shutil.which("man")
    if man is None:
        pytest.skip("man is not installed")
    env = {**sealed_env(tmp_path), "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"}
    proc = subprocess.run([man, "-l", str(MAN_PAGE)], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    headings = [line for line in proc.stdout.splitlines() if re.fullmatch(r"[A-Z][A-Z ]+", line)]
    assert headings[:4] == ["NAME", "SYNOPSIS", "DESCRIPTION", "ACTIONS"]
    assert "EXIT STATUS" in headings


# -- --help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("arg", ["--help", "-h", "help"])
def test_help_is_shell_friendly(arg: str, tmp_path: Path) -> None:
    """Help on stdout with exit 0 (so `| less` and `| grep` work), plain text, fits a terminal."""
    proc = run_helper([arg], sealed_env(tmp_path))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("Usage: docker-credential-ecr-login")
    assert "\x1b" not in proc.stdout
    assert proc.stdout.endswith("\n")
    long_lines = [line for line in proc.stdout.splitlines() if len(line) > 80]
    assert not long_lines, long_lines
    for name in (*PROTOCOL_ACTIONS, "version", *COMMANDS):
        assert re.search(rf"^  {name}\b", proc.stdout, re.M), f"--help does not list {name}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    proc = run_helper([command, "--help"], sealed_env(tmp_path))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert command in proc.stdout


# -- the artifact recipes --------------------------------------------------------------------------


def test_bundle_keeps_every_service_model_the_code_uses() -> None:
    """The self-contained bundle drops botocore's models but these; a client for any other would fail."""
    spec = SPEC.read_text(encoding="utf-8")
    match = re.search(r"^KEEP_SERVICES = \{(.*?)\}", spec, re.M)
    assert match, "no KEEP_SERVICES in the spec"
    kept = set(re.findall(r'"([a-z0-9-]+)"', match.group(1)))
    assert {"ecr", "ecr-public", "sts", "sso", "sso-oidc"} <= kept
    used: set[str] = set()
    for path in (ROOT / "docker_credential_ecr").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""(?:create_client|\.client)\(\s*["']([a-z0-9-]+)["']""", text))
    assert used - kept == set(), f"the bundle would lack the model of {sorted(used - kept)}: add it to KEEP_SERVICES"


@pytest.mark.parametrize("script", SCRIPTS)
def test_packaging_scripts_are_executable_bash(script: str) -> None:
    path = ROOT / "packaging" / script
    assert path.stat().st_mode & 0o111, f"{path} is not executable"
    assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_built_wheel_and_sdist_hold_what_they_should() -> None:
    """scripts/test builds dist/ before the tests; check those files (packaging/check builds its own)."""
    wheels, sdists = sorted((ROOT / "dist").glob("*.whl")), sorted((ROOT / "dist").glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        pytest.skip("no single wheel and sdist in dist/ (scripts/test builds them)")
    if __version__ not in wheels[0].name:
        pytest.skip(f"dist/ holds another version than {__version__}")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "distcheck.py"), "--version", __version__, wheels[0], sdists[0]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_smoke_harness_passes_on_the_installed_console_scripts(fake: FakeAWS) -> None:
    """packaging/smoke.py, the check every artifact must pass, against the installed wheel's scripts."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "smoke.py"),
            "--fake-url",
            fake.url,
            "--version",
            __version__,
            "--provider",
            helper_exe("ecr-credential-provider"),
            helper_exe(),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("  ok  ") == 9, proc.stdout


STUBS = {
    # Every package is missing; apt-get writes down what it is asked and stops the script at "install";
    # sudo runs its command; python3 stops the script too, should it ever get past apt-get.
    "dpkg": "exit 1",
    "apt-get": 'echo "$*" >> "$APT_LOG"; [ "$1" != install ] || exit 97',
    "sudo": 'exec "$@"',
    "python3": "exit 98",
}


def apt_installs(script: Path, tmp_path: Path) -> list[str]:
    """The Debian packages ``script`` apt-get installs on a machine that has none of them (a dry run)."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    log = tmp_path / "apt.log"
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp_path), "APT_LOG": str(log), "LANG": "C.UTF-8"}
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 97, (proc.returncode, proc.stdout, proc.stderr)
    update, install = log.read_text().splitlines()
    assert update == "update -qq"
    return [word for word in install.split()[1:] if not word.startswith("-")]


def test_readme_lists_the_debian_packages_scripts_test_installs(tmp_path: Path) -> None:
    """A new user reads in the README exactly what scripts/test will apt-get install on a fresh machine."""
    installed = apt_installs(ROOT / "scripts" / "test", tmp_path)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"`scripts/test` runs as root.*?the Debian packages `([^`]+)`", readme, re.S)
    assert found is not None, "README.md no longer says which Debian packages scripts/test installs"
    listed = found.group(1).split()
    assert sorted(listed) == sorted(installed)
    assert len(set(installed)) == len(installed)
