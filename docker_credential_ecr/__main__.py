"""`python -m docker_credential_ecr` runs the same command as `docker-credential-ecr-login`."""

from __future__ import annotations

from docker_credential_ecr.cli import finish, main

finish(main())
