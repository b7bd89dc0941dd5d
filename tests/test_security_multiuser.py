"""Another user on the same machine plants files where the helper looks; the victim's token never
reaches the wrong place, and `get` still answers in time.

Every case runs in a private network + mount namespace (see :mod:`multiuser`) with two real uids:
the attacker plants configs, symlinks, FIFOs and locks with its own uid; the victim runs the
installed helper with its own. Shared directories are 0777 and not sticky, so the kernel's
``protected_symlinks``/``protected_fifos`` do not step in: what is tested is the helper's own care.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import TYPE_CHECKING

import pytest
from multiuser import ATTACKER, VICTIM, Box, Users, available

from support import ECR_HOST, NOT_FOUND

if TYPE_CHECKING:
    from collections.abc import Iterator

EVIL = "registry.evil.example"
pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    world = Box().start()
    try:
        yield world
    finally:
        world.close()


@pytest.fixture
def users(box: Box, request: pytest.FixtureRequest) -> Users:
    return box.make_users(request.node.name.replace("[", "-").replace("]", "").replace("/", "-"))


def _calls(box: Box) -> int:
    calls = box.fake_state()["calls"]
    assert isinstance(calls, dict)
    return sum(calls.values())


def _not_found(proc: object) -> None:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)  # type: ignore[attr-defined]
    assert proc.stdout.strip() == NOT_FOUND  # type: ignore[attr-defined]


def _token(proc: object) -> str:
    assert proc.returncode == 0, (proc.stdout, proc.stderr)  # type: ignore[attr-defined]
    secret: str = json.loads(proc.stdout)["Secret"]  # type: ignore[attr-defined]
    return secret


def _stderr_lines(proc: object) -> list[str]:
    return proc.stderr.splitlines()  # type: ignore[attr-defined, no-any-return]


ALIAS_CONFIG = f"""\
log_level = "debug"
log_file = "{{log}}"
[aliases]
"{EVIL}" = "{ECR_HOST}"
"""


# -- 1. the config file: only the user's own, closed to others --------------------------------------
@pytest.mark.parametrize(
    "how",
    [
        pytest.param("attacker-owned", id="owned-by-the-attacker"),
        pytest.param("victim-owned-0666", id="victims-file-writable-by-all"),
        pytest.param("symlink", id="symlink-to-the-attackers-file"),
    ],
)
def test_a_config_file_others_can_write_gives_them_nothing(box: Box, users: Users, how: str) -> None:
    """An alias planted in a config others can write must not turn their host into the victim's token."""
    config, planted = f"{users.shared}/config.toml", f"{users.attacker_home}/planted.toml"
    log = f"{users.attacker_home}/stolen.log"
    text = shlex.quote(ALIAS_CONFIG.format(log=log))
    users.as_attacker(f"chmod 0755 {users.attacker_home}; touch {log}; chmod 0666 {log}")
    if how == "attacker-owned":
        users.as_attacker(f"printf %s {text} > {config}")
    elif how == "victim-owned-0666":
        users.as_victim(f"umask 0; : > {config}; chmod 0666 {config}")
        users.as_attacker(f"printf %s {text} > {config}")
    else:
        users.as_attacker(f"printf %s {text} > {planted}; ln -s {planted} {config}")
    env = users.victim_env(DOCKER_CREDENTIAL_ECR_CONFIG=config)
    calls = _calls(box)

    proc = users.get(EVIL, env)

    _not_found(proc)
    assert _calls(box) == calls, "no token may be fetched for the attacker's host"
    [line] = _stderr_lines(proc)
    assert config in line
    assert "not used" in line
    assert box.read(log) == b"", "the attacker's log_file must not be written"
    # The victim's own registry still works, as with no config file at all (one line about the file).
    proc = users.get(ECR_HOST, env)
    assert _token(proc)
    assert [line] == _stderr_lines(proc)


def test_a_fifo_at_the_config_path_is_refused_without_a_hang(box: Box, users: Users) -> None:
    config = f"{users.shared}/config.toml"
    users.as_attacker(f"mkfifo -m 0666 {config}")
    proc = users.get(ECR_HOST, users.victim_env(DOCKER_CREDENTIAL_ECR_CONFIG=config))
    assert _token(proc)
    [line] = _stderr_lines(proc)
    assert f"config file {config} is not a regular file" in line


