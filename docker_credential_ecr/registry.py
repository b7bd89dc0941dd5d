"""Recognise an Amazon ECR registry in a server URL that a Docker client hands the helper.

Clients send many spellings of the same host (``host``, ``host:port``, ``https://host/v2/``,
``host/repo``...). ``parse`` accepts every spelling of a real ECR or ECR Public host and returns
``None`` for anything else, so the caller answers "not found" and the client moves on.

It is deliberately strict: a token handed to the wrong host is a leaked credential. Hence no
``http://`` (the token would travel in clear), no user-info (``user@host`` hides the real host from a
careless reader), no query or fragment, ASCII only (a Unicode digit or a Kelvin sign must not pass for
an ASCII one), and a region must sit on its own partition's domain (``cn-north-1.amazonaws.com`` is
a look-alike, not a registry).

No I/O and no imports: this runs on every ``get``, cache hits included, and plain string methods
do the work. (The grammar used to be one regular expression; importing :mod:`re` and compiling it
cost about 0.55x a bare interpreter start, measured with ``python -X importtime``, more than the rest
of a cache hit.)
"""

from __future__ import annotations

__all__ = ["Registry", "glob_match", "host_for", "mentions_ecr", "parse", "split_server_url"]

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

# Per partition: (its IPv4 domain, its dual-stack domain or None if ECR has no dual-stack registry
#                 host there). AWS names dual-stack registries "<acct>.dkr-ecr.<region>.on.aws", but
#                 the Go helper takes "dkr.ecr" and "dkr-ecr" under either domain (its own tests have
#                 "<acct>.dkr.ecr.cn-north-1.on.amazonwebservices.com.cn"), and so does this module:
#                 the domain decides dual-stack, not the separator. A host whose domain is not one of
#                 its region's partition is rejected: such a host cannot exist, so it can only be a
#                 look-alike.
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

