"""The helper's own config file: per-registry AWS settings, aliases, a fallback helper, logging.

TOML, at ``platformdirs.user_config_dir("docker-credential-ecr")/config.toml`` (on Linux
``$XDG_CONFIG_HOME/docker-credential-ecr/config.toml``, else ``~/.config/...``), or wherever
``DOCKER_CREDENTIAL_ECR_CONFIG`` points. No file is the same as an empty one. Example::

    fallback = "desktop"             # non-ECR hosts go to docker-credential-desktop
    log_level = "info"               # off (default) | error | warning | info | debug

    [[registry]]                     # the first table whose `match` fits the registry wins
    match = "111122223333"           # a 12-digit account, an exact ECR host, or a glob over hosts
    profile = "prod"                 # AWS profile for this registry
    role_arn = "arn:aws:iam::111122223333:role/ecr-pull"   # assumed on top of the profile
    external_id = "ci"               # optional, with role_arn
    session_name = "builder"         # optional, with role_arn (default "docker-credential-ecr")
    region = "eu-west-1"             # region of the STS endpoint that assumes role_arn

    [aliases]                        # a custom domain or mirror answered with that registry's token
    "registry.example.com" = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"

``region`` never changes where the token comes from: ECR tokens are regional, so the registry's own
region (us-east-1 for ECR Public) is always the one asked. It picks the STS endpoint that assumes
``role_arn`` (default: the registry's region, which also keeps China and GovCloud in their partition).

The hot path: ``get`` loads this on every call. No file costs one ``os.stat``. Parsing TOML costs an
import of :mod:`tomllib` (about 0.8x an interpreter start, measured with ``-X importtime`` and wall
time: it pulls in ``typing``, ``datetime`` and ``string``), so a valid file's parsed form is kept as
JSON in the token cache directory (``config.json``, 0600), keyed by the file's path, size, inode and
modification and change times; a hit reads that copy with the JSON scanner the cache already uses.
A file changed in the last two seconds is not copied (a second change within the file system's
timestamp granularity could otherwise go unseen).

Trust, as ssh treats its own config: the file picks aliases (which host gets which token), roles, the
fallback helper and the log file, so whoever can write it can turn into your token. It is used only
when it is a regular file (opened without following a symlink, and without blocking on a FIFO), owned
by you or root, and not writable by group or others. Anything else is refused with one stderr line
and ``get`` answers as if there were no file; the parsed copy is held to the same rules.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import time

from docker_credential_ecr import jsonwire
from docker_credential_ecr import registry as registries
from docker_credential_ecr.errors import ConfigError, StoreError
from docker_credential_ecr.settings import user_dir
from docker_credential_ecr.store import CONFIG_COPY_NAME, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.settings import Settings

CONFIG_ENV = "DOCKER_CREDENTIAL_ECR_CONFIG"
# Set for a fallback helper's process: this helper run by it never passes a request on again.
PASSED_THROUGH_ENV = "DOCKER_CREDENTIAL_ECR_PASSED_THROUGH"
FILE_NAME = "config.toml"
COPY_NAME = CONFIG_COPY_NAME  # kept by the store, beside the tokens
COPY_SCHEMA = "docker-credential-ecr/parsed-config"
COPY_VERSION = 2  # bump when the JSON form of Config changes
MAX_FILE_BYTES = 1 << 20
RACY_SECONDS = 2.0
DEFAULT_SESSION_NAME = "docker-credential-ecr"
LOG_LEVELS = ("off", "error", "warning", "info", "debug")
TOP_KEYS = ("fallback", "log_level", "log_file", "registry", "aliases")
RULE_KEYS = ("match", "profile", "role_arn", "external_id", "session_name", "region")
ROLE_ONLY_KEYS = ("external_id", "session_name")
# A fallback helper that is this helper would answer every pass-through by passing it through again.
OWN_NAMES = frozenset({"ecr-login"})
# Docker Hub's names. An alias for one would hand an ECR token to Docker Hub: docker asks for Docker
# Hub's credentials (https://index.docker.io/v1/) to send them to a registry mirror, and dockerd sends
# the same credentials to Docker Hub itself whenever the mirror misses (shown with a real dockerd in
# tests/e2e/test_daemons.py). Subdomains of these count too.
DOCKER_HUB_DOMAINS = ("docker.io", "docker.com")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


# -- where the file is ------------------------------------------------------------------------------
def default_config_dir(environ: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """``platformdirs.user_config_dir(APP_NAME)`` without importing platformdirs (see :func:`settings.user_dir`)."""
    return user_dir("config", environ, platform)


def config_path(environ: Mapping[str, str]) -> tuple[str | None, bool]:
    """(path of the config file, whether it was named explicitly by ``DOCKER_CREDENTIAL_ECR_CONFIG``)."""
    named = environ.get(CONFIG_ENV, "").strip()
    if named:
        if named.startswith("~") and environ.get("HOME"):
            named = environ["HOME"] + named[1:]
        return os.path.abspath(os.path.expanduser(named)), True
    directory = default_config_dir(environ)
    return (os.path.join(directory, FILE_NAME) if directory else None), False


# -- the parsed form --------------------------------------------------------------------------------
class RegistryTable:
    """One ``[[registry]]`` table: which registries it matches and the AWS settings it gives them."""

    __slots__ = ("external_id", "kind", "line", "match", "profile", "region", "role_arn", "session_name")

    def __init__(
        self,
        *,
        match: str,
        kind: str,
        line: int | None = None,
        profile: str | None = None,
        role_arn: str | None = None,
        external_id: str | None = None,
        session_name: str | None = None,
        region: str | None = None,
    ) -> None:
        self.match = match
        self.kind = kind  # "account", "host" or "glob"
        self.line = line
        self.profile = profile
        self.role_arn = role_arn
        self.external_id = external_id
        self.session_name = session_name
        self.region = region

    def __repr__(self) -> str:
        return f"RegistryTable(match={self.match!r}, kind={self.kind!r}, line={self.line})"

    def matches(self, registry: Registry) -> bool:
        if self.kind == "account":
            return registry.account == self.match
        if self.kind == "host":
            return registry.host == self.match
        return glob_match(self.match, registry.host)

    def identity_inputs(self) -> list[str]:
        """What this table adds to the identity key besides the profile (which is passed apart)."""
        if not self.role_arn:
            return []
        return [
            f"helper-role-arn={self.role_arn}",
            f"helper-external-id={self.external_id or ''}",
            f"helper-session-name={self.session_name or ''}",
            f"helper-sts-region={self.region or ''}",
        ]

    def sts_region(self, registry: Registry) -> str:
        return self.region or registry.region

    def settings(self) -> dict[str, str]:
        """The settings this table sets, by name, for messages and ``doctor``."""
        names = ("profile", "role_arn", "external_id", "session_name", "region")
        return {name: value for name in names if (value := getattr(self, name))}

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, data: object) -> RegistryTable:
        if not isinstance(data, dict):
            raise TypeError("table")
        values = {name: data.get(name) for name in cls.__slots__}
        for name, value in values.items():
            expected = (int, type(None)) if name == "line" else (str, type(None))
            if not isinstance(value, expected) or isinstance(value, bool):
                raise TypeError(name)
        if not values["match"] or values["kind"] not in ("account", "host", "glob"):
            raise TypeError("match")
        return cls(**values)  # type: ignore[arg-type]


class Resolution:
    """What a server URL names: the ECR registry, the host it was asked for, and the settings for it."""

    __slots__ = ("alias", "host", "registry", "table")

    def __init__(self, registry: Registry, host: str, alias: str | None, table: RegistryTable | None) -> None:
        self.registry = registry
        self.host = host  # the registry's host, or the alias (with its port, if the alias has one)
        self.alias = alias  # the alias name when the URL named one
        self.table = table  # the [[registry]] table that matches it, or None

    def __repr__(self) -> str:
        return f"Resolution(host={self.host!r}, registry={self.registry.host!r}, table={self.table!r})"


class Config:
    """The config file's content, validated. ``Config()`` is the empty config (no file)."""

    __slots__ = ("aliases", "fallback", "log_file", "log_level", "path", "refused", "tables")

    def __init__(
        self,
        *,
        path: str | None = None,
        tables: tuple[RegistryTable, ...] = (),
        aliases: Mapping[str, str] | None = None,
        fallback: str | None = None,
        log_level: str | None = None,
        log_file: str | None = None,
        refused: str | None = None,
    ) -> None:
        self.path = path
        self.refused = refused  # why the file at `path` was not trusted (then nothing else is set)
        self.tables = tables
        self.aliases: dict[str, str] = dict(aliases or {})
        self.fallback = fallback
        self.log_level = log_level
        self.log_file = log_file

    def __repr__(self) -> str:
        return f"Config(path={self.path!r}, tables={len(self.tables)}, aliases={len(self.aliases)})"

    def table_for(self, registry: Registry) -> RegistryTable | None:
        """The first ``[[registry]]`` table that matches, or None (the default AWS credential chain)."""
        for table in self.tables:
            if table.matches(registry):
                return table
        return None

    def alias_for(self, server_url: str) -> str | None:
        """The alias (a key of ``[aliases]``) that ``server_url`` names, in any spelling, or None."""
        if not self.aliases:
            return None
        parts = split_server_url(server_url)
        if parts is None:
            return None
        _scheme, host, port = parts
        if port is not None and f"{host}:{port}" in self.aliases:
            return f"{host}:{port}"
        if port in (None, "443") and host in self.aliases:
            return host
        return None

    def resolve(self, server_url: str) -> Resolution | None:
        """The registry ``server_url`` names (an ECR host or an alias of one), or None if neither.

        An alias over plain ``http://`` resolves to nothing, like an ECR host would: the token would
        travel in clear. Use :meth:`owns` to ask whether a URL is this helper's to answer at all.
        """
        registry = registries.parse(server_url)
        alias = None
        if registry is None:
            alias = self.alias_for(server_url)
            if alias is None:
                return None
            parts = split_server_url(server_url)
            if parts is None or parts[0] not in (None, "https"):
                return None
            registry = registries.parse(self.aliases[alias])
            if registry is None:  # pragma: no cover - targets are validated when the file is read
                return None
        return Resolution(registry, alias or registry.host, alias, self.table_for(registry))

    def owns(self, server_url: str) -> bool:
        """Whether ``server_url`` is an ECR registry or an alias, in any spelling (http:// included).

        Such URLs are answered here and never handed to the fallback helper.
        """
        if self.resolve(server_url) is not None or self.alias_for(server_url) is not None:
            return True
        # A host under an ECR domain never leaves this helper, whatever its spelling.
        return registries.mentions_ecr(server_url)

    def describe(self, server_url: str) -> list[str]:
        """Person-readable lines: what this config does for ``server_url`` (for ``doctor``)."""
        where = self.path or "(no config file)"
        resolution = self.resolve(server_url)
        if resolution is None:
            if self.owns(server_url):
                return [f"{server_url!r} names an ECR registry or alias, but not over https: not answered"]
            if self.fallback:
                return [f"{server_url!r} is not an ECR registry: handed to docker-credential-{self.fallback}"]
            return [f"{server_url!r} is not an ECR registry or an alias in {where}: not found"]
        registry, table = resolution.registry, resolution.table
        lines = []
        if resolution.alias is not None:
            lines.append(f"alias {resolution.alias} -> {registry.host} ({where}, [aliases])")
        lines.append(f"registry {registry.host}: {registry.service}, region {registry.region}")
        if table is None:
            lines.append(f"no [[registry]] table matches in {where}: the default AWS credential chain")
        else:
            line = f":{table.line}" if table.line else ""
            lines.append(f"settings from [[registry]] match = {table.match!r} ({where}{line})")
            lines.extend(f"  {name} = {value}" for name, value in table.settings().items())
            if table.role_arn:
                lines.append(f"  (role assumed through STS in {table.sts_region(registry)})")
        return lines

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "tables": [table.to_json() for table in self.tables],
            "aliases": self.aliases,
            "fallback": self.fallback,
            "log_level": self.log_level,
            "log_file": self.log_file,
        }

    @classmethod
    def from_json(cls, data: object) -> Config:
        """The inverse of :meth:`to_json`; TypeError for anything of the wrong shape."""
        if not isinstance(data, dict):
            raise TypeError("config")
        tables, aliases = data.get("tables"), data.get("aliases")
        if not isinstance(tables, list) or not isinstance(aliases, dict):
            raise TypeError("config")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
            raise TypeError("aliases")
        strings = {name: data.get(name) for name in ("path", "fallback", "log_level", "log_file")}
        if not all(value is None or isinstance(value, str) for value in strings.values()):
            raise TypeError("config")
        return cls(tables=tuple(RegistryTable.from_json(t) for t in tables), aliases=aliases, **strings)