def test_the_default_config_path_in_a_shared_config_home(box: Box, users: Users) -> None:
    """XDG_CONFIG_HOME pointing at a shared directory: the attacker's file there is not the victim's."""
    log = f"{users.attacker_home}/stolen.log"
    users.as_attacker(
        f"chmod 0755 {users.attacker_home}; touch {log}; chmod 0666 {log}\n"
        f"mkdir -p {users.shared}/docker-credential-ecr\n"
        f"printf %s {shlex.quote(ALIAS_CONFIG.format(log=log))} > {users.shared}/docker-credential-ecr/config.toml"
    )
    proc = users.get(EVIL, users.victim_env(XDG_CONFIG_HOME=users.shared))
    _not_found(proc)
    assert len(_stderr_lines(proc)) == 1
    assert box.read(log) == b""


def test_a_config_file_of_root_is_trusted(box: Box, users: Users) -> None:
    """As ssh: root's files are trusted (a config the machine's administrator manages)."""
    config = f"{users.root}/managed.toml"
    box.sh(f'printf \'[aliases]\\n"mirror.example.com" = "{ECR_HOST}"\\n\' > {config}; chmod 0644 {config}')
    proc = users.get("mirror.example.com", users.victim_env(DOCKER_CREDENTIAL_ECR_CONFIG=config))
    assert _token(proc)
    assert proc.stderr == ""


# -- 3. the fallback helper: never from the current directory ------------------------------------------
def test_a_fallback_planted_in_the_current_directory_never_runs(box: Box, users: Users) -> None:
    """The victim works in a shared directory with "." on PATH; the attacker's helper there never runs."""
    loot = f"{users.attacker_home}/loot"
    users.as_attacker(
        f"chmod 0755 {users.attacker_home}; touch {loot}; chmod 0666 {loot}\n"
        f"printf '#!/bin/sh\\nenv >> {loot}\\necho stolen\\n' > {users.shared}/docker-credential-desktop\n"
        f"chmod 0755 {users.shared}/docker-credential-desktop"
    )
    config = f"{users.victim_home}/config.toml"
    users.as_victim(f"umask 077; printf 'fallback = \"desktop\"\\n' > {config}")
    env = users.victim_env(DOCKER_CREDENTIAL_ECR_CONFIG=config)
    env["PATH"] = f".:{env['PATH']}"
    proc = users.get("ghcr.io", env, cwd=users.shared)
    _not_found(proc)
    [line] = _stderr_lines(proc)
    assert "relative PATH entry '.'" in line
    assert box.read(loot) == b"", "the planted helper ran with the victim's environment"
    assert _token(users.get(ECR_HOST, env, cwd=users.shared))


# -- 4. the log file: never through a link, never into a FIFO, never in a directory others can write --
def _log_config(users: Users, log: str) -> dict[str, str]:
    config = f"{users.victim_home}/config.toml"
    users.as_victim(f'umask 077; printf \'log_level = "debug"\\nlog_file = "{log}"\\n\' > {config}')
    return users.victim_env(DOCKER_CREDENTIAL_ECR_CONFIG=config)


def _shared_dir_line(users: Users) -> str:
    return f"docker-credential-ecr-login: log directory {users.shared} is writable by other users: not logging"


def test_a_symlink_at_the_log_path_is_not_written_through(box: Box, users: Users) -> None:
    """The attacker links the victim's log path to a file of the victim's: it is neither appended to nor chmodded."""
    precious = f"{users.victim_home}/notes.txt"
    users.as_victim(f"chmod 0755 {users.victim_home}; printf 'mine\\n' > {precious}; chmod 0644 {precious}")
    log = f"{users.shared}/ecr.log"
    users.as_attacker(f"ln -s {precious} {log}")
    proc = users.get(ECR_HOST, _log_config(users, log))
    assert _token(proc)
    # Refused for the shared directory before the link is even looked at: one line, and get goes on.
    assert _stderr_lines(proc) == [_shared_dir_line(users)]
    assert box.read(precious) == b"mine\n"
    assert box.sh(f"stat -c %a {precious}").strip() == "644"


