"""``docker-credential-ecr-login logout [--profile P]``: forget an MFA session (see :mod:`.login`)."""

from __future__ import annotations

from docker_credential_ecr.commands.login import logout


def main(argv: list[str]) -> int:
    return logout(argv)