EMPTY = Config()


def glob_match(pattern: str, text: str) -> bool:
    """``fnmatch.fnmatchcase(text, pattern)`` for ``*``, ``?`` and ``[...]`` / ``[!...]`` classes.

    Written out because :mod:`fnmatch` imports :mod:`re`, which a cache hit otherwise never loads
    (about 0.5x an interpreter start). Greedy with backtracking to the last ``*``: linear in practice
    for host names. ``tests/test_config.py`` holds it equal to fnmatch.
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


# -- loading ----------------------------------------------------------------------------------------
def load(settings: Settings) -> Config:
    """The config for these settings: the file's, or EMPTY when there is none. Raises ConfigError.

    Cheap when there is no file (one ``stat``) and when the parsed copy in the cache dir is current.
    """
    path, named = config_path(settings.environ)
    if path is None:
        return EMPTY
    try:
        fd = _open_trusted(path)
    except (FileNotFoundError, NotADirectoryError):
        if named:
            raise ConfigError(f"{path}: no such file (named by {CONFIG_ENV})") from None
        return EMPTY
    except UntrustedFileError as exc:
        return Config(path=path, refused=str(exc))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    stamp = [st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns]
    copy = os.path.join(settings.cache_dir, COPY_NAME) if settings.cache_file and settings.cache_dir else None
    if copy is not None:
        cached = _read_copy(copy, path, stamp)
        if cached is not None:
            return cached
    try:
        config = load_file(path)
    except UntrustedFileError as exc:  # replaced since it was checked above
        return Config(path=path, refused=str(exc))
    if copy is not None and time.time() - st.st_mtime > RACY_SECONDS and _stamp(path) == stamp:
        # Stamped with what was read: a file replaced while it was being parsed is parsed again next time.
        _write_copy(copy, {"schema": COPY_SCHEMA, "version": COPY_VERSION, "stamp": stamp, "config": config.to_json()})
    return config


class UntrustedFileError(OSError):
    """A config file someone else could have written: never used. The text is the stderr line."""


def untrusted(st: os.stat_result, path: str, what: str = "config file") -> str | None:
    """Why a file with this ``fstat`` may not be trusted (another owner, writable by others, not a
    regular file), or None. Root's files are trusted, as ssh trusts them."""
    if not stat.S_ISREG(st.st_mode):
        return f"{what} {path} is not a regular file: not used"
    if hasattr(os, "geteuid") and st.st_uid not in (os.geteuid(), 0):
        return f"{what} {path} belongs to another user (uid {st.st_uid}): not used"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = stat.S_IMODE(st.st_mode)
        return f"{what} {path} is writable by other users (mode {mode:04o}): not used; run chmod go-w {path}"
    return None


