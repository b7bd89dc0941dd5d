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
    web_identity = "github"          # assume role_arn (or AWS_ROLE_ARN) with a CI's OIDC token:
                                     # github | env:NAME | file:PATH | auto (see docs/ci.md)

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

import os
import stat
import sys
import time

from docker_credential_ecr import jsonwire, safefile
from docker_credential_ecr import registry as registries
from docker_credential_ecr.errors import ConfigError, StoreError
from docker_credential_ecr.safefile import RefusedError
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

    __slots__ = (
        "external_id",
        "kind",
        "line",
        "match",
        "profile",
        "region",
        "role_arn",
        "session_name",
        "web_identity",
    )

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
        web_identity: str | None = None,
    ) -> None:
        self.match = match
        self.kind = kind  # "account", "host" or "glob"
        self.line = line
        self.profile = profile
        self.role_arn = role_arn
        self.external_id = external_id
        self.session_name = session_name
        self.region = region
        self.web_identity = web_identity

    def __repr__(self) -> str:
        return f"RegistryTable(match={self.match!r}, kind={self.kind!r}, line={self.line})"

    def matches(self, registry: Registry) -> bool:
        if self.kind == "account":
            return registry.account == self.match
        if self.kind == "host":
            return registry.host == self.match
        return registries.glob_match(self.match, registry.host)

    def identity_inputs(self) -> list[str]:
        """What this table adds to the identity key besides the profile (which is passed apart)."""
        if self.web_identity:
            return [f"helper-web-identity={self.web_identity}", f"helper-role-arn={self.role_arn or ''}"]
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
        names = ("profile", "role_arn", "external_id", "session_name", "region", "web_identity")
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
        parts = registries.split_server_url(server_url)
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
            parts = registries.split_server_url(server_url)
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


def _untrusted(exc: RefusedError, path: str) -> UntrustedFileError:
    """The stderr line for a config file (or its parsed copy) not to be used."""
    if exc.reason == safefile.SYMLINK:
        return UntrustedFileError(f"config file {path} is a symbolic link: not used")
    if exc.reason == safefile.OTHER_OWNER and exc.st is not None:
        return UntrustedFileError(f"config file {path} belongs to another user (uid {exc.st.st_uid}): not used")
    if exc.reason == safefile.REFUSED_MODE and exc.st is not None:
        mode = stat.S_IMODE(exc.st.st_mode)
        return UntrustedFileError(
            f"config file {path} is writable by other users (mode {mode:04o}): not used; run chmod go-w {path}"
        )
    return UntrustedFileError(f"config file {path} is not a regular file: not used")


def _open_trusted(path: str) -> int:
    """A read-only descriptor of ``path`` once it is known to be trustworthy: a regular file (not a
    symlink, not a FIFO: see :mod:`safefile`), owned by this user or root, not writable by others.
    Raises OSError: FileNotFoundError and friends as the system says, UntrustedFileError for a file
    not to be used."""
    try:
        fd, _ = safefile.open_checked(path, root_may_own=True)
    except RefusedError as exc:
        raise _untrusted(exc, path) from None
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
        data = safefile.read_checked(path, MAX_FILE_BYTES, root_may_own=True)
    except RefusedError as exc:
        if exc.reason == safefile.TOO_LARGE:
            raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a config file") from None
        raise _untrusted(exc, path) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None
    return parse(text, path)


def parse(text: str, path: str = "config.toml") -> Config:
    """Parse and validate config text; errors name ``path`` and the line. Raises ConfigError.

    The file format (its keys, their checks and messages) is :mod:`configfile`'s, imported only here:
    a hit reads the parsed copy and never validates.
    """
    from docker_credential_ecr.configfile import validate

    return validate(text, path)


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
