"""The config file's format: its keys, how each is checked, and the messages that name the line.

Imported only when the TOML file itself is read (never on a cache hit, which reads :mod:`config`'s
parsed copy). The ``[[registry]]`` keys are one declarative table, :data:`REGISTRY_KEYS`: a new key
is one row there (its check, its message, whether it needs ``role_arn``) plus its slot in
:class:`~docker_credential_ecr.config.RegistryTable`; ``match`` is the one key with logic of its own.
"""

from __future__ import annotations

import os
import sys

from docker_credential_ecr import jsonwire
from docker_credential_ecr import registry as registries
from docker_credential_ecr.config import Config, RegistryTable
from docker_credential_ecr.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

LOG_LEVELS = ("off", "error", "warning", "info", "debug")
TOP_KEYS = ("fallback", "log_level", "log_file", "registry", "aliases")
# A fallback helper that is this helper would answer every pass-through by passing it through again.
OWN_NAMES = frozenset({"ecr-login"})
# Docker Hub's names. An alias for one would hand an ECR token to Docker Hub: docker asks for Docker
# Hub's credentials (https://index.docker.io/v1/) to send them to a registry mirror, and dockerd sends
# the same credentials to Docker Hub itself whenever the mirror misses (shown with a real dockerd in
# tests/e2e/test_daemons.py). Subdomains of these count too.
DOCKER_HUB_DOMAINS = ("docker.io", "docker.com")


_ACCOUNT = r"[0-9]{12}"
_REGION = r"[a-z]{2,4}(?:-[a-z]+){1,3}-[0-9]{1,2}"
_ROLE_ARN = r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}"
_SESSION_NAME = r"[\w+=,.@-]{2,64}"
_PROFILE = r"[^\[\]\n\r\t]+"
_EXTERNAL_ID = r"[\w+=,.@:/-]{2,1224}"
_WEB_IDENTITY = r"github|auto|env:[A-Za-z0-9_]+|file:[^\x00]+"  # oidc.check_spec, as a pattern
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


class Key:
    """One key of a ``[[registry]]`` table: the pattern its value must match and the message if not."""

    __slots__ = ("lower", "message", "name", "needs_role", "pattern")

    def __init__(self, name: str, pattern: str, message: str, *, needs_role: bool = False, lower: bool = False) -> None:
        self.name = name
        self.pattern = pattern  # a regular expression the whole (stripped) value must match
        self.message = message  # "{value!r}" is the value
        self.needs_role = needs_role  # a setting of the role to assume: meaningless without role_arn
        self.lower = lower  # compared in lower case


# The [[registry]] keys besides ``match``, in the order they are checked.
REGISTRY_KEYS = (
    Key("profile", _PROFILE, "profile {value!r} is not an AWS profile name"),
    Key("role_arn", _ROLE_ARN, "role_arn {value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
    Key("external_id", _EXTERNAL_ID, "external_id must be 2-1224 letters, digits or +=,.@:/_-", needs_role=True),
    Key(
        "session_name", _SESSION_NAME, "session_name {value!r} must be 2-64 letters, digits or +=,.@_-", needs_role=True
    ),
    Key("region", _REGION, "region {value!r} is not an AWS region name", lower=True),
    Key(
        "web_identity",
        _WEB_IDENTITY,
        "web_identity {value!r} is not a token source: expected github, env:NAME, file:PATH or auto",
    ),
)
RULE_KEYS = ("match", *(key.name for key in REGISTRY_KEYS))


def validate(text: str, path: str) -> Config:
    """Parse and validate config text into a :class:`Config`. Raises ConfigError naming the line."""
    return _Validator(text, path).config()


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
            if registries.parse(host) is not None or registries.mentions_ecr(host):
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
            values: dict[str, str | None] = {}
            for key in REGISTRY_KEYS:
                value = strings[key.name]
                if value is not None:
                    value = value.lower() if key.lower else value
                    # A web identity's session name is its own: the role may come from AWS_ROLE_ARN.
                    web_session = key.name == "session_name" and strings["web_identity"] is not None
                    if key.needs_role and strings["role_arn"] is None and not web_session:
                        raise self.fail(
                            f"{what}{key.name} needs role_arn (it is a setting of the role to assume)", *where, key.name
                        )
                    self.pattern(value, key.pattern, what + key.message, *where, key.name)
                values[key.name] = value
            if strings["web_identity"] is not None and (strings["profile"] or strings["external_id"]):
                raise self.fail(
                    f"{what}web_identity excludes profile and external_id (the token is the credential)",
                    *where,
                    "web_identity",
                )
            rules.append(RegistryTable(match=match, kind=kind, line=self.line_of(*where), **values))
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
