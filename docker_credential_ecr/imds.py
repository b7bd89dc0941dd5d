"""Why instance credentials were not found: the IMDSv2 hop limit, seen from a container (awslabs #323, #215).

IMDSv2 answers its token request (``PUT /latest/api/token``) in IP packets whose hop limit is the
instance's ``http-put-response-hop-limit``, 1 by default on many instances. From a container behind a
bridge network the answer needs two hops: it is dropped on the way, the request simply never gets an
answer, and every AWS SDK (botocore too) falls back to IMDSv1, is refused, and reports "no
credentials". Users see docker's "no basic auth credentials". When the credential chain found
nothing, :func:`diagnose` asks the token endpoint once more, bounded: connected but unanswered is
that hop limit, and the line says how to fix it.

Standard library only; called on a failed miss and by ``doctor``, never on a hit.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_ENDPOINT = "http://169.254.169.254/"
IPV6_ENDPOINT = "http://[fd00:ec2::254]/"
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a URL path
PROBE_TIMEOUT = 1.0  # botocore's own metadata timeout
HOP_LIMIT_LINE = (
    "the instance metadata service (IMDSv2) took the token request but sent no answer: from inside a "
    "container its hop limit must be 2: run `aws ec2 modify-instance-metadata-options --instance-id <id> "
    "--http-put-response-hop-limit 2`, or pass credentials in"
)
NO_ROLE_LINE = (
    "this EC2 instance has no IAM role (instance metadata lists none): attach an instance profile "
    "with ecr:GetAuthorizationToken, or pass credentials in"
)


def enabled(environ: Mapping[str, str]) -> bool:
    return (environ.get("AWS_EC2_METADATA_DISABLED") or "").strip().lower() != "true"


def endpoint(environ: Mapping[str, str]) -> str:
    """The metadata endpoint botocore would use (``AWS_EC2_METADATA_SERVICE_ENDPOINT[_MODE]``)."""
    explicit = (environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "").strip()
    if explicit:
        return explicit
    mode = (environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") or "").strip().lower()
    return IPV6_ENDPOINT if mode == "ipv6" else DEFAULT_ENDPOINT


def probe(environ: Mapping[str, str], timeout: float = PROBE_TIMEOUT) -> str:
    """``unreachable`` (not on EC2, or metadata off), ``unanswered`` (hop limit), ``no-role`` or ``ok``."""
    import http.client
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(endpoint(environ))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "unreachable"
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=timeout)
    try:
        try:
            conn.connect()
        except OSError:
            return "unreachable"
        try:
            conn.request("PUT", TOKEN_PATH, headers={"x-aws-ec2-metadata-token-ttl-seconds": "60"})
            response = conn.getresponse()
            token = response.read(4096).decode("ascii", "replace")
        except (socket.timeout, TimeoutError):  # distinct classes before Python 3.10
            return "unanswered"
        except (OSError, http.client.HTTPException):
            return "unreachable"
        if response.status != 200 or not token:
            return "unreachable"
        return _role_state(conn, token)
    finally:
        conn.close()


def _role_state(conn: object, token: str) -> str:
    import http.client

    assert isinstance(conn, http.client.HTTPConnection)
    try:
        conn.request("GET", "/latest/meta-data/iam/security-credentials/", headers={"x-aws-ec2-metadata-token": token})
        response = conn.getresponse()
        body = response.read(4096)
    except (OSError, http.client.HTTPException):
        return "ok"
    return "no-role" if response.status == 404 or (response.status == 200 and not body.strip()) else "ok"


def diagnose(environ: Mapping[str, str], timeout: float = PROBE_TIMEOUT) -> str | None:
    """The line that explains missing instance credentials, or None when metadata is not the cause."""
    if not enabled(environ):
        return None
    return diagnose_state(probe(environ, timeout))


def diagnose_state(state: str) -> str | None:
    """The line for a :func:`probe` result, or None when it explains nothing."""
    if state == "unanswered":
        return HOP_LIMIT_LINE
    if state == "no-role":
        return NO_ROLE_LINE
    return None