_PUBLIC_HOSTS = ("public.ecr.aws", _PUBLIC_DUALSTACK_HOST)
_SCHEME = "https://"  # the only scheme: "http://" must never get a token
# A path may hold printable ASCII except "?" (query), "#" (fragment) and backslash (which some URL
# parsers read as "/", so "H\@evil" would mean different hosts to different readers).
_NOT_IN_PATH = (" ", "?", "#", "\\")

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

    The grammar, after surrounding ASCII white space, in ASCII only and any letter case::

        ["https://"] host [":" port] ["/" path]
        host = <12 digits> ".dkr" ("." | "-") "ecr" ["-fips"] "." region "." domain
             | "public.ecr.aws" | "ecr-public.aws.com"                      (ECR Public)

    where the domain is one of the region's partition (its IPv4 one, or its dual-stack one, which
    makes the registry dual-stack), the port is 1 to 65535, and the path is printable ASCII without
    white space, "?", "#" or backslash. Never raises for any ``str``.
    """
    text = server_url.strip(_WHITESPACE)
    # ASCII first: then lower() cannot turn a look-alike ("\u212a", the Kelvin sign) into a letter.
    if not text.isascii():
        return None
    text = text.lower()
    if text.startswith(_SCHEME):
        text = text[len(_SCHEME) :]
    authority, slash, path = text.partition("/")
    if slash and not (path.isprintable() and not any(c in path for c in _NOT_IN_PATH)):
        return None
    host, colon, port = authority.partition(":")
    if colon and not (port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        return None
    if host in _PUBLIC_HOSTS:
        return Registry(
            service="ecr-public",
            account=None,
            region="us-east-1",
            fips=False,
            dualstack=host == _PUBLIC_DUALSTACK_HOST,
            host=host,
        )
    return _parse_ecr_host(host)


def _parse_ecr_host(host: str) -> Registry | None:
    """``<account>.dkr.ecr[-fips].<region>.<domain>``, also with ``dkr-ecr`` (lower case)."""
    account, dot, rest = host[:12], host[12:13], host[13:]
    if not (account.isdigit() and len(account) == 12 and dot == "."):
        return None
    if not rest.startswith(("dkr.ecr", "dkr-ecr")):
        return None
    rest = rest[len("dkr.ecr") :]
    fips = rest.startswith("-fips")
    if fips:
        rest = rest[len("-fips") :]
    if not rest.startswith("."):
        return None
    region, _, domain = rest[1:].partition(".")
    if not _is_region(region):
        return None
    ipv4_domain, dualstack_domain = _DOMAINS[_partition(region)]
    if domain == ipv4_domain:
        dualstack = False
    elif domain == dualstack_domain:
        dualstack = True
    else:
        return None
    return Registry(service="ecr", account=account, region=region, fips=fips, dualstack=dualstack, host=host)


def _is_region(name: str) -> bool:
    """``us-east-1``, ``us-gov-west-1``, ``eusc-de-east-1``: 2-4 letters, 1-3 words, 1-2 digits."""
    words = name.split("-")
    number = words.pop()
    return (
        2 <= len(words) <= 4
        and 2 <= len(words[0]) <= 4
        and all(word.isalpha() for word in words)
        and number.isdigit()
        and len(number) <= 2
    )


# Pieces of every ECR registry host (private, dual-stack, ECR Public and its dual-stack host).
_ECR_MARKERS = ("dkr.ecr", "dkr-ecr", "ecr.aws", "ecr-public.aws")
# Characters some URL parsers or IDNA read as a dot.
_DOTS = ("\u3002", "\uff0e", "\uff61")


def mentions_ecr(server_url: str) -> bool:
    """Whether ``server_url`` names something under an ECR domain in any spelling, well formed or not.

    :func:`parse` answers only well-formed hosts; this one decides what must never leave this
    helper (the config's fallback helper never sees it). Upper case, Unicode compatibility forms
    (full-width letters and dots), percent-encoding, backslashes, white space, user info, ports
    and queries do not hide the host: a false positive only costs a not-found.
    """
    text = server_url
    if not text.isascii():
        import unicodedata

        text = unicodedata.normalize("NFKC", text)
        for dot in _DOTS:
            text = text.replace(dot, ".")
    text = text.lower()
    if "%" in text:
        text = _percent_decoded(text)
    text = "".join(c for c in text if not (c.isspace() or c == "\\" or not c.isprintable()))
    return any(marker in text for marker in _ECR_MARKERS)


def _percent_decoded(text: str) -> str:
    """``%2e`` and friends decoded, repeatedly (``%252e``); invalid escapes are left as they are."""
    for _ in range(3):
        out, i = [], 0
        while i < len(text):
            pair = text[i + 1 : i + 3]
            if text[i] == "%" and len(pair) == 2 and all(c in "0123456789abcdef" for c in pair):
                out.append(chr(int(pair, 16)))
                i += 3
            else:
                out.append(text[i])
                i += 1
        decoded = "".join(out).lower()
        if decoded == text:
            break
        text = decoded
    return text


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


# -- host matching: the config file's globs and aliases ---------------------------------------------
def glob_match(pattern: str, text: str) -> bool:
    """``fnmatch.fnmatchcase(text, pattern)`` for ``*``, ``?`` and ``[...]`` / ``[!...]`` classes.

    Written out because :mod:`fnmatch` imports :mod:`re`, which a cache hit otherwise never loads
    (about 0.5x an interpreter start). Greedy with backtracking to the last ``*``: linear in practice
    for host names. ``tests/test_registry.py`` holds it equal to fnmatch.
    """
    p = t = 0
    star = resume = -1
    while t < len(text):
        if p < len(pattern):
            if pattern[p] == "*":
                star, resume = p, t
                p += 1
                continue
            width = _match_one(pattern, p, text[t])
            if width:
                p += width
                t += 1
                continue
        if star < 0:
            return False
        p, resume = star + 1, resume + 1
        t = resume
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _match_one(pattern: str, p: int, char: str) -> int:
    """How much of ``pattern`` at ``p`` one character ``char`` consumes; 0 if it does not match."""
    head = pattern[p]
    if head == "?":
        return 1
    if head == "[":
        start = p + 2 if pattern[p + 1 : p + 2] == "!" else p + 1
        # As fnmatch: a "]" right after "[" or "[!" is a member; an unclosed "[" is itself.
        end = pattern.find("]", start + 1)
        if end > 0:
            negate = start == p + 2
            members = pattern[start:end]
            found, i = False, 0
            while i < len(members):
                if i + 2 < len(members) and members[i + 1] == "-":
                    found = found or members[i] <= char <= members[i + 2]
                    i += 3
                else:
                    found = found or members[i] == char
                    i += 1
            return end - p + 1 if found != negate else 0
    return 1 if head == char else 0


def split_server_url(server_url: str) -> tuple[str | None, str, str | None] | None:
    """(scheme or None, lower-case host name, port or None) of a server URL; None if it has no host.

    Accepts what clients send (``host``, ``host:port``, ``https://host/v2/``, ``host/repo``). User
    info, a query or a fragment make it None: such a URL hides its real host from a careless reader.
    """
    text = server_url.strip(" \t\n\r\f\v")
    scheme = None
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
    host = text.split("/", 1)[0]
    if not host or not host.isascii() or any(c in text for c in "@?#\\ "):
        return None
    host, sep, port = host.partition(":")
    if sep and not (port.isdigit() and 0 < int(port) < 65536):
        return None
    return scheme, host.lower().rstrip("."), port or None
