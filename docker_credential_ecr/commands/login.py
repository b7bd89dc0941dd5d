"""``docker-credential-ecr-login login|logout [--profile P]``: MFA sessions for terminal-less gets.

``login`` (on a terminal) resolves the profile's role chain, asks once for the MFA code, assumes the
MFA profile's role and keeps that session for its lifetime (see :mod:`docker_credential_ecr.mfa`);
``get`` from the docker daemon or BuildKit then needs no prompt. ``logout`` forgets the session.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from docker_credential_ecr import mfa
from docker_credential_ecr.errors import StoreError, TokenFetchError
from docker_credential_ecr.identity import selected_profile
from docker_credential_ecr.settings import Settings

PROGRAM = "docker-credential-ecr-login"
MIN_DURATION, MAX_DURATION = 900, 43200  # STS's bounds for DurationSeconds


def _duration(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"must be {MIN_DURATION} to {MAX_DURATION} seconds (STS's limits)")
    return seconds


def _parser(action: str) -> argparse.ArgumentParser:
    if action == "login":
        parser = argparse.ArgumentParser(
            prog=f"{PROGRAM} login",
            description=(
                "Ask once for the MFA code of a profile whose role needs one (mfa_serial in the AWS config), "
                "assume the role and keep the session, so that get (from docker, BuildKit: no terminal) "
                "works without a prompt until it expires. Needs a terminal."
            ),
        )
        parser.add_argument(
            "--duration",
            type=_duration,
            metavar="SECONDS",
            help="session length (900-43200; default: the profile's duration_seconds, else 1 hour); "
            "the role's maximum session duration must allow it",
        )
    else:
        parser = argparse.ArgumentParser(
            prog=f"{PROGRAM} logout", description="Forget the MFA session of a profile (see login)."
        )
    parser.add_argument("--profile", help="AWS profile (default: AWS_PROFILE, else default)")
    return parser


def _error(message: str) -> int:
    sys.stderr.write(f"{PROGRAM}: {message}\n")
    return 1


def _read_code(prompt: str) -> str:
    import getpass

    return getpass.getpass(prompt).strip()


def login(argv: list[str]) -> int:  # noqa: PLR0911 - one return per reason to stop
    args = _parser("login").parse_args(argv)
    environ = os.environ
    settings = Settings.from_environ(environ)
    chain = mfa.find_chain(environ, args.profile)
    selected = args.profile or selected_profile(environ)
    if chain is None:
        return _error(f"profile {selected!r} needs no MFA code (no mfa_serial in its role chain): nothing to log in")
    if settings.cache_dir is None:
        return _error("no cache directory to keep the session in: set AWS_ECR_CACHE_DIR or HOME")
    if not chain.mfa.source:
        return _error(f"profile {chain.mfa.name!r} has no source_profile: login needs one to assume its role")
    if not (sys.stdin and sys.stdin.isatty()):
        return _error("login needs a terminal to read the MFA code")
    region = chain.mfa.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        code = _read_code(f"MFA code for {chain.mfa.mfa_serial} (profile {chain.mfa.name}): ")
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\n")
        return _error("no MFA code given")
    if not (code.isdigit() and len(code) == 6):
        return _error("an MFA code is 6 digits")
    try:
        creds = mfa.login(chain, environ, code, args.duration, region)
        path = mfa.save(settings.cache_dir, chain, creds, time.time())
    except TokenFetchError as exc:
        return _error(str(exc))
    except StoreError as exc:
        return _error(f"the session cannot be kept: {exc}")
    hours = (creds.expires_at - time.time()) / 3600
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(creds.expires_at))
    sys.stdout.write(
        f"Logged in: profile {chain.mfa.name!r} as {chain.mfa.role_arn} until {expires} ({hours:.1f} h), "
        f"session kept in {path}\n"
    )
    return 0


def logout(argv: list[str]) -> int:
    args = _parser("logout").parse_args(argv)
    environ = os.environ
    settings = Settings.from_environ(environ)
    chain = mfa.find_chain(environ, args.profile)
    selected = args.profile or selected_profile(environ)
    if chain is None or settings.cache_dir is None:
        sys.stdout.write(f"no MFA session for profile {selected!r}\n")
        return 0
    try:
        found = mfa.forget(settings.cache_dir, chain.key, time.time())
    except StoreError as exc:
        return _error(f"cannot forget the session: {exc}")
    what = "forgot the MFA session of" if found else "no MFA session for"
    sys.stdout.write(f"{what} profile {chain.mfa.name!r}\n")
    return 0


def main(argv: list[str]) -> int:
    return login(argv)