def _open_trusted(path: str) -> int:
    """A read-only descriptor of ``path`` once it is known to be trustworthy. Raises OSError:
    FileNotFoundError and friends as the system says, UntrustedFileError for a file not to be used.

    O_NOFOLLOW: a symlink planted at the path is refused, not followed; O_NONBLOCK: a FIFO there
    cannot stall the open (fstat then refuses it).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            raise UntrustedFileError(f"config file {path} is a symbolic link: not used") from None
        raise
    try:
        problem = untrusted(os.fstat(fd), path)
    except OSError:
        os.close(fd)
        raise
    if problem is not None:
        os.close(fd)
        raise UntrustedFileError(problem)
    return fd


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns]


def load_file(path: str) -> Config:
    """Read, parse and validate the TOML file at ``path`` (no parsed copy involved).

    Raises ConfigError, or UntrustedFileError for a file that is not to be trusted (see the module).
    """
    try:
        with open(_open_trusted(path), "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except UntrustedFileError:
        raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None
    return parse(text, path)


def parse(text: str, path: str = "config.toml") -> Config:
    """Parse and validate config text; errors name ``path`` and the line. Raises ConfigError."""
    return _Validator(text, path).config()


def _read_copy(copy: str, path: str, stamp: list[int]) -> Config | None:
    """The parsed copy if it is ours, private, and made from this very file; else None."""
    try:
        text = Store(os.path.dirname(copy)).read_private(copy)
    except StoreError:
        return None
    if text is None:
        return None
    try:
        doc = jsonwire.loads(text)
        if (
            not isinstance(doc, dict)
            or doc.get("schema") != COPY_SCHEMA
            or doc.get("version") != COPY_VERSION
            or doc.get("stamp") != stamp
        ):
            return None
        config = Config.from_json(doc.get("config"))
    except (ValueError, TypeError, RecursionError):
        return None
    return config if config.path == path else None


def _write_copy(copy: str, doc: dict[str, object]) -> None:
    """Publish the parsed copy through the store (a directory that is ours alone, an atomic 0600
    file); any failure just skips it."""
    import json

    try:
        Store(os.path.dirname(copy)).publish_config_copy(json.dumps(doc, separators=(",", ":")))
    except StoreError:
        pass


# -- validation: only when the file itself is read, never on a cache hit ---------------------------
_ACCOUNT = r"[0-9]{12}"
_REGION = r"[a-z]{2,4}(?:-[a-z]+){1,3}-[0-9]{1,2}"
_ROLE_ARN = r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}"
_SESSION_NAME = r"[\w+=,.@-]{2,64}"
_EXTERNAL_ID = r"[\w+=,.@:/-]{2,1224}"
_HELPER_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_PORT = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?"
_GLOB_CLASS = r"\[!?[^\[\]]+\]"
_LEADING_KEY = r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]"""
_TOML_POSITION = r"\s*\(at line (\d+), column (\d+)\)\s*$"


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a table" if isinstance(value, dict) else "a date or time"


