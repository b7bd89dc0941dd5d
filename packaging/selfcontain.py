"""Make the PyInstaller one-dir bundle self-contained: it needs nothing from the host but the kernel.

Usage::

    python packaging/selfcontain.py make BUNDLE_DIR OUT_DIR     # build OUT_DIR from the bundle
    python packaging/selfcontain.py check OUT_DIR               # refuse anything taken from the host

``make`` lays out OUT_DIR as::

    docker-credential-ecr-login      the launcher: a static executable (musl-gcc -static), no libc needed
    ecr-credential-provider          -> docker-credential-ecr-login (the kubelet mode)
    lib/docker-credential-ecr-login  PyInstaller's bootloader and its archive
    lib/LOADER                       the build machine's dynamic loader (ld-linux-*.so.*), patched
    lib/_internal/                   PyInstaller's contents, plus the C library and every library they need

The launcher runs ``lib/LOADER --inhibit-cache --library-path lib/_internal lib/docker-credential-ecr-login``
(see launcher/launcher.c). The loader is patched so that its built-in search path (``/lib/ARCH``,
``/usr/lib/ARCH``, ``/lib``, ``/usr/lib``), ``/etc/ld.so.cache`` and ``/etc/ld.so.preload`` name
directories and files that do not exist: a library missing from ``lib/_internal`` (an NSS module named
in the host's ``/etc/nsswitch.conf``, say) is not found, instead of being taken from the host and
mixed with our C library. RPATH/RUNPATH entries outside the bundle (pyenv's ``/root/.pyenv/...``) are
removed with patchelf.

``check`` fails, naming the file, if any ELF file needs a library that is not in ``lib/_internal``,
carries an RPATH/RUNPATH that is not ``$ORIGIN``-relative, if the launcher is not static, or if the
loader still names a host directory or file. It prints the C library's version on success.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PROGRAM = "docker-credential-ecr-login"
PROVIDER = "ecr-credential-provider"
HERE = Path(__file__).resolve().parent
# Loaded with dlopen by name, so no DT_NEEDED shows them: glibc asks for libgcc_s when a thread is
# cancelled or unwinds (pthread_exit, backtrace).
DLOPENED = ("libgcc_s.so.1",)


class Refused(Exception):
    pass


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def elves(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if is_elf(p))


def dynamic(path: Path) -> tuple[list[str], list[str]]:
    """The DT_NEEDED names and the RPATH/RUNPATH entries of one ELF file."""
    text = run("readelf", "-d", "-W", str(path))
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", text)
    paths = [
        p
        for group in re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*?)\]", text)
        for p in group.split(":")
    ]
    return needed, paths


def interpreter(path: Path) -> str | None:
    match = re.search(r"\[Requesting program interpreter: (.*?)\]", run("readelf", "-l", "-W", str(path)))
    return match.group(1) if match else None


def host_library(name: str, loader: str) -> Path:
    """Where the build machine's loader finds ``name`` (its own search path and cache)."""
    for line in run("/sbin/ldconfig", "-p").splitlines():
        match = re.match(rf"\s+{re.escape(name)} \((.*?)\) => (\S+)", line)
        if match and ("x86-64" in match.group(1)) == ("x86-64" in loader or "x86_64" in loader):
            return Path(match.group(2)).resolve()
    raise Refused(f"{name} is needed but the build machine has no copy of it")


def loader_search_strings(loader: Path) -> list[bytes]:
    """The directories and files a glibc loader reads on its own: its system search path, cache, preload."""
    help_text = run(str(loader), "--help")
    dirs = re.findall(r"^\s+(/\S+) \(system search path\)", help_text, re.M)
    if not dirs:
        raise Refused(f"{loader} --help names no system search path: not a glibc loader?")
    return [d.encode() + b"/" for d in dirs] + [b"/etc/ld.so.cache", b"/etc/ld.so.preload"]


