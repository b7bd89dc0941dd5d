"""``docker-credential-ecr-login doctor [REGISTRY]``: what the helper sees, and whether it works.

Sections, each with its facts and its problems (a *failure* means `get` cannot answer this registry
with a token; a *warning* means it works, but worse than it should or only by luck):

- registry: how the server URL parses, through an alias of the config file or not, and the config's
  ``[[registry]]`` table for it (or why it is not an ECR host, or that the fallback helper gets it);
- environment: the helper's settings (cache dir, timeout, ...) and its config file (or its error);
- docker: whether Docker's config routes the host to this helper, and whether PATH finds it;
- credentials: where the AWS credentials would come from, the identity key the cache is keyed
  by, the AWS files and profile, the relevant variables (secret values never shown);
- cache: the cache file, its safety checks, and this registry's entry (age, expiry, fresh/stale/expired);
- fetch: a live GetAuthorizationToken, timed, with its expiry or the exact error line `get` would print;
- registry_auth: the cached token tried at the registry (``GET /v2/`` with basic auth, as docker's
  first request), which docker never reports back: a token the registry refuses (revoked, or the policy
  changed) fails with ``rejected by the registry: run `docker-credential-ecr-login cache clear```.

The live fetch goes through the helper's own fetch path (profile, role, endpoints), with the cache
off: the token, an assumed role's credentials and the parsed config copy are not written. doctor
looks and never changes what the helper will do next (run ``get`` for that).

The checks are here; the report they fill in (:class:`report.Section`, text and JSON) is
:mod:`report`. Exit status 0 when nothing failed, 1 otherwise, 2 on usage errors. ``--json`` prints
the same facts as one JSON document.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from docker_credential_ecr import __version__
from docker_credential_ecr import registry as registries
from docker_credential_ecr.commands import dockerconfig
from docker_credential_ecr.commands.cache import cache_state, describe_entry, iso
from docker_credential_ecr.commands.dockerconfig import EXECUTABLE, HELPER
from docker_credential_ecr.commands.report import Section, failed, report_json, report_text
from docker_credential_ecr.config import Resolution
from docker_credential_ecr.errors import ConfigError, DeadlineExceededError, StoreError, TokenFetchError
from docker_credential_ecr.helper import timeout_line
from docker_credential_ecr.identity import (
    SECRET_KEYS,
    aws_file_paths,
    describe,
    identity_key,
    parse_ini,
    selected_profile,
)
from docker_credential_ecr.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker_credential_ecr.config import Config, RegistryTable
    from docker_credential_ecr.helper import Helper
    from docker_credential_ecr.registry import Registry

PROG = "docker-credential-ecr-login doctor"
# Variables shown by doctor: their values when harmless, only "(set)" for secrets.
SHOWN_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ECR_WEB_IDENTITY",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_ECR_PUBLIC",
    "AWS_ENDPOINT_URL_STS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_CA_BUNDLE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)
SECRET_VARIABLES = frozenset({"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"})


# -- the sections ---------------------------------------------------------------------------------
def check_registry(server_url: str, resolution: Resolution | None, config: Config | None) -> Section:
    section = Section("registry")
    section.facts["input"] = server_url
    section.facts["recognized"] = resolution is not None
    if resolution is None:
        stripped = server_url.strip()
        fallback = config.fallback if config is not None else None
        owned = config.owns(server_url) if config is not None else registries.parse(server_url) is not None
        if stripped.lower().startswith("http://") and (
            owned or registries.parse("https://" + stripped[7:]) is not None
        ):
            section.fail("plain http:// never gets a token (it would travel in clear): use the host or https://")
        elif fallback and not owned:
            section.facts["handed_to"] = f"docker-credential-{fallback}"
            section.warn(
                f"not an ECR registry or alias: this helper hands it to docker-credential-{fallback} "
                "(the config's fallback), which doctor does not check"
            )
        else:
            section.fail(
                "not an ECR or ECR Public registry host (nor an alias in the config file): `get` answers "
                "'credentials not found' and docker pulls anonymously"
            )
        return section
    registry, rule = resolution.registry, resolution.table
    section.facts.update(
        {
            "host": registry.host,
            "alias": resolution.alias,
            "service": registry.service,
            "account": registry.account,
            "region": registry.region,
            "partition": registry.partition,
            "fips": registry.fips,
            "dualstack": registry.dualstack,
        }
    )
    if rule is None:
        section.facts["config_table"] = None
    else:
        table: dict[str, object] = {"match": rule.match, "line": rule.line}
        table.update(rule.settings())
        if rule.role_arn:
            table["sts_region"] = rule.sts_region(registry)
        section.facts["config_table"] = table
    return section


def load_config(environ: Mapping[str, str]) -> tuple[Config | None, str | None, str | None]:
    """(the config, its path, the error that makes it unusable), read the way `get` reads it.

    With the cache off, so that loading leaves no parsed copy behind: doctor changes nothing.
    """
    from docker_credential_ecr import config as configs

    path, _named = configs.config_path(environ)
    try:
        return configs.load(Settings.from_environ({**environ, "AWS_ECR_DISABLE_CACHE": "1"})), path, None
    except ConfigError as exc:
        return None, path, str(exc)


def check_environment(
    settings: Settings, config: Config | None, config_file: str | None, config_error: str | None
) -> Section:
    section = Section("environment")
    try:
        import botocore

        botocore_version: str | None = botocore.__version__
    except ImportError:  # pragma: no cover - a dependency
        botocore_version = None
    section.facts.update(
        {
            "version": __version__,
            "executable": sys.argv[0] if sys.argv else None,
            "python": sys.version.split()[0],
            "botocore": botocore_version,
            "cache_dir": settings.cache_dir,
            "cache_disabled": settings.cache_disabled,
            "timeout_seconds": settings.timeout,
            "log_level": settings.log_level or "off",
            "ignore_creds_storage": settings.ignore_creds_storage,
            "config_file": config_file,
            "config_present": bool(config_file and os.path.isfile(config_file)),
        }
    )
    if config is not None:
        section.facts.update(
            {
                "config_registry_tables": len(config.tables),
                "config_aliases": dict(config.aliases),
                "config_fallback": config.fallback,
            }
        )
    if config is not None and config.refused:
        section.facts["config_refused"] = config.refused
        section.fail(f"{config.refused}: `get` ignores every setting in it until it is fixed")
    if config_error is not None:
        section.facts["config_error"] = config_error
        section.fail(f"{config_error}: `get` answers 'credentials not found' for every registry until it is fixed")
    if settings.cache_disabled:
        section.warn("the token cache is off (AWS_ECR_DISABLE_CACHE): every get calls AWS")
    elif settings.cache_dir is None:
        section.warn("no cache directory (AWS_ECR_CACHE_DIR is not absolute, or no HOME): every get calls AWS")
    return section


def check_docker(environ: Mapping[str, str], host: str | None) -> Section:
    """Does docker route the host to this helper, and can it find the executable?"""
    section = Section("docker")
    path = dockerconfig.config_file(environ)
    section.facts["config_file"] = path
    section.facts["present"] = os.path.exists(path)
    found, shadowed = dockerconfig.on_path(environ)
    section.facts["executable_on_path"] = found
    if found is None:
        section.warn(f"{EXECUTABLE} is not on PATH: docker cannot run it")
    elif shadowed is not None:
        section.warn(f"docker runs {found} (first on PATH), not this {shadowed}")
    doc: dict[str, object] = {}
    if section.facts["present"]:
        doc, problem = dockerconfig.read(path)
        if problem:
            section.warn(f"{path} {problem}: docker fails to read it and uses no helper")
    helpers = doc.get("credHelpers")
    helpers = helpers if isinstance(helpers, dict) else {}
    store = doc.get("credsStore") or None
    section.facts["creds_store"] = store
    if host is None:
        section.facts["hosts_using_this_helper"] = sorted(h for h, v in helpers.items() if v == HELPER)
        return section
    chosen, how = (helpers[host], "credHelpers") if host in helpers else (store, "credsStore" if store else None)
    section.facts["helper_for_host"] = chosen
    section.facts["configured_by"] = how
    if chosen == HELPER:
        return section
    if chosen is None:
        section.warn(
            f"docker does not ask this helper for {host} (no credHelpers entry, no credsStore): "
            f"run `{EXECUTABLE} configure {host}`"
        )
    else:
        section.warn(f"docker asks docker-credential-{chosen} for {host} ({how}), not this helper")
    return section


def _variables(environ: Mapping[str, str]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name in SHOWN_VARIABLES:
        value = environ.get(name)
        if value is None:
            continue
        if name in SECRET_VARIABLES:
            shown[name] = "(set)"
        elif name == "AWS_ACCESS_KEY_ID":
            shown[name] = f"{value[:4]}…{value[-4:]}" if len(value) > 8 else "(set)"
        else:
            shown[name] = _redact_url(value)
    return shown


def _redact_url(value: str) -> str:
    """A URL's user info is the one place a secret could hide in these variables (proxies above all)."""
    from docker_credential_ecr.log import mask_userinfo

    return mask_userinfo(value)


