"""doctor's credentials section: where the AWS credentials would come from (the source, the profile and
the AWS files, the variables that matter: a secret's value never shown, a URL's user info masked), the
identity key the cache is keyed by, a CI web identity's claims, instance metadata when it is all there
is, and (without a registry) whether botocore's chain resolves at all.
"""

from __future__ import annotations

import os

from docker_credential_ecr.commands.report import Section
from docker_credential_ecr.errors import DeadlineExceededError
from docker_credential_ecr.identity import SECRET_KEYS, aws_file_paths, describe, parse_ini, selected_profile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker_credential_ecr.config import RegistryTable
    from docker_credential_ecr.settings import Settings

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
