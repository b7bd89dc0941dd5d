"""Check what the built wheel and sdist hold (beyond ``twine check``).

Usage: ``python packaging/distcheck.py --version V WHEEL SDIST``; exit 1 with one line per problem.

The wheel: metadata version V, both console scripts, the package's modules (every command too) and
``py.typed``, the man pages as data files (``share/man/man1``), no tests or build debris. The sdist:
everything needed to rebuild the wheel and run the tests and these checks (source, tests, docs with
the man page source, packaging, README, LICENSE, CHANGELOG).
"""

from __future__ import annotations

import argparse
import configparser
import email.parser
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAN_PAGES = ("docker-credential-ecr-login.1", "ecr-credential-provider.1")
# The two commands, as launchers in the wheel's .data/scripts (not console-script entry points):
# name -> the function they call.
SCRIPTS = {
    "docker-credential-ecr-login": "docker_credential_ecr.cli:main",
    "ecr-credential-provider": "docker_credential_ecr.cli:kubelet_main",
}


def package_modules() -> set[str]:
    """The checkout's package files that the wheel must carry (modules, commands, py.typed)."""
    package = ROOT / "docker_credential_ecr"
    files = {p.relative_to(ROOT).as_posix() for p in package.rglob("*.py")}
    return files | {"docker_credential_ecr/py.typed"}


def check_wheel(path: Path, version: str) -> list[str]:
    problems: list[str] = []
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        dist_info = f"docker_credential_ecr-{version}.dist-info"
        data = f"docker_credential_ecr-{version}.data/data"
        if f"{dist_info}/METADATA" not in names:
            return [f"wheel: no {dist_info}/METADATA (is the version {version}?)"]
        metadata = email.parser.Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        if metadata["Version"] != version:
            problems.append(f"wheel: METADATA Version {metadata['Version']} != {version}")
        description = metadata.get_payload()
        if not isinstance(description, str) or not description.strip():
            problems.append("wheel: METADATA has no long description (README)")
        problems += check_launchers(wheel, dist_info, f"docker_credential_ecr-{version}.data/scripts")
        for name in MAN_PAGES:
            if f"{data}/share/man/man1/{name}" not in names:
                problems.append(f"wheel: no man page {data}/share/man/man1/{name}")
        problems += [f"wheel: missing {name}" for name in sorted(package_modules() - names)]
        junk = [n for n in names if n.startswith("tests/") or "__pycache__" in n or n.endswith(".pyc")]
        problems += [f"wheel: should not hold {name}" for name in sorted(junk)]
    return problems


def check_launchers(wheel: zipfile.ZipFile, dist_info: str, scripts_dir: str) -> list[str]:
    """Both commands are launchers in .data/scripts: "#!python" (rewritten by installers), executable,
    calling their function without importing re; no console-script entry point shadows them."""
    problems: list[str] = []
    if f"{dist_info}/entry_points.txt" in wheel.namelist():
        entry_points = configparser.ConfigParser()
        entry_points.read_string(wheel.read(f"{dist_info}/entry_points.txt").decode())
        if entry_points.has_section("console_scripts"):
            problems.append(f"wheel: console scripts {dict(entry_points['console_scripts'])} (pip's shim imports re)")
    for name, target in SCRIPTS.items():
        path = f"{scripts_dir}/{name}"
        if path not in wheel.namelist():
            problems.append(f"wheel: no launcher {path}")
            continue
        text = wheel.read(path).decode()
        module, function = target.split(":")
        code = [line for line in text.splitlines()[1:] if line and not line.startswith("#")]
        if not text.startswith("#!python\n"):
            problems.append(f"wheel: {path} does not start with #!python (installers rewrite only that)")
        # cli.finish, not sys.exit: after a protocol action the process ends without the interpreter's teardown
        if code != [f"from {module} import finish, {function}", f"finish({function}())"]:
            problems.append(f"wheel: {path} is not the launcher of {target}: {code}")
        if not (wheel.getinfo(path).external_attr >> 16) & 0o111:
            problems.append(f"wheel: {path} is not executable")
    return problems


def check_sdist(path: Path, version: str) -> list[str]:
    top = f"docker_credential_ecr-{version}"
    with tarfile.open(path) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
        if not sdist.getnames() or not all(n == top or n.startswith(top + "/") for n in sdist.getnames()):
            return [f"sdist: not everything is under {top}/"]
    needed = {
        "pyproject.toml",
        "PKG-INFO",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "docs/docker-credential-ecr-login.1.in",
        "docs/genman.py",
        *(f"docs/{name}" for name in MAN_PAGES),
        "packaging/check",
        "packaging/smoke.py",
        "packaging/selfcontain.py",
        "packaging/launcher/launcher.c",
        *(f"packaging/wheel-scripts/{name}" for name in SCRIPTS),
        "packaging/pyinstaller/docker-credential-ecr-login.spec",
        "tests/fakeecr.py",
        "tests/conftest.py",
        *package_modules(),
    }
    problems = [f"sdist: missing {name}" for name in sorted(needed - names)]
    junk = [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith((".venv", "build/", "dist/"))]
    problems += [f"sdist: should not hold {name}" for name in sorted(junk)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check the wheel's and the sdist's contents")
    parser.add_argument("--version", required=True)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("sdist", type=Path)
    args = parser.parse_args(argv)
    problems = check_wheel(args.wheel, args.version) + check_sdist(args.sdist, args.version)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{args.wheel.name} and {args.sdist.name}: contents as expected")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