def check_credentials(environ: Mapping[str, str], principal: str, rule: RegistryTable | None = None) -> Section:
    section = Section("credentials")
    profile = rule.profile if rule is not None else None
    config_file, credentials_file = aws_file_paths(environ)
    name = selected_profile(environ, profile)
    explicit = bool(profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE"))
    found_in = []
    for label, path, section_name in (
        ("config", config_file, "default" if name == "default" else f"profile {name}"),
        ("credentials", credentials_file, name),
    ):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                if section_name in parse_ini(f.read()):
                    found_in.append(label)
        except OSError:
            pass
    section.facts.update(
        {
            "source": describe(environ, profile),
            "principal": principal,
            "profile": name,
            "profile_from": "config file" if profile else None,
            "assumes_role": rule.role_arn if rule is not None else None,
            "profile_found_in": found_in,
            "aws_config_file": config_file,
            "aws_config_file_present": os.path.isfile(config_file),
            "aws_credentials_file": credentials_file,
            "aws_credentials_file_present": os.path.isfile(credentials_file),
            "variables": _variables(environ),
        }
    )
    if explicit and not found_in:
        section.fail(
            f"profile {name!r} is in neither {config_file} nor {credentials_file}: "
            f"botocore will refuse it (run `aws configure --profile {name}`)"
        )
    check_web_identity(section, environ, rule)
    if not explicit and not found_in and section.facts["source"] == describe({}, None):
        check_instance_metadata(section, environ)  # the chain's last resort is all there is
    keys = {k for k in environ if k.lower() in SECRET_KEYS}
    if "AWS_ACCESS_KEY_ID" in environ and "AWS_SECRET_ACCESS_KEY" not in keys:
        section.warn("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY: botocore ignores it")
    return section


def check_credential_chain(section: Section, environ: Mapping[str, str], settings: Settings) -> None:
    """Resolve the credentials as botocore would (within the timeout); a failure fails the section."""
    from docker_credential_ecr.credentials import web_identity_setting

    if web_identity_setting(environ, None) is not None:
        return  # the CI's token is the credential, not botocore's chain: check_web_identity reported it
    from docker_credential_ecr import aws
    from docker_credential_ecr.deadline import Deadline

    try:
        with Deadline(settings.timeout):
            problem = aws.credentials_problem(environ)
    except DeadlineExceededError as exc:
        problem = f"loading AWS credentials did not finish ({exc}; AWS_ECR_TIMEOUT): check the network and proxy"
    section.facts["resolved"] = problem is None
    if problem is not None:
        section.fail(problem)


def check_instance_metadata(section: Section, environ: Mapping[str, str]) -> None:
    """Instance metadata (IMDSv2): reachable, and does its token answer reach us (hop limit)?"""
    from docker_credential_ecr import imds

    if not imds.enabled(environ):
        section.facts["instance_metadata"] = "off (AWS_EC2_METADATA_DISABLED)"
        return
    state = imds.probe(environ)
    section.facts["instance_metadata"] = {
        "unreachable": "not reachable (not on EC2, or metadata turned off)",
        "unanswered": "token request unanswered (IMDSv2 hop limit)",
        "no-role": "reachable, no IAM role attached",
        "ok": "reachable, with an IAM role",
    }[state]
    line = imds.diagnose_state(state)
    if line is not None:
        section.fail(line)


def check_web_identity(section: Section, environ: Mapping[str, str], table: RegistryTable | None) -> None:
    """A CI web identity: its source, role and the token's claims (iss, sub, aud, expiry), never the token."""
    from docker_credential_ecr.credentials import web_identity_setting

    web = web_identity_setting(environ, table)
    if web is None:
        return
    from docker_credential_ecr import webidentity

    facts = webidentity.describe(web, environ)
    section.facts["source"] = f"web identity ({facts.get('source', web.spec)})"
    section.facts["web_identity"] = facts
    if facts.get("error"):
        section.fail(str(facts["error"]))
    elif not web.role_arn:
        section.fail(f"{web.origin} needs a role to assume: set AWS_ROLE_ARN (or role_arn in the [[registry]] table)")


def check_cache(settings: Settings, registry: Registry | None, principal: str, now: float) -> Section:
    section = Section("cache")
    state = cache_state(settings, now, current_principal=principal)
    entries = state.pop("entries")
    assert isinstance(entries, list)
    section.facts.update(state)
    section.facts["entries"] = len(entries)
    if state["error"]:
        section.warn(f"the helper cannot use the cache ({state['error']}): every get calls AWS")
    if state["problem"]:
        section.warn(f"{state['path']}: {state['problem']}")
    if registry is None or state["error"]:
        return section
    from docker_credential_ecr.store import Store, token_key

    key = token_key(principal, registry)
    section.facts["key"] = key
    entry = None
    if settings.cache_dir:
        try:
            entry = Store(settings.cache_dir).token(key)
        except StoreError:  # reported above through cache_state
            entry = None
    if entry is None:
        section.facts["entry"] = None
        section.facts["next_get"] = "calls AWS (no token cached for this principal and region)"
        return section
    facts = describe_entry(key, entry, now)
    section.facts["entry"] = facts
    section.facts["next_get"] = {
        "fresh": "answers from the cache, no network",
        "stale": "calls AWS for a new token; serves this one if that fails",
        "expired": "calls AWS (the cached token has expired)",
    }[str(facts["status"])]
    if not settings.cache_file:
        section.facts["next_get"] = "calls AWS (the cache is off)"
    return section


def check_fetch(helper: Helper, resolution: Resolution, settings: Settings, cached_expiry: float | None) -> Section:
    """A live GetAuthorizationToken through the helper's own fetch path, timed; the token is dropped."""
    # Imported before the clock starts: time the fetch, not botocore's import.
    from docker_credential_ecr import aws  # noqa: F401
    from docker_credential_ecr.deadline import Deadline

    section = Section("fetch")
    started = time.monotonic()
    error = None
    try:
        with Deadline(settings.timeout):
            token = helper.fetch(resolution)
    except TokenFetchError as exc:
        error = str(exc)
    except DeadlineExceededError as exc:
        error = timeout_line(resolution.registry, exc)
    except Exception as exc:  # a bug: `get` would answer not-found; say what it was
        error = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
    elapsed = time.monotonic() - started
    section.facts["elapsed_ms"] = round(elapsed * 1000)
    section.facts["ok"] = error is None
    if error is not None:
        section.facts["error"] = error
        message = error
        if cached_expiry is not None and cached_expiry > time.time():
            message += f" (the cached token still works until {iso(cached_expiry)})"
        section.fail(message)
        return section
    now = time.time()
    section.facts.update(
        {
            "username": token.username,
            "issued_at": iso(token.issued_at),
            "expires_at": iso(token.expires_at),
            "expires_in_seconds": round(token.expires_at - now, 1),
            "written_to_cache": False,
        }
    )
    del token
    return section


def check_cached_token_at_registry(settings: Settings, resolution: Resolution, principal: str, now: float) -> Section:
    """``GET /v2/`` at the registry (or the alias docker talks to) with the cached token.

    docker never tells the helper that a registry refused its answer, so a token the registry no longer
    takes (revoked, or the policy changed) keeps being served from the cache: this says so."""
    from http.client import HTTPException

    from docker_credential_ecr.commands.registry_probe import probe, registry_url
    from docker_credential_ecr.store import Store, token_key

    section = Section("registry_auth")
    entry = None
    if settings.cache_dir:
        try:
            entry = Store(settings.cache_dir).token(token_key(principal, resolution.registry))
        except StoreError:  # reported in the cache section
            entry = None
    if entry is None:
        section.skipped = "no cached token for this principal and region"
        return section
    if entry.expires_at <= now:
        section.skipped = "the cached token has expired"
        return section
    url = registry_url(resolution.host)
    section.facts["url"] = url
    started = time.monotonic()
    try:
        status = probe(resolution.host, entry.username, entry.password, settings.timeout)
    except (OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        reason_text = " ".join(str(reason).split()) or type(exc).__name__
        section.warn(f"could not ask {url} about the cached token: {reason_text}")
        return section
    section.facts["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    section.facts["http_status"] = status
    section.facts["accepted"] = 200 <= status < 300
    if status in (401, 403):
        section.fail(f"rejected by the registry: run `{EXECUTABLE} cache clear`")
    elif not 200 <= status < 300:
        section.warn(f"{url} answered HTTP {status}: cannot tell whether the registry takes the cached token")
    return section


# -- the report -----------------------------------------------------------------------------------
def diagnose(server_url: str | None, *, fetch: bool, environ: Mapping[str, str]) -> list[Section]:
    from docker_credential_ecr.config import EMPTY
    from docker_credential_ecr.helper import Helper

    settings = Settings.from_environ(environ)
    config, config_file, config_error = load_config(environ)

    def quiet(message: str) -> None:
        pass

    helper = Helper(settings, warn=quiet, config=config or EMPTY)
    now = time.time()
    resolution = None
    if server_url is not None:
        resolution = (config or EMPTY).resolve(server_url)
        if resolution is None and config is None:  # config unreadable: still explain the host itself
            parsed = registries.parse(server_url)
            resolution = Resolution(parsed, parsed.host, None, None) if parsed is not None else None
    registry = resolution.registry if resolution is not None else None
    principal = helper.identity_key(resolution) if resolution is not None else identity_key(environ)
    sections = []
    if server_url is not None:
        sections.append(check_registry(server_url, resolution, config))
    sections.append(check_environment(settings, config, config_file, config_error))
    sections.append(check_docker(environ, resolution.host if resolution is not None else None))
    sections.append(check_credentials(environ, principal, resolution.table if resolution is not None else None))
    cache = check_cache(settings, registry, principal, now)
    sections.append(cache)
    if server_url is None:
        if fetch:  # no registry to fetch for: still find out whether the credentials resolve
            check_credential_chain(sections[-2], environ, settings)
        return sections
    skipped = None
    if registry is None:
        skipped = "not an ECR registry"
    elif config is None:
        skipped = "the config file is invalid"
    elif not fetch:
        skipped = "--no-fetch"
    if resolution is None or skipped is not None:
        section = Section("fetch")
        section.skipped = skipped
        sections.append(section)
        at_registry = Section("registry_auth")
        at_registry.skipped = skipped
        sections.append(at_registry)
        return sections
    entry = cache.facts.get("entry")
    cached_expiry = None
    if isinstance(entry, dict) and entry.get("status") != "expired":
        cached_expiry = now + float(entry["expires_in_seconds"])
    # The cache is off for the probe: the token (and an assumed role's credentials) stay unwritten.
    probe = Helper(Settings.from_environ({**environ, "AWS_ECR_DISABLE_CACHE": "1"}), warn=quiet, config=config)
    sections.append(check_fetch(probe, resolution, settings, cached_expiry))
    sections.append(check_cached_token_at_registry(settings, resolution, principal, now))
    return sections


# -- the command ----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Explain what the helper sees for a registry: how the host parses, the settings, whether\n"
            "Docker's config routes the host here, where AWS credentials come from (never a secret),\n"
            "the token cache, a live token fetch with its timing or its exact error, and whether the\n"
            "registry takes the cached token (GET /v2/ with it). The fetched token is not stored.\n"
            "Exit status: 0 when nothing failed, 1 otherwise."
        ),
        epilog=(
            "examples:\n"
            f"  {PROG} 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n"
            f"  {PROG} public.ecr.aws --json | jq .sections.fetch\n"
            f"  {PROG} --no-fetch          # settings, docker config, credentials and cache only"
        ),
    )
    parser.add_argument("registry", nargs="?", metavar="REGISTRY", help="a registry host or URL, as docker sends it")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--no-fetch", action="store_true", help="do not call AWS or the registry (local checks only)")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    sections = diagnose(args.registry, fetch=not args.no_fetch, environ=os.environ)
    if args.json:
        sys.stdout.write(report_json(args.registry, sections))
    else:
        sys.stdout.write(report_text(args.registry, sections, time.time()))
    return 1 if failed(sections) else 0
