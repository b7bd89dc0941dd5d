"""The cache-hit path imports nothing heavy, so its start-up budget cannot silently regress.

Docker runs the helper for every pull and push; on a cache hit the process should cost little more
than the interpreter itself (DESIGN.md, performance budget). Wall time is for ``benchmarks/run.py``
on a quiet machine; what a test can hold, exactly and on any machine, is *what gets imported*. Each
module below was measured with ``python -X importtime`` on a 2-core machine (CPython 3.11; a bare
venv interpreter starts in about 11 ms) and costs enough to matter on a hit:

==========================  ===========================================================
boto3, botocore, ...        about 250 ms to import, 90 ms more for a client (the miss only)
filelock                    about 30 ms (writes only)
platformdirs                about 1.4x an interpreter start (the hit computes its one path)
json                        0.7x (``re`` + ``enum`` for its number regex; ``_json`` is enough)
re, enum                    0.5x (registry.parse is plain string work)
hashlib                     0.3x (loads OpenSSL; ``_blake2`` is enough)
logging                     0.8x (the log module imports it only when logging is turned on)
tomllib, typing, datetime   0.8x together (the config file's parsed form is cached)
dataclasses, pathlib        0.5x and 0.3x
configparser                the AWS files are read by principal.parse_ini
signal, threading           the deadline of a miss
==========================  ===========================================================

The check runs ``cli.main`` in a fresh interpreter of the installed package and compares its
``sys.modules`` at exit with a bare interpreter's (whatever ``site`` imports is not ours to count).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakeecr import FakeAWS
from support import ECR_HOST, PUBLIC_HOST, get_ok, helper_exe

# Imported on a cache hit, these are a regression. Submodules count too (botocore.session...).
HEAVY = (
    "boto3",
    "botocore",
    "s3transfer",
    "urllib3",
    "jmespath",
    "dateutil",
    "filelock",
    "platformdirs",
    "json",
    "re",
    "enum",
    "hashlib",
    "_hashlib",
    "logging",
    "tomllib",
    "tomli",
    "typing",
    "datetime",
    "dataclasses",
    "pathlib",
    "configparser",
    "importlib.metadata",
    "importlib.util",
    "contextlib",
    "inspect",
    "argparse",
    "subprocess",
    "threading",
    "signal",
    "socket",
    "ssl",
    "http",
    "urllib",
    "email",
    "tempfile",
    "shutil",
    "docker_credential_ecr.aws",
    "docker_credential_ecr.deadline",
    # the halves of our own modules that only a miss, a write or logging needs
    "docker_credential_ecr.refresh",
    "docker_credential_ecr.storewrite",
    "docker_credential_ecr.logfile",
    "docker_credential_ecr.mfa",
    "docker_credential_ecr.configfile",
    "docker_credential_ecr._version",
)
# The credential sources only some requests use: a plain hit (no kubelet request, no CI identity) loads none.
OTHER_SOURCES = ("docker_credential_ecr.kubelet", "docker_credential_ecr.webidentity", "docker_credential_ecr.oidc")

# Run the helper as its console script does, then list every module the process imported.
PROBE = """\
import sys
from docker_credential_ecr.cli import main
status = main(sys.argv[2:])
sys.stdout.flush()
with open(sys.argv[1], "w") as f:
    f.write("\\n".join(sorted(sys.modules)))
