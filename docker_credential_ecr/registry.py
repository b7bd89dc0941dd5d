"""Recognise an Amazon ECR registry in a server URL that a Docker client hands the helper.

Clients send many spellings of the same host (``host``, ``host:port``, ``https://host/v2/``,
``host/repo``...). ``parse`` accepts every spelling of a real ECR or ECR Public host and returns
``None`` for anything else, so the caller answers "not found" and the client moves on.

It is deliberately strict: a token handed to the wrong host is a leaked credential. Hence no
``http://`` (the token would travel in clear), no user-info (``user@host`` hides the real host from a
careless reader), no query or fragment, ASCII only (a Unicode digit or a Kelvin sign must not pass for
an ASCII one), and a region must sit on its own partition's domain (``cn-north-1.amazonaws.com`` is
a look-alike, not a registry).

Standard library only and no I/O: this runs on every ``get``, cache hits included.
"""

from __future__ import annotations

import re

__all__ = ["Registry", "host_for", "parse"]

# Partition of a region, decided by its prefix. Checked in order; anything else is the commercial
# partition ("aws"). "us-iso-" cannot swallow "us-isob-"/"us-isof-": the dash after "iso" differs.
_REGION_PREFIXES = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-iso-", "aws-iso"),
    ("us-isob-", "aws-iso-b"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("eusc-", "aws-eusc"),
)

# Per partition: (domain of "<acct>.dkr.ecr.<region>.<domain>",
#                 domain of the dual-stack "<acct>.dkr-ecr.<region>.<domain>", or None if ECR has
#                 no dual-stack registry host there). A host whose domain is not its region's is
#                 rejected: such a host cannot exist, so it can only be a look-alike.
_DOMAINS = {
    "aws": ("amazonaws.com", "on.aws"),
    "aws-us-gov": ("amazonaws.com", "on.aws"),
    "aws-cn": ("amazonaws.com.cn", "on.amazonwebservices.com.cn"),
    "aws-iso": ("c2s.ic.gov", None),
    "aws-iso-b": ("sc2s.sgov.gov", None),
    "aws-iso-e": ("cloud.adc-e.uk", None),
    "aws-iso-f": ("csp.hci.ic.gov", None),
    "aws-eusc": ("amazonaws.eu", None),
}

_PUBLIC_DUALSTACK_HOST = "ecr-public.aws.com"

# One anchored pattern (used with fullmatch) for the whole server URL. re.ASCII keeps [0-9], [a-z] and
# IGNORECASE to ASCII: without it "\u212a" (Kelvin sign) would match "k" and "\u017f" would match "s".
# Every piece is a plain sequence or a short alternation, so matching stays linear on long input.
_SERVER_URL = re.compile(
    r"""
    (?:https://)?                       # the only scheme: "http://" must never get a token
    (?P<host>
        (?P<account>[0-9]{12})\.
        dkr(?P<sep>[.-])ecr             # "dkr.ecr" (IPv4) or "dkr-ecr" (dual-stack)
        (?P<fips>-fips)?\.
        (?P<region>[a-z]{2,4}(?:-[a-z]+){1,3}-[0-9]{1,2})\.    # us-east-1, us-gov-west-1, eusc-de-east-1
        (?P<domain>
            amazonaws\.com(?:\.cn)?|amazonaws\.eu|c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk
            |csp\.hci\.ic\.gov|on\.aws|on\.amazonwebservices\.com\.cn
        )
    |
        (?P<public>public\.ecr\.aws|ecr-public\.aws\.com)
    )
    (?::(?P<port>[0-9]{1,5}))?          # range checked below
    # Optional path: printable ASCII except "?" (query), "#" (fragment) and backslash (which some
    # URL parsers read as "/", so "H\@evil" would mean different hosts to different readers).
    (?:/[\x21-\x22\x24-\x3e\x40-\x5b\x5d-\x7e]*)?
    """,
    re.ASCII | re.IGNORECASE | re.VERBOSE,
)

# Only ASCII whitespace is "surrounding whitespace": str.strip() would also eat Unicode separators.
_WHITESPACE = " \t\n\r\f\v"


def _partition(region: str) -> str:
    for prefix, partition in _REGION_PREFIXES:
        if region.startswith(prefix):
            return partition
    return "aws"


class Registry:
    """An ECR (or ECR Public) registry: what the helper needs to get and cache a token for it."""

    # Field order (also that of __init__, __repr__ and equality), not alphabetical.
    __slots__ = ("service", "account", "region", "fips", "dualstack", "host")  # noqa: RUF023

    service: str  # "ecr" or "ecr-public"
    account: str | None  # 12-digit registry id; None for ECR Public
    region: str  # region of the API to call; always "us-east-1" for ECR Public
    fips: bool
    dualstack: bool
    host: str  # canonical: lower case, no scheme, port or path

    def __init__(
        self, *, service: str, account: str | None, region: str, fips: bool, dualstack: bool, host: str
    ) -> None:
        # Immutable, because it is hashable and used as a cache key.
        set_ = object.__setattr__
        set_(self, "service", service)
        set_(self, "account", account)
        set_(self, "region", region)
        set_(self, "fips", fips)
        set_(self, "dualstack", dualstack)
        set_(self, "host", host)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Registry is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Registry is immutable: cannot delete {name!r}")

    def _key(self) -> tuple[str, str | None, str, bool, bool, str]:
        return (self.service, self.account, self.region, self.fips, self.dualstack, self.host)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Registry):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Registry(service={self.service!r}, account={self.account!r}, region={self.region!r}, "
            f"fips={self.fips!r}, dualstack={self.dualstack!r}, host={self.host!r})"
        )

    @property
    def partition(self) -> str:
        """The AWS partition of the registry's region: "aws", "aws-cn", "aws-us-gov", "aws-iso"..."""
        return _partition(self.region)


def parse(server_url: str) -> Registry | None:
    """The ECR registry that ``server_url`` names, or None if it names anything else.

    Never raises for any ``str``.
    """
    match = _SERVER_URL.fullmatch(server_url.strip(_WHITESPACE))
    if match is None:
        return None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        return None
    host = match["host"].lower()
    if match["public"] is not None:
        return Registry(
            service="ecr-public",
            account=None,
            region="us-east-1",
            fips=False,
            dualstack=host == _PUBLIC_DUALSTACK_HOST,
            host=host,
        )
    region = match["region"].lower()
    dualstack = match["sep"] == "-"
    if match["domain"].lower() != _DOMAINS[_partition(region)][1 if dualstack else 0]:
        return None
    return Registry(
        service="ecr",
        account=match["account"],
        region=region,
        fips=match["fips"] is not None,
        dualstack=dualstack,
        host=host,
    )


def host_for(account: str, region: str, *, fips: bool = False, dualstack: bool = False) -> str | None:
    """The canonical registry host of ``account`` in ``region``; None if ECR has no such host.

    The inverse of :func:`parse` for private registries (used by ``configure`` to write hosts).
    """
    region = region.strip().lower()
    domain = _DOMAINS[_partition(region)][1 if dualstack else 0]
    if domain is None:
        return None
    host = f"{account}.dkr{'-' if dualstack else '.'}ecr{'-fips' if fips else ''}.{region}.{domain}"
    registry = parse(host)
    return registry.host if registry is not None else None
