"""Ask a registry whether it takes a token: ``GET /v2/`` with HTTP basic auth, docker's first request.

``doctor`` uses it on the cached token. A registry can stop taking a token long before it expires
(its principal lost access, the token was revoked, the registry policy changed), and docker never
tells the helper: ``get`` keeps serving the token from the cache until half its lifetime has passed.
Standard library only; proxies from the environment as for any urllib request; no redirects, so the
credentials go to the registry named and nowhere else.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

from docker_credential_ecr import __version__


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect ends the probe with its 3xx status: the Authorization header never follows it."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def registry_url(host: str) -> str:
    return f"https://{host}/v2/"


def probe(host: str, username: str, password: str, timeout: float) -> int:
    """The HTTP status of ``GET https://<host>/v2/`` with these credentials.

    Raises OSError (connection, TLS, timeout) or http.client.HTTPException when there is no answer;
    neither carries the password."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    request = urllib.request.Request(  # noqa: S310 - the scheme is always https
        registry_url(host),
        headers={"Authorization": f"Basic {token}", "User-Agent": f"docker-credential-ecr/{__version__} doctor"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