def _unquote(key: str) -> str:
    if key.startswith('"'):
        try:
            value = jsonwire.loads(key)
        except ValueError:
            return key[1:-1]
        return value if isinstance(value, str) else key[1:-1]
    if key.startswith("'"):
        return key[1:-1]
    return key


def key_lines(text: str) -> dict[tuple[object, ...], int]:
    """Where each table and key is first written: ``("registry", 1, "match") -> line``.

    TOML parsers say nothing of where a value came from, so semantic errors find their line here: a
    line-based scan that knows table headers, ``[[array]]`` tables (counted) and ``key =`` lines, and
    skips multi-line strings. Good enough to point at a line; never trusted for meaning.
    """
    import re

    leading_key = re.compile(_LEADING_KEY)
    index: dict[tuple[object, ...], int] = {}
    table: tuple[object, ...] = ()
    counts: dict[str, int] = {}
    open_quote: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if open_quote is not None:
            if open_quote in line:
                open_quote = None
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            name = _unquote(line[2:].split("]]", 1)[0].strip())
            counts[name] = counts.get(name, -1) + 1
            table = (name, counts[name])
            index.setdefault(table, number)
            index.setdefault((name,), number)
        elif line.startswith("["):
            table = (_unquote(line[1:].split("]", 1)[0].strip()),)
            index.setdefault(table, number)
        else:
            match = leading_key.match(line)
            if match is None:
                continue
            index.setdefault((*table, _unquote(match.group(1))), number)
            rest = line[match.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    open_quote = quote
    return index


class _Validator:
    """Turns TOML text into a :class:`Config`, or a ConfigError naming the file and the line."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self._index: dict[tuple[object, ...], int] | None = None

    def line_of(self, *where: object) -> int | None:
        if self._index is None:
            self._index = key_lines(self.text)
        for end in range(len(where), 0, -1):
            line = self._index.get(where[:end])
            if line is not None:
                return line
        return None

    def fail(self, message: str, *where: object) -> ConfigError:
        line = self.line_of(*where) if where else None
        return ConfigError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")

    def _toml(self) -> dict[str, object]:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # Python 3.9 and 3.10: the same parser, from PyPI (a dependency there)
            import tomli as tomllib

        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            import re

            message = str(getattr(exc, "msg", "") or exc)
            line = getattr(exc, "lineno", None)
            position = re.search(_TOML_POSITION, message)
            if position is not None:
                message = message[: position.start()]
                line = line or int(position.group(1))
            elif message.endswith("(at end of document)"):
                message = message[: -len("(at end of document)")].rstrip()
                line = line or self.text.count("\n") + 1
            where = f"{self.path}:{line}" if line else self.path
            raise ConfigError(f"{where}: invalid TOML: {message}") from None

    def unknown(self, key: str, allowed: tuple[str, ...], what: str, *where: object) -> ConfigError:
        import difflib

        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(allowed)})"
        return self.fail(f"unknown key {key!r} in {what}{hint}", *where, key)

    def string(self, table: Mapping[str, object], key: str, what: str, *where: object) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{what}{key} must be a string, not {_type_name(value)}", *where, key)
        if not value.strip():
            raise self.fail(f"{what}{key} is empty", *where, key)
        return value.strip()

    def pattern(self, value: str | None, regex: str, message: str, *where: object) -> None:
        import re

        if value is not None and re.fullmatch(regex, value) is None:
            raise self.fail(message.format(value=value), *where)

    def config(self) -> Config:
        data = self._toml()
        for key in data:
            if key not in TOP_KEYS:
                raise self.unknown(key, TOP_KEYS, "the top level")
        fallback = self.string(data, "fallback", "")
        self.pattern(
            fallback,
            _HELPER_NAME,
            "fallback {value!r} is not a credential helper name (the part after docker-credential-)",
            "fallback",
        )
        if fallback in OWN_NAMES:
            raise self.fail(f"fallback {fallback!r} is this helper itself; name another one", "fallback")
        log_level = self.string(data, "log_level", "")
        if log_level is not None:
            log_level = "warning" if log_level.lower() == "warn" else log_level.lower()
            if log_level not in LOG_LEVELS:
                raise self.fail(f"log_level {log_level!r} is not one of {', '.join(LOG_LEVELS)}", "log_level")
        log_file = self.string(data, "log_file", "")
        if log_file is not None and not (log_file.startswith("~") or os.path.isabs(log_file)):
            raise self.fail(f"log_file {log_file!r} must be an absolute path (or start with ~)", "log_file")
        aliases = self.aliases(data.get("aliases"))
        tables = self.tables(data.get("registry"), aliases)
        return Config(
            path=self.path, tables=tables, aliases=aliases, fallback=fallback, log_level=log_level, log_file=log_file
        )

    def aliases(self, value: object) -> dict[str, str]:
        example = '"mirror.example.com" = "123456789012.dkr.ecr.us-east-1.amazonaws.com"'
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"aliases must be a table, like [aliases] {example}", "aliases")
        aliases: dict[str, str] = {}
        for name, target in value.items():
            where = ("aliases", name)
            if isinstance(target, dict):
                raise self.fail(f"alias {name!r} reads as a table: quote the host, as in {example}", *where)
            if not isinstance(target, str):
                raise self.fail(f"alias {name!r} must map to a string, not {_type_name(target)}", *where)
            host = name.strip().lower().rstrip(".")
            host = host[: -len(":443")] if host.endswith(":443") else host
            self.pattern(host, _HOST_PORT, f"alias {name!r} is not a host name (with an optional :port)", *where)
            port = host.rpartition(":")[2] if ":" in host else None
            if port is not None and not 0 < int(port) < 65536:
                raise self.fail(f"alias {name!r} has a port out of range", *where)
            if registries.parse(host) is not None or ".dkr.ecr" in host or ".dkr-ecr" in host:
                raise self.fail(f"alias {name!r} is itself an ECR registry host; an alias names another host", *where)
            bare = host.partition(":")[0]
            if any(bare == domain or bare.endswith("." + domain) for domain in DOCKER_HUB_DOMAINS):
                raise self.fail(
                    f"alias {name!r} names Docker Hub: dockerd sends Docker Hub's credentials to Docker Hub "
                    "itself when a registry mirror misses, so this would hand it an ECR token; "
                    "pull through the cache's ECR host instead",
                    *where,
                )
            registry = registries.parse(target)
            if registry is None or registry.host != target.strip().lower():
                raise self.fail(
                    f"alias {name!r} must map to an ECR registry host such as "
                    f"123456789012.dkr.ecr.us-east-1.amazonaws.com, not {target!r}",
                    *where,
                )
            if host in aliases:
                raise self.fail(f"alias {name!r} is given twice", *where)
            aliases[host] = registry.host
        return aliases

    def tables(self, value: object, aliases: Mapping[str, str]) -> tuple[RegistryTable, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise self.fail("registry must be an array of tables: write each one as [[registry]]", "registry")
        rules: list[RegistryTable] = []
        seen: dict[str, int] = {}
        for index, table in enumerate(value):
            where = ("registry", index)
            what = f"[[registry]] #{index + 1}: "
            for key in table:
                if key not in RULE_KEYS:
                    raise self.unknown(key, RULE_KEYS, f"[[registry]] #{index + 1}", *where)
            strings = {key: self.string(table, key, what, *where) for key in RULE_KEYS}
            match = strings["match"]
            if match is None:
                raise self.fail(f"{what}match is required (a host, a 12-digit account or a glob)", *where)
            kind, match = self.match(match, aliases, what, *where, "match")
            if match in seen:
                raise self.fail(f"{what}match {match!r} repeats [[registry]] #{seen[match]}", *where, "match")
            seen[match] = index + 1
            profile, role_arn = strings["profile"], strings["role_arn"]
            if profile is not None and any(c in profile for c in "[]\n\r\t"):
                raise self.fail(f"{what}profile {profile!r} is not an AWS profile name", *where, "profile")
            self.pattern(
                role_arn,
                _ROLE_ARN,
                what + "role_arn {value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
                *where,
                "role_arn",
            )
            for key in ROLE_ONLY_KEYS:
                if strings[key] is not None and role_arn is None:
                    raise self.fail(f"{what}{key} needs role_arn (it is a setting of the role to assume)", *where, key)
            self.pattern(
                strings["session_name"],
                _SESSION_NAME,
                what + "session_name {value!r} must be 2-64 letters, digits or +=,.@_-",
                *where,
                "session_name",
            )
            self.pattern(
                strings["external_id"],
                _EXTERNAL_ID,
                what + "external_id must be 2-1224 letters, digits or +=,.@:/_-",
                *where,
                "external_id",
            )
            region = strings["region"]
            if region is not None:
                region = region.lower()
            self.pattern(region, _REGION, what + "region {value!r} is not an AWS region name", *where, "region")
            rules.append(
                RegistryTable(
                    match=match,
                    kind=kind,
                    line=self.line_of(*where),
                    profile=profile,
                    role_arn=role_arn,
                    external_id=strings["external_id"],
                    session_name=strings["session_name"],
                    region=region,
                )
            )
        return tuple(rules)

    def match(self, value: str, aliases: Mapping[str, str], what: str, *where: object) -> tuple[str, str]:
        import re

        match = value.strip().lower()
        if "/" in match or "://" in match:
            raise self.fail(f"{what}match {value!r} is a URL: give the host alone, an account or a glob", *where)
        if re.fullmatch(_ACCOUNT, match):
            return "account", match
        if any(c in match for c in "*?["):
            rest = re.sub(_GLOB_CLASS, "", match)
            if re.search(r"[^a-z0-9.*?-]", rest):
                raise self.fail(
                    f"{what}match {value!r} is not a glob over host names "
                    "(letters, digits, '.', '-', '*', '?' and [...] classes)",
                    *where,
                )
            return "glob", match
        registry = registries.parse(match)
        if registry is not None and registry.host == match:
            return "host", match
        if match in aliases:
            raise self.fail(
                f"{what}match {value!r} is an alias; settings follow the registry it maps to: "
                f"match {aliases[match]!r} instead",
                *where,
            )
        raise self.fail(
            f"{what}match {value!r} is not an ECR registry host, a 12-digit account or a glob over hosts", *where
        )