@pytest.mark.parametrize("reader", [False, True], ids=["nobody-reading", "attacker-reading"])
def test_a_fifo_at_the_log_path_neither_hangs_get_nor_feeds_the_attacker(box: Box, users: Users, reader: bool) -> None:
    log = f"{users.shared}/ecr.log"
    users.as_attacker(f"mkfifo -m 0666 {log}")
    listener = None
    if reader:  # the attacker opens the FIFO for reading first, says so, then prints what arrives
        code = (
            "import os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)\n"
            "print('listening', flush=True)\n"
            "os.set_blocking(fd, True)\n"
            "while True:\n"
            "    data = os.read(fd, 65536)\n"
            "    if data: sys.stdout.write(data.hex() + '\\n'); sys.stdout.flush()\n"
        )
        listener = box.spawn([sys.executable, "-c", code, log], uid=ATTACKER)
        assert listener.stdout is not None
        assert listener.stdout.readline() == b"listening\n"
    proc = users.get(ECR_HOST, _log_config(users, log))
    assert _token(proc)
    # Refused for the shared directory before the link is even looked at: one line, and get goes on.
    assert _stderr_lines(proc) == [_shared_dir_line(users)]
    if listener is not None:
        listener.kill()
        heard, _ = listener.communicate(timeout=10)
        assert heard == b"", "the attacker read the victim's log"


def test_a_log_directory_others_can_write_is_refused(box: Box, users: Users) -> None:
    """A log file in a directory anyone can write: the attacker could swap it at any moment."""
    log = f"{users.shared}/ecr.log"
    proc = users.get(ECR_HOST, _log_config(users, log))
    assert _token(proc)
    assert _stderr_lines(proc) == [_shared_dir_line(users)]
    assert box.read(log) is None


def test_a_log_file_of_the_attacker_is_refused(box: Box, users: Users) -> None:
    """The attacker pre-creates the log (0666) in a directory the victim shares with them (group-writable)."""
    logs = f"{users.root}/logs"
    box.sh(f"mkdir -m 0755 {logs}; chown {VICTIM}:{VICTIM} {logs}")
    log = f"{logs}/ecr.log"
    box.sh(f"touch {log}; chown {ATTACKER}:{ATTACKER} {log}; chmod 0666 {log}")
    proc = users.get(ECR_HOST, _log_config(users, log))
    assert _token(proc)
    assert _stderr_lines(proc) == [
        f"docker-credential-ecr-login: log file {log} belongs to another user (uid {ATTACKER}): not logging"
    ]
    assert box.read(log) == b""


# -- 2. instance credentials belong to the host: two hosts sharing a home directory ------------------
def test_two_hosts_sharing_a_home_directory_get_their_own_tokens(box: Box, users: Users) -> None:
    """EC2 instance credentials, HOME (and the cache in it) on a shared file system: one token per host.

    Each "host" is a mount + UTS namespace with its own /etc/machine-id and host name.
    """
    env = users.victim_env(AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=box.fake_url + "/")
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    script = (
        'set -e; if [ -e /etc/machine-id ]; then printf "%s\\n" "$1" > "$2"; mount --bind "$2" /etc/machine-id; fi\n'
        f'hostname "$1"; shift 2; exec setpriv --reuid={VICTIM} --regid={VICTIM} --clear-groups -- "$@"'
    )

    def get_on(host: str) -> str:
        id_file = f"{users.root}/{host}.machine-id"
        argv = ["unshare", "--mount", "--uts", "--", "/bin/sh", "-c", script, "host", host, id_file, box.exe, "get"]
        proc = box.run(argv, env=env, stdin=ECR_HOST, timeout=45)
        return _token(proc)

    one = get_on("host-one")
    calls = _calls(box)
    two = get_on("host-two")
    assert _calls(box) > calls, "the second host must fetch with its own instance credentials"
    assert one != two
    calls = _calls(box)
    assert get_on("host-one") == one  # each host still hits its own entry
    assert _calls(box) == calls
