"""docker-credential-ecr: a Docker credential helper for Amazon ECR.

Importing the package costs nothing: the hot path (a cache hit) imports only the modules it needs,
and not even the version (``__version__`` is read from :mod:`._version` when asked for).
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from docker_credential_ecr._version import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