def patch_loader(loader: Path) -> None:
    """Make every host path the loader knows point nowhere (same length, so nothing else moves)."""
    data = bytearray(loader.read_bytes())
    for needle in loader_search_strings(loader):
        # A NUL-terminated occurrence; the replacement keeps the length: "/" + "_" * n (+ "/").
        tail = b"/" if needle.endswith(b"/") else b""
        blank = b"/" + b"_" * (len(needle) - 1 - len(tail)) + tail
        pattern = b"\0" + needle + b"\0"
        if pattern not in data:
            raise Refused(f"{loader}: {needle.decode()} not found as a string")
        data[:] = data.replace(pattern, b"\0" + blank + b"\0")
    loader.write_bytes(bytes(data))


def make(bundle: Path, out: Path) -> None:
    exe = bundle / PROGRAM
    interp = interpreter(exe)
    if interp is None:
        raise Refused(f"{exe} has no program interpreter")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lib = out / "lib"
    shutil.copytree(bundle, lib, symlinks=True)
    internal = lib / "_internal"
    loader = lib / Path(interp).name
    shutil.copy2(Path(interp).resolve(), loader)

    # The C library and everything it, or anything else in the bundle, needs (transitively).
    todo = [*DLOPENED]
    for path in elves(lib):
        needed, paths = dynamic(path)
        todo += needed
        if any(not p.startswith("$ORIGIN") for p in paths):
            run("patchelf", "--remove-rpath", str(path))
    while todo:
        name = todo.pop()
        if name == loader.name or (internal / name).exists():
            continue
        source = host_library(name, interp)
        shutil.copy2(source, internal / name)
        todo += dynamic(internal / name)[0]
    patch_loader(loader)

    cc = os.environ.get("MUSL_GCC", "musl-gcc")
    run(cc, "-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", f'-DLOADER="{loader.name}"',
        "-o", str(out / PROGRAM), str(HERE / "launcher" / "launcher.c"))  # fmt: skip
    os.symlink(PROGRAM, out / PROVIDER)


def check(out: Path) -> str:
    lib, internal = out / "lib", out / "lib" / "_internal"
    launcher = out / PROGRAM
    problems: list[str] = []
    if interpreter(launcher) is not None or dynamic(launcher)[0]:
        problems.append(f"{PROGRAM}: the launcher is not a static executable")
    loaders = sorted(lib.glob("ld-*.so*"))
    if len(loaders) != 1:
        problems.append(f"lib/: expected one dynamic loader, found {[p.name for p in loaders]}")
    else:
        data = loaders[0].read_bytes()
        for needle in (b"/etc/ld.so.cache", b"/etc/ld.so.preload"):
            if b"\0" + needle + b"\0" in data:
                problems.append(f"lib/{loaders[0].name} still reads the host's {needle.decode()}")
        help_text = run(str(loaders[0]), "--help")
        system = re.findall(r"^\s+(/\S+) \(system search path\)", help_text, re.M)
        problems += [f"lib/{loaders[0].name} searches the host's {d}" for d in system if not re.fullmatch(r"/_+/?", d)]
    bundled = {p.name for p in internal.iterdir()} | {p.name for p in loaders}
    for path in elves(lib):
        needed, paths = dynamic(path)
        where = path.relative_to(out)
        problems += [f"{where} needs {name}, which is not in lib/_internal" for name in needed if name not in bundled]
        problems += [f"{where} has RPATH/RUNPATH {p}, outside the bundle" for p in paths if not p.startswith("$ORIGIN")]
    for name in DLOPENED:
        if name not in bundled:
            problems.append(f"lib/_internal lacks {name} (dlopened by the C library)")
    if problems:
        raise Refused("\n".join(problems))
    libc = next(internal.glob("libc.so*"), None)
    found = re.search(rb"GNU C Library[^\n]*?version (\d+\.\d+)", libc.read_bytes()) if libc else None
    version = found.group(1).decode() if found else "?"
    return f"{len(elves(out))} ELF files, all from the bundle; C library: glibc {version}"


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 3 and argv[0] == "make":
            make(Path(argv[1]).resolve(), Path(argv[2]).resolve())
            print(check(Path(argv[2]).resolve()))
        elif len(argv) == 2 and argv[0] == "check":
            print(check(Path(argv[1]).resolve()))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Refused as exc:
        print(f"selfcontain: refused:\n{exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"selfcontain: {' '.join(exc.cmd)} failed: {exc.stderr.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
