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

The checks are by subject: :mod:`doctor_setup` (registry, environment, docker),
:mod:`doctor_credentials` (credentials), :mod:`doctor_token` (cache, fetch, registry_auth); here they
run in order, and the report they fill in (:class:`report.Section`, text and JSON) is :mod:`report`'s.
Exit status 0 when nothing failed, 1 otherwise, 2 on usage errors. ``--json`` prints the same facts as
one JSON document.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from docker_credential_ecr import registry as registries
from docker_credential_ecr.commands.doctor_credentials import check_credential_chain, check_credentials
from docker_credential_ecr.commands.doctor_setup import check_docker, check_environment, check_registry, load_config
from docker_credential_ecr.commands.doctor_token import check_cache, check_cached_token_at_registry, check_fetch
from docker_credential_ecr.commands.report import Section, failed, report_json, report_text
from docker_credential_ecr.config import Resolution
from docker_credential_ecr.identity import identity_key
from docker_credential_ecr.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

PROG = "docker-credential-ecr-login doctor"


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
