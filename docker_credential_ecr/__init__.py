"""docker-credential-ecr: a Docker credential helper for Amazon ECR.

Importing the package costs nothing beyond its version string: the hot path (a cache hit) imports only
the modules it needs.
"""

from __future__ import annotations

from docker_credential_ecr._version import __version__

__all__ = ["__version__"]
