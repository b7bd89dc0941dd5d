"""``docker-credential-ecr-login cache show|clear|path``: the token cache, never the tokens.

``show`` lists what the cache holds (whose token, for which service and region, for which hosts,
when it was issued and expires, and whether `get` would serve it); ``clear`` empties the file
through :class:`~docker_credential_ecr.store.Store`, so the lock and the atomic write are the
helper's own; ``path`` prints where the file is. No password is ever read out of an entry.

:func:`describe_entry` and :func:`inspect_file` are shared with ``doctor``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from docker_credential_ecr import jsonwire
from docker_credential_ecr.errors import StoreError
from docker_credential_ecr.identity import identity_key
from docker_credential_ecr.mfa import MIN_LEFT, is_session_key
from docker_credential_ecr.settings import Settings
from docker_credential_ecr.store import MAX_FILE_BYTES, SCHEMA, VERSION, Store, Token, parse_document

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

PROG = "docker-credential-ecr-login cache"
NO_DIRECTORY = "no cache directory: AWS_ECR_CACHE_DIR must be an absolute path, or unset with HOME set"


# -- facts about entries, shared with doctor ------------------------------------------------------
def split_key(key: str) -> dict[str, object]:
    """A token key's parts: ``identity/service/region/fips/dualstack`` (see store.token_key).

    The identity key is reported as ``principal`` (the name 0.1.0's JSON gave it).
    """
    parts = key.split("/")
    if len(parts) != 5:
        return {"principal": key, "service": None, "region": None, "fips": None, "dualstack": None}
    principal, service, region, fips, dualstack = parts
    return {
        "principal": principal,
        "service": service,
        "region": region,
        "fips": fips == "fips",
        "dualstack": dualstack == "dualstack",
    }


def entry_status(entry: Token, now: float) -> str:
    """``fresh`` (served as is), ``stale`` (refreshed on the next get; served if that fails), ``expired``."""
    if entry.is_fresh(now):
        return "fresh"
    if entry.is_usable(now):
        return "stale"
    return "expired"


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def duration(seconds: float) -> str:
    """``3 h 05 min``, ``12 min``, ``40 s``: for people; JSON carries the seconds."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def relative(epoch: float, now: float) -> str:
    """``in 3 h 05 min`` or ``12 min ago``."""
    return f"in {duration(epoch - now)}" if epoch >= now else f"{duration(now - epoch)} ago"


def describe_entry(key: str, entry: Token, now: float) -> dict[str, object]:
    """Everything about an entry but its password, as JSON-ready facts."""
    facts: dict[str, object] = {"key": key, **split_key(key)}
    facts.update(
        {
            "hosts": list(entry.hosts),
            "username": entry.username,
            "issued_at": iso(entry.issued_at),
            "expires_at": iso(entry.expires_at),
            "age_seconds": round(now - entry.issued_at, 1),
            "expires_in_seconds": round(entry.expires_at - now, 1),
            "refresh_at": iso((entry.issued_at + entry.expires_at) / 2),
            "status": entry_status(entry, now),
        }
    )
    return facts


def inspect_file(path: str) -> str | None:  # noqa: PLR0911 - one return per kind of problem reads best
    """Why the cache file's content is not used (None when it is fine or absent).

    The helper reads such a file as an empty cache and replaces it on its next write; this only says so.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES:
        return f"the file is larger than {MAX_FILE_BYTES} bytes; it is ignored"
    try:
        doc = jsonwire.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return "the file is not valid JSON (a foreign or damaged file); it is ignored and replaced on the next write"
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return "the file is not a docker-credential-ecr cache; it is ignored and replaced on the next write"
    if doc.get("version") != VERSION:
        return f"the file has cache version {doc.get('version')!r}, this helper reads {VERSION}; it is ignored"
    raw = doc.get("entries")
    if not isinstance(raw, dict):
        return "the file has no entries object; it is ignored and replaced on the next write"
    dropped = len(raw) - len(parse_document(data.decode("utf-8", "replace")))
    if dropped:
        return f"{dropped} malformed entr{'y is' if dropped == 1 else 'ies are'} ignored"
    return None


def cache_state(settings: Settings, now: float, current_principal: str | None = None) -> dict[str, object]:
    """The cache file, whether the helper uses it, any problem with it, and its entries (no secrets).

    ``error`` is set when the file or directory cannot be used safely (the helper then runs without a
    cache); ``problem`` when its content is ignored.
    """
    directory = settings.cache_dir
    path = Store(directory).path if directory else None
    state: dict[str, object] = {
        "path": path,
        "enabled": settings.cache_file is not None,
        "disabled_by": "AWS_ECR_DISABLE_CACHE" if settings.cache_disabled else None,
        "exists": bool(path and os.path.lexists(path)),
        "error": None,
        "problem": None,
        "entries": [],
    }
    if directory is None:
        state["error"] = NO_DIRECTORY
        return state
    try:
        entries = Store(directory).tokens()
    except StoreError as exc:
        state["error"] = str(exc)
        return state
    if path and state["exists"]:
        state["problem"] = inspect_file(path)
    described = []
    for key, entry in sorted(entries.items()):
        facts = describe_entry(key, entry, now)
        if current_principal is not None:
            facts["current_environment"] = facts["principal"] == current_principal
        described.append(facts)
    state["entries"] = described
    return state


# -- the command ----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Show, clear or locate the token cache. Tokens and passwords are never shown. "
            "The cache lives in AWS_ECR_CACHE_DIR, else the user cache directory "
            "(~/.cache/docker-credential-ecr on Linux)."
        ),
    )
    sub = parser.add_subparsers(dest="action", metavar="{show,clear,path}")
    sub.required = True
    show = sub.add_parser(
        "show",
        prog=f"{PROG} show",
        help="list cached tokens: principal, service, region, hosts, issue and expiry times, status",
        description=(
            "List the cache entries. Status: fresh = served without calling AWS; stale = past half its "
            "life, refreshed on the next get (and served if that fails); expired = never served."
        ),
    )
    show.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    sub.add_parser(
        "clear",
        prog=f"{PROG} clear",
        help="remove every cached token and stored credential (assumed roles)",
        description=(
            "Remove every entry from the cache file and from the stored AWS credentials beside it "
            "(assumed roles; under each file's lock, atomically)."
        ),
    )
    sub.add_parser("path", prog=f"{PROG} path", help="print the cache file's path", description="Print the path.")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_environ(os.environ)
    if args.action == "path":
        return _path(settings)
    if args.action == "clear":
        return _clear(settings)
    return _show(settings, as_json=args.json, environ=os.environ)


def _error(message: str) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 1


def _warning(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {message}\n")


def _path(settings: Settings) -> int:
    if settings.cache_dir is None:
        return _error(NO_DIRECTORY)
    if settings.cache_disabled:
        _warning("the helper does not use this cache: AWS_ECR_DISABLE_CACHE is set")
    sys.stdout.write(Store(settings.cache_dir).path + "\n")
    return 0


def _clear(settings: Settings) -> int:
    """Empty the token cache and the AWS credentials kept beside it."""
    if settings.cache_dir is None:
        return _error(NO_DIRECTORY)
    status = 0
    store = Store(settings.cache_dir)
    if not os.path.lexists(store.path):
        sys.stdout.write(f"no cache file at {store.path}: nothing to clear\n")
    for path, clear, one, many, present in (
        (store.path, store.clear, "entry", "entries", os.path.lexists(store.path)),
        (
            store.credentials_path,
            lambda: store.clear_credentials(keep=is_session_key),  # MFA sessions stay: login is by hand
            "stored credential",
            "stored credentials",
            os.path.lexists(store.credentials_path),
        ),
    ):
        if not present:
            continue
        try:
            removed = clear()
        except StoreError as exc:
            status = _error(str(exc))
            continue
        sys.stdout.write(f"removed {removed} {one if removed == 1 else many} from {path}\n")
    return status


def credentials_state(settings: Settings, now: float) -> dict[str, object] | None:
    """The stored AWS credentials (assumed roles, ...): file and entries (whose, kind, times; never a secret)."""
    if settings.cache_dir is None:
        return None
    store = Store(settings.cache_dir)
    path = store.credentials_path
    state: dict[str, object] = {"path": path, "exists": os.path.lexists(path), "error": None}
    try:
        entries = store.all_credentials()
    except StoreError as exc:
        state["error"] = str(exc)
        entries = {}
    described = []
    sessions = []
    for key, creds in sorted(entries.items()):
        who, _, rest = key.partition("/")
        kind, _, scope = rest.partition("/")
        if is_session_key(key):
            live = creds.expires_at - now >= MIN_LEFT
            sessions.append(
                {"profile": scope, "expires_at": iso(creds.expires_at), "status": "live" if live else "expired"}
            )
            continue
        described.append(
            {
                "principal": who,
                "kind": kind,
                "partition": scope,
                "issued_at": iso(creds.issued_at),
                "expires_at": iso(creds.expires_at),
                "status": "fresh" if creds.is_fresh(now) else ("stale" if creds.expires_at > now else "expired"),
            }
        )
    state["entries"] = described
    state["mfa_sessions"] = sessions
    return state


def current_principals(environ: Mapping[str, str]) -> Callable[[str], str | None]:
    """For a host, the principal this environment (and the config file's tables) would cache it under."""
    from docker_credential_ecr import config as configs
    from docker_credential_ecr.errors import ConfigError
    from docker_credential_ecr.helper import Helper

    quiet = Settings.from_environ({**environ, "AWS_ECR_DISABLE_CACHE": "1"})  # loading writes nothing
    try:
        config = configs.load(quiet)
    except ConfigError:
        config = configs.EMPTY
    helper = Helper(quiet, config=config, warn=lambda message: None)

    def principal_for(host: str) -> str | None:
        resolution = config.resolve(host)
        return helper.identity_key(resolution) if resolution is not None else None

    return principal_for


def _show(settings: Settings, *, as_json: bool, environ: Mapping[str, str]) -> int:
    now = time.time()
    state = cache_state(settings, now)
    entries = state["entries"]
    assert isinstance(entries, list)
    principal_for = current_principals(environ)
    mine = {identity_key(environ)}
    for facts in entries:
        hosts = facts["hosts"]
        assert isinstance(hosts, list)
        facts["current_environment"] = any(principal_for(h) == facts["principal"] for h in hosts) or (
            not hosts and facts["principal"] in mine
        )
        if facts["current_environment"]:
            mine.add(str(facts["principal"]))
    roles = credentials_state(settings, now) if not state["error"] else None
    if roles is not None:
        for facts in roles["entries"]:  # type: ignore[attr-defined]
            facts["current_environment"] = facts["principal"] in mine
    state["stored_credentials"] = roles
    if as_json:
        sys.stdout.write(json.dumps(state, indent=2) + "\n")
        return 1 if state["error"] else 0
    if state["error"]:
        return _error(str(state["error"]))
    lines = []
    note = "" if state["enabled"] else " (not used by the helper: AWS_ECR_DISABLE_CACHE is set)"
    if not state["exists"]:
        lines.append(f"{state['path']}: no cache file yet{note}")
    else:
        count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
        lines.append(f"{state['path']}: {count}{note}")
    if state["problem"]:
        lines.append(f"  note: {state['problem']}")
    for facts in entries:
        lines.extend(_entry_lines(facts, now))
    if roles is not None and (roles["exists"] or roles["error"]):
        lines.extend(_role_lines(roles))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _role_lines(roles: Mapping[str, object]) -> list[str]:
    entries, sessions = roles["entries"], roles.get("mfa_sessions") or []
    assert isinstance(entries, list)
    assert isinstance(sessions, list)
    lines = ["", f"{roles['path']}: {len(entries)} stored credential{'' if len(entries) == 1 else 's'}"]
    if roles["error"]:
        lines.append(f"  note: not used: {roles['error']}")
    for facts in entries:
        mine = "  (this environment)" if facts.get("current_environment") else ""
        lines.append(
            f"  {facts['status']:<8} principal {facts['principal']}{mine}, {facts['kind']}, "
            f"partition {facts['partition']}, "
            f"expires {facts['expires_at']}"
        )
    for facts in sessions:
        lines.append(
            f"  {facts['status']:<8} MFA session of profile {facts['profile']}, expires {facts['expires_at']} "
            "(kept by cache clear; logout forgets it)"
        )
    return lines


def _entry_lines(facts: Mapping[str, object], now: float) -> list[str]:
    flags = [name for name, on in (("FIPS", facts["fips"]), ("dual-stack", facts["dualstack"])) if on]
    where = f"{facts['service']} {facts['region']}" + (f" ({', '.join(flags)})" if flags else "")
    mine = "  (this environment)" if facts.get("current_environment") else ""
    issued = now - float(facts["age_seconds"])  # type: ignore[arg-type]
    expires = now + float(facts["expires_in_seconds"])  # type: ignore[arg-type]
    hosts = facts["hosts"]
    assert isinstance(hosts, list)
    return [
        "",
        f"{where}: {facts['status']}",
        f"  principal  {facts['principal']}{mine}",
        f"  hosts      {', '.join(hosts) if hosts else '-'}",
        f"  issued     {facts['issued_at']} ({relative(issued, now)})",
        f"  expires    {facts['expires_at']} ({relative(expires, now)}), refreshed after {facts['refresh_at']}",
    ]
