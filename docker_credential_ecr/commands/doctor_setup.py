"""doctor's checks of what the helper is set up with: the registry (how the host parses, through an alias
or not, and the config's ``[[registry]]`` table), the environment (settings, the config file or why it is
refused), and docker (does Docker's config route the host here, does PATH find the helper).
"""

from __future__ import annotations

import os
import sys

from docker_credential_ecr import __version__
from docker_credential_ecr import registry as registries
from docker_credential_ecr.commands import dockerconfig
from docker_credential_ecr.commands.dockerconfig import EXECUTABLE, HELPER
from docker_credential_ecr.commands.report import Section
from docker_credential_ecr.errors import ConfigError
from docker_credential_ecr.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker_credential_ecr.config import Config, Resolution


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
