"""The console script: ``docker-credential-ecr-login <action>``.

The one place that touches argv, the real environment, stdin, stdout and the exit status, and the
one place every exception becomes an answer: protocol errors as their fixed text on stdout with exit
1, a cause a person can act on as one line on stderr, never a traceback on stdout.
"""

from __future__ import annotations

import gc
import io
import os
import sys

from docker_credential_ecr import protocol
from docker_credential_ecr.errors import NOT_FOUND_MESSAGE, HelperError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, NoReturn, TextIO

    from docker_credential_ecr.helper import Helper

PROGRAM = "docker-credential-ecr-login"
# Set once a protocol action has answered: the process has nothing left to do (see finish()).
_answered = False
PROTOCOL_ACTIONS = ("get", "list", "store", "erase")
# Extra commands: modules in docker_credential_ecr.commands, imported only when asked for.
COMMANDS = {
    "configure": "add credHelpers entries for ECR registries to the Docker config",
    "doctor": "explain what the helper sees for a registry, and test it",
    "cache": "show or clear the token cache (never the tokens)",
    "kubelet": "serve the kubelet image credential provider protocol",
    "login": "ask once for a profile's MFA code, keep the session for get",
    "logout": "forget a profile's MFA session",
}

USAGE = f"""\
Usage: {PROGRAM} <action>

Docker credential helper for Amazon ECR and ECR Public: a drop-in for the Go
helper of the same name. Docker, skopeo, podman and BuildKit call it through
"credHelpers" or "credsStore" in ~/.docker/config.json; the registry host is
read on stdin.

Protocol actions:
  get        print the credentials for the registry named on stdin
  list       print the registries with cached tokens (no network)
  store      accepted only with AWS_ECR_IGNORE_CREDS_STORAGE=true
             (ECR tokens are fetched, not stored)
  erase      likewise
  version    print the version (also -v, --version)

Commands:
{chr(10).join(f"  {name:<10} {text}" for name, text in COMMANDS.items())}

Run '{PROGRAM} <command> --help' for a command's options,
'man {PROGRAM}' for everything else.

Environment: AWS_ECR_CACHE_DIR, AWS_ECR_DISABLE_CACHE,
AWS_ECR_IGNORE_CREDS_STORAGE, AWS_ECR_TIMEOUT, AWS_ECR_LOG_LEVEL,
AWS_ECR_LOG_FILE, DOCKER_CREDENTIAL_ECR_CONFIG, and the AWS SDK's own
(AWS_PROFILE, AWS_REGION, ...).
"""


def version_line() -> str:
    from docker_credential_ecr._version import __version__  # not on a hit: only `version` prints it

    return f"{PROGRAM} (docker-credential-ecr) {__version__}"


def make_helper() -> Helper:
    from docker_credential_ecr.helper import Helper
    from docker_credential_ecr.settings import Settings

    helper = Helper(Settings.from_environ(os.environ))
    helper.start_logging()
    return helper


def run_action(action: str, stdin: BinaryIO, stdout: TextIO, helper_factory: object = make_helper) -> int:
    """One protocol action against streams; returns the exit status (0 or 1)."""
    try:
        helper: Helper = helper_factory()  # type: ignore[operator]
        fallback = helper.fallback_name()  # config `fallback`: hosts that are not ECR go to that helper
        if fallback and action != "list":
            from docker_credential_ecr import fallback as fallbacks

            request = stdin.read(protocol.MAX_REQUEST_BYTES + 1)
            status = fallbacks.relay(helper, fallback, action, request, stdout)
            if status is not None:
                return status
            stdin = io.BytesIO(request)  # ours after all: read it again below
        if action == "get":
            protocol.write_credentials(stdout, helper.get(protocol.read_server_url(stdin)))
        elif action == "list":
            # Never read stdin here: docker-py runs `list` with stdin on the user's terminal.
            servers = helper.list()
            if fallback:
                from docker_credential_ecr import fallback as fallbacks

                servers = fallbacks.merged_list(helper, fallback, servers)
            protocol.write_list(stdout, servers)
        elif action == "store":
            helper.store(protocol.parse_credentials(protocol.read_request(stdin)))
        else:
            helper.erase(protocol.read_server_url(stdin))
    except HelperError as exc:
        protocol.write_error(stdout, exc.message)
        return 1
    except Exception as exc:  # a bug must still answer in protocol, not crash the client
        _stderr(f"internal error: {type(exc).__name__}: {exc}")
        if os.environ.get("AWS_ECR_LOG_LEVEL", "").lower() == "debug":
            import traceback

            traceback.print_exc(file=sys.stderr)
        protocol.write_error(stdout, NOT_FOUND_MESSAGE)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The client stopped reading; silence the interpreter's own complaint at exit.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaced for the rest of the process
        except OSError:
            pass
        return 1


def _dispatch(args: list[str]) -> int:
    if not args:
        sys.stderr.write(USAGE)
        return 1
    action = args[0]
    if action in PROTOCOL_ACTIONS and len(args) == 1:
        # One request, then the process exits: the cyclic garbage collector only costs time here. On
        # a miss botocore allocates a few hundred thousand objects (collections run over and over as
        # it imports) and leaves about 28,000 in reference cycles, which the interpreter's final
        # collection frees one by one: together about a fifth of a cold `get` (measured on 2 cores,
        # benchmarks/README.md). Frozen, they are the OS's to reclaim at exit; nothing in them needs
        # finalising (the lock is released and the cache written by then). Peak RSS is unchanged.
        global _answered  # noqa: PLW0603 - one request per process: see finish()
        gc.disable()
        status = run_action(action, sys.stdin.buffer if sys.stdin else _empty_stdin(), sys.stdout)
        sys.stdout.flush()
        gc.freeze()
        gc.enable()
        _answered = True
        return status
    if action in ("-v", "--version", "version"):
        sys.stdout.write(version_line() + "\n")
        return 0
    if action in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if action in COMMANDS:
        import importlib

        module = importlib.import_module(f"docker_credential_ecr.commands.{action}")
        return int(module.main(args[1:]))
    sys.stdout.write(f"{PROGRAM}: unknown action: {action}\n")
    return 1


def finish(status: int) -> NoReturn:
    """End the process with ``status``, as the installed commands do after :func:`main`.

    After a protocol action the answer is out and nothing is left to clean up: the interpreter's
    teardown (freeing every module and object one by one, about a fifth of a bare interpreter's run,
    more with ours loaded) only delays the client, which waits for the exit. So the standard streams
    are flushed and the process ends at once, unless something asked to run at exit (an ``atexit``
    callback: logging's, a coverage tool's, whatever ``site`` loaded) or another thread is alive:
    then the usual ``sys.exit``.
    """
    if _answered and _nothing_left_to_run():
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
                pass
        os._exit(status)
    sys.exit(status)


def _nothing_left_to_run() -> bool:
    import atexit

    ncallbacks = getattr(atexit, "_ncallbacks", None)
    if ncallbacks is None or ncallbacks() != 0:
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def kubelet_main(argv: list[str] | None = None) -> int:
    """``ecr-credential-provider``: the kubelet plugin name, same as ``docker-credential-ecr-login kubelet``."""
    args = sys.argv[1:] if argv is None else argv
    return main(["kubelet", *args])


def _stderr(message: str) -> None:
    try:
        sys.stderr.write(f"{PROGRAM}: {message}\n")
    except (OSError, ValueError):
        pass


def _empty_stdin() -> BinaryIO:
    return io.BytesIO()