raise SystemExit(status)
"""


def modules_after(argv: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> tuple[set[str], str]:
    """(modules imported by ``docker-credential-ecr-login <argv>``, its stdout); it must exit 0."""
    listing = cwd / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(listing), *argv],
        input=stdin.encode(),
        capture_output=True,
        env=env,
        cwd=cwd,  # not the checkout: the installed package, as docker would run it
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stderr == b""
    return set(listing.read_text().split()), proc.stdout.decode()


def bare_modules(env: dict[str, str], cwd: Path) -> set[str]:
    listing = cwd / "bare.txt"
    code = f"import sys; open({str(listing)!r}, 'w').write('\\n'.join(sorted(sys.modules)))"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, timeout=60, check=True)
    return set(listing.read_text().split())


def heavy(modules: set[str], baseline: set[str]) -> list[str]:
    """The HEAVY modules (or their submodules) that were imported beyond the bare interpreter's."""
    extra = modules - baseline
    return sorted(m for m in extra if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.mark.parametrize("host", [ECR_HOST, PUBLIC_HOST])
def test_cache_hit_imports_nothing_heavy(env: dict[str, str], fake: FakeAWS, workdir: Path, host: str) -> None:
    warm = get_ok(env, host)
    calls = fake.calls("*")
    modules, stdout = modules_after(["get"], env, workdir, host)
    assert json.loads(stdout)["Secret"] == warm["Secret"]  # answered from the cache
    assert fake.calls("*") == calls  # and without the network
    assert heavy(modules, bare_modules(env, workdir)) == []
    assert not modules & set(OTHER_SOURCES)


def test_cache_hit_with_a_profile_imports_nothing_heavy(
    env: dict[str, str], fake: FakeAWS, home: Path, workdir: Path
) -> None:
    """The AWS config and credentials files are read for the principal, without configparser."""
    aws = home / ".aws"
    aws.mkdir(exist_ok=True)
    (aws / "credentials").write_text(
        f"[bench]\naws_access_key_id = {env['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {env['AWS_SECRET_ACCESS_KEY']}\n"
    )
    (aws / "config").write_text("[profile bench]\nregion = us-east-1\n[default]\nregion = eu-west-1\n")
    env = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env["AWS_PROFILE"] = "bench"
    warm = get_ok(env)
    modules, stdout = modules_after(["get"], env, workdir, ECR_HOST)
    assert json.loads(stdout)["Secret"] == warm["Secret"]
    assert heavy(modules, bare_modules(env, workdir)) == []


def test_cache_hit_with_a_config_file_imports_no_toml_parser(
    env: dict[str, str], fake: FakeAWS, tmp_path: Path, workdir: Path
) -> None:
    """The config file's parsed copy is read on a hit: no tomllib (nor typing, datetime) then."""
    config = tmp_path / "config.toml"
    config.write_text(f'[aliases]\n"registry.example.com" = "{ECR_HOST}"\n')
    old = time.time() - 60  # a file changed in the last two seconds is parsed every time (config.py)
    os.utime(config, (old, old))
    env = {**env, "DOCKER_CREDENTIAL_ECR_CONFIG": str(config)}
    warm = get_ok(env, "registry.example.com")
    modules, stdout = modules_after(["get"], env, workdir, "registry.example.com")
    assert json.loads(stdout)["Secret"] == warm["Secret"]
    assert heavy(modules, bare_modules(env, workdir)) == []


def test_list_imports_nothing_heavy(env: dict[str, str], fake: FakeAWS, workdir: Path) -> None:
    get_ok(env)
    calls = fake.calls("*")
    modules, stdout = modules_after(["list"], env, workdir)
    assert json.loads(stdout) == {f"https://{ECR_HOST}": "AWS"}
    assert fake.calls("*") == calls
    assert heavy(modules, bare_modules(env, workdir)) == []


def imported_by(argv: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> tuple[set[str], str]:
    """(every module that ``argv`` imported, by ``PYTHONPROFILEIMPORTTIME``, its stdout); it must exit 0.

    For a program run as a user runs it (through its #! line), where no probe can be slipped in.
    """
    proc = subprocess.run(
        argv,
        input=stdin.encode(),
        capture_output=True,
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    lines = proc.stderr.decode().splitlines()
    assert lines, "no import listing on stderr"
    assert all(line.startswith("import time:") for line in lines), lines  # and nothing else said
    # "import time: <self us> | <cumulative us> | <indent><module>", after a header line
    modules = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}
    return modules, proc.stdout.decode()


@pytest.mark.parametrize("host", [ECR_HOST, PUBLIC_HOST])
def test_installed_launcher_hit_imports_nothing_heavy(
    env: dict[str, str], fake: FakeAWS, workdir: Path, host: str
) -> None:
    """The command as the installer put it in the bin dir: our launcher, not a console-script shim.

    Its #! line names this environment's interpreter (the wheel's "#!python", rewritten), and a hit
    through it imports nothing heavy, re included (pip's console-script template imports re).
    """
    exe = helper_exe()
    first_line = Path(exe).read_bytes().split(b"\n", 1)[0].decode()
    assert first_line.startswith("#!/"), first_line
    assert os.path.samefile(first_line[2:].strip(), sys.executable), (first_line, sys.executable)
    warm = get_ok(env, host)
    calls = fake.calls("*")
    modules, stdout = imported_by([exe, "get"], env, workdir, host)
    assert json.loads(stdout)["Secret"] == warm["Secret"]
    assert fake.calls("*") == calls
    baseline, _ = imported_by([sys.executable, "-c", "pass"], env, workdir)
    assert "docker_credential_ecr.cli" in modules
    assert heavy(modules, baseline) == []


def test_the_import_listing_sees_what_a_console_script_shim_imports(
    env: dict[str, str], fake: FakeAWS, workdir: Path
) -> None:
    """The launcher check can fail: pip's console-script template (written here) imports re."""
    shim = workdir / "shim"
    shim.write_text(
        f"#!{sys.executable}\nimport re\nimport sys\nfrom docker_credential_ecr.cli import main\n"
        'if __name__ == "__main__":\n'
        '    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])\n'
        "    sys.exit(main())\n"
    )
    shim.chmod(0o755)
    get_ok(env)
    modules, _ = imported_by([str(shim), "get"], env, workdir, ECR_HOST)
    baseline, _ = imported_by([sys.executable, "-c", "pass"], env, workdir)
    assert "re" in heavy(modules, baseline)


def test_the_probe_sees_a_miss_import_botocore(env: dict[str, str], fake: FakeAWS, workdir: Path) -> None:
    """The check can fail: a miss does import botocore and filelock, and the miss halves of our modules."""
    modules, _ = modules_after(["get"], env, workdir, ECR_HOST)
    assert fake.calls() == 1
    found = heavy(modules, bare_modules(env, workdir))
    assert "botocore" in found
    assert "filelock" in found
    assert {"docker_credential_ecr.refresh", "docker_credential_ecr.storewrite"} <= set(found)


def test_the_probe_sees_logging_and_mfa_imported_when_they_are_used(
    env: dict[str, str], fake: FakeAWS, home: Path, workdir: Path, tmp_path: Path
) -> None:
    """A hit with logging on loads logfile; one whose profile needs an MFA code loads mfa (the
    pre-check in credentials lets every other hit skip it)."""
    aws = home / ".aws"
    aws.mkdir(exist_ok=True)
    (aws / "config").write_text(
        "[profile mfa]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n"
        "mfa_serial = arn:aws:iam::123456789012:mfa/u\n[profile base]\nregion = us-east-1\n"
    )
    get_ok(env)
    logged = {**env, "AWS_ECR_LOG_LEVEL": "info", "AWS_ECR_LOG_FILE": str(tmp_path / "log" / "ecr.log")}
    modules, _ = modules_after(["get"], logged, workdir, ECR_HOST)
    found = heavy(modules, bare_modules(env, workdir))
    assert "docker_credential_ecr.logfile" in found
    assert "docker_credential_ecr.mfa" in found  # the files mention mfa_serial: the chain is read
    assert "docker_credential_ecr.refresh" not in found  # and it was a hit all the same


# cli.finish in a fresh interpreter (whose atexit has no callbacks yet), reporting which exit it took.
FINISH_PROBE = """\
import atexit, os, sys, threading
from docker_credential_ecr import cli
really_exit, really_sys_exit = os._exit, sys.exit
def fast(status):
    os.write(2, b"os._exit %d\\n" % status)
    really_exit(status)
def usual(status=None):
    os.write(2, b"sys.exit %d\\n" % status)
    really_sys_exit(status)
os._exit, sys.exit = fast, usual
status = cli.main(sys.argv[1:2])
if sys.argv[2] == "atexit":
    atexit.register(print)
elif sys.argv[2] == "thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
cli.finish(status)
"""


def finished(env: dict[str, str], cwd: Path, action: str, extra: str = "", stdin: str = "") -> tuple[str, str]:
    """(the exit cli.finish took, stdout) for ``action`` in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", FINISH_PROBE, action, extra],
        input=stdin.encode(),
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    return proc.stderr.decode().strip(), proc.stdout.decode()


def test_finish_ends_at_once_after_a_protocol_action(env: dict[str, str], fake: FakeAWS, workdir: Path) -> None:
    """After the answer, the installed commands end the process at once (cli.finish): the teardown of
    every module is about a fifth of a bare interpreter's run, and the client waits for the exit."""
    warm = get_ok(env)
    how, stdout = finished(env, workdir, "get", stdin=ECR_HOST)
    assert how == "os._exit 0"
    assert json.loads(stdout)["Secret"] == warm["Secret"]  # flushed before the exit
    how, stdout = finished(env, workdir, "get", stdin="not a registry")
    assert (how, stdout) == ("os._exit 1", "credentials not found in native keychain\n")
    how, stdout = finished(env, workdir, "list")
    assert (how, json.loads(stdout)) == ("os._exit 0", {f"https://{ECR_HOST}": "AWS"})


@pytest.mark.parametrize("extra", ["atexit", "thread"])
def test_finish_exits_as_usual_when_something_must_run_at_exit(
    env: dict[str, str], fake: FakeAWS, workdir: Path, extra: str
) -> None:
    """An atexit callback (logging's, a coverage tool's) or another thread: the usual exit."""
    get_ok(env)
    how, stdout = finished(env, workdir, "get", extra, stdin=ECR_HOST)
    assert how == "sys.exit 0"
    assert json.loads(stdout)["Username"] == "AWS"


def test_finish_exits_as_usual_after_a_command(env: dict[str, str], workdir: Path) -> None:
    how, stdout = finished(env, workdir, "version")
    assert how == "sys.exit 0"
    assert stdout.startswith("docker-credential-ecr-login (docker-credential-ecr) ")


def test_a_hit_with_logging_on_exits_as_usual_and_its_log_is_written(
    env: dict[str, str], fake: FakeAWS, tmp_path: Path, workdir: Path
) -> None:
    """logging registers its atexit: the usual exit, which flushes and closes the log."""
    get_ok(env)
    log_file = tmp_path / "logs" / "ecr.log"
    logged = {**env, "AWS_ECR_LOG_LEVEL": "info", "AWS_ECR_LOG_FILE": str(log_file)}
    how, _ = finished(logged, workdir, "get", stdin=ECR_HOST)
    assert how == "sys.exit 0"
    assert f"get {ECR_HOST}: hit" in log_file.read_text()
