"""``docker-credential-ecr-login configure``: point Docker's ``credHelpers`` at this helper.

Edits ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``) the way docker itself would
read it back: only ``credHelpers`` entries (and, when asked, ``credsStore``) change; every other key,
the key order, the indentation and the file's mode stay. The new file is written beside the old one,
fsynced and renamed over it, so docker never reads half a file; a symlinked config.json is edited
where it points. A host that already uses another helper is left alone unless ``--force``; a file
that is not valid JSON is never overwritten.

Hosts come from the command line in any spelling :func:`registry.parse` accepts, or are built from
``--account`` and ``--region`` (the AWS default region, every region of a partition with
``--all-regions``, or the caller's own account from STS GetCallerIdentity when ``--account`` is
left out). Keys are written in the canonical form docker looks up: the bare lower-case host.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys

from docker_credential_ecr import registry as registries
from docker_credential_ecr.commands.dockerconfig import (
    EXECUTABLE,
    FILE_NAME,
    HELPER,
    DockerConfigError,
    docker_config_dir,
    load,
    on_path,
    render,
    write_atomically,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

PROG = "docker-credential-ecr-login configure"
# Classic `docker build` (and compose's use_api_socket) runs `get` for every credHelpers entry
# before each build; docker-credential-gcr's configure-docker warns about long lists for that reason.
MANY_HELPERS = 16
_ACCOUNT = re.compile(r"[0-9]{12}", re.ASCII)


class ConfigureError(Exception):
    """Something the user must fix; one line, exit 1."""


class UsageError(Exception):
    """Arguments that cannot mean anything; exit 2 with the usage line."""


# -- which hosts ----------------------------------------------------------------------------------
def _split(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated values, in order, without duplicates or blanks."""
    out: list[str] = []
    for value in values or ():
        for raw in value.split(","):
            item = raw.strip()
            if item and item not in out:
                out.append(item)
    return out


def _session(profile: str | None) -> Any:
    from docker_credential_ecr import aws

    return aws.make_session(profile)


def default_region(session: Any, environ: Mapping[str, str] = os.environ) -> str | None:
    """AWS_REGION (which the AWS CLI v2 and most SDKs read, botocore not), else botocore's default region."""
    region = environ.get("AWS_REGION") or session.region_name
    return str(region) if region else None


def partition_regions(session: Any, partition: str) -> list[str]:
    """Every region where botocore's bundled endpoint data lists ECR in ``partition`` (no network)."""
    return sorted(session.get_available_regions("ecr", partition_name=partition))


def caller_account(session: Any, region: str) -> str:
    """The account of the caller's credentials, from STS GetCallerIdentity (one network call)."""
    from docker_credential_ecr.aws import sts_client

    try:
        client = sts_client(session, region, environ=os.environ)
        account = client.get_caller_identity().get("Account")
    except Exception as exc:  # every failure becomes one line the user can act on
        text = " ".join(str(exc).split())
        raise ConfigureError(f"cannot find your account with STS GetCallerIdentity ({text}); pass --account") from None
    if not (isinstance(account, str) and _ACCOUNT.fullmatch(account)):
        raise ConfigureError("STS GetCallerIdentity returned no account; pass --account")
    return account


def wanted_hosts(args: argparse.Namespace) -> list[str]:
    """The canonical hosts the arguments name, in order, without duplicates."""
    hosts: list[str] = []

    def add(host: str) -> None:
        if host not in hosts:
            hosts.append(host)

    for name in args.registries:
        parsed = registries.parse(name)
        if parsed is not None:
            add(parsed.host)
            continue
        if name.strip().lower().startswith("http://") and registries.parse("https://" + name.strip()[7:]):
            raise UsageError(f"{name!r}: a plain http:// registry never gets a token (it would travel in clear)")
        add(_alias(name))
    if args.public:
        add("ecr-public.aws.com" if args.dualstack else "public.ecr.aws")
    for host in _account_hosts(args):
        add(host)
    return hosts


def _alias(name: str) -> str:
    """The host (with its port, if any) of an alias in the helper's config file; docker looks it up so."""
    from docker_credential_ecr import config as configs
    from docker_credential_ecr.errors import ConfigError
    from docker_credential_ecr.settings import Settings

    try:  # with the cache off: reading the config leaves no parsed copy behind
        config = configs.load(Settings.from_environ({**os.environ, "AWS_ECR_DISABLE_CACHE": "1"}))
    except ConfigError as exc:
        raise UsageError(f"{name!r} is not an ECR registry host, and the config file is unusable: {exc}") from None
    resolution = config.resolve(name)
    if resolution is None or resolution.alias is None:
        raise UsageError(f"{name!r} is not an ECR or ECR Public registry host, nor an alias in the config file")
    return resolution.host


def _account_hosts(args: argparse.Namespace) -> list[str]:
    """The hosts of ``--account`` x ``--region``/``--all-regions`` (the caller's account when none is named)."""
    accounts = _split(args.account)
    regions = _split(args.region)
    if not (accounts or regions or args.all_regions):
        return []
    for account in accounts:
        if not _ACCOUNT.fullmatch(account):
            raise UsageError(f"--account {account!r} is not a 12-digit AWS account id")
    session = _session(args.profile)
    if args.all_regions:
        partition = args.partition or _partition_of(session, default_region(session))
        regions = partition_regions(session, partition)
        if not regions:
            raise UsageError(f"botocore knows no ECR regions in partition {partition!r}")
    elif not regions:
        region = default_region(session)
        if region is None:
            raise UsageError("no region: pass --region (or set AWS_REGION, or a region in the AWS profile)")
        regions = [region]
    if not accounts:
        home = default_region(session)
        sts_region = home if home in regions else ("us-east-1" if "us-east-1" in regions else regions[0])
        accounts = [caller_account(session, sts_region)]
    hosts = []
    for account in accounts:
        for region in regions:
            host = registries.host_for(account, region, fips=args.fips, dualstack=args.dualstack)
            if host is None:
                kind = " ".join(k for k, on in (("FIPS", args.fips), ("dual-stack", args.dualstack)) if on)
                raise UsageError(f"ECR has no {kind + ' ' if kind else ''}registry host in region {region!r}")
            hosts.append(host)
    return hosts


def _partition_of(session: Any, region: str | None) -> str:
    if region:
        try:
            return str(session.get_partition_for_region(region))
        except Exception:  # an unknown region: the commercial partition
            return "aws"
    return "aws"


# -- the document ---------------------------------------------------------------------------------
class Plan:
    """What configure will change, decided before anything is written."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.replaced: list[tuple[str, str]] = []
        self.unchanged: list[str] = []
        self.conflicts: list[tuple[str, str]] = []
        self.creds_store: tuple[str | None, str] | None = None  # (old, new) when it changes
        self.creds_store_conflict: str | None = None


def plan_changes(doc: dict[str, Any], hosts: Sequence[str], *, creds_store: bool, force: bool) -> Plan:
    """Apply the wanted entries to ``doc`` in place (unless they conflict) and say what changed."""
    plan = Plan()
    current = doc.get("credHelpers") or {}
    for host in hosts:
        existing = current.get(host)
        if existing == HELPER:
            plan.unchanged.append(host)
        elif existing is None:
            plan.added.append(host)
        elif force:
            plan.replaced.append((host, str(existing)))
        else:
            plan.conflicts.append((host, json.dumps(existing)))
    if creds_store:
        _plan_creds_store(plan, doc.get("credsStore"), force=force)
    if plan.conflicts or plan.creds_store_conflict:
        return plan
    if plan.added or plan.replaced:
        helpers = doc.setdefault("credHelpers", {})
        for host in (*plan.added, *(h for h, _ in plan.replaced)):
            helpers[host] = HELPER
    if plan.creds_store is not None:
        doc["credsStore"] = HELPER
    return plan


def _plan_creds_store(plan: Plan, old: object, *, force: bool) -> None:
    if old == HELPER:
        return
    if not old or force:
        plan.creds_store = (str(old) if old else None, HELPER)
    else:
        plan.creds_store_conflict = json.dumps(old)


# -- warnings -------------------------------------------------------------------------------------
def path_warning(environ: Mapping[str, str]) -> str | None:
    """Docker finds the helper by name on PATH: say so when it would not find this one."""
    found, shadowed = on_path(environ)
    if found is None:
        return (
            f"{EXECUTABLE} is not on PATH, so docker will not find it: "
            "add its directory to PATH (or link it into /usr/local/bin)"
        )
    if shadowed is not None:
        return f"docker will run {found} (first on PATH), not this {shadowed}"
    return None


# -- the command ----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            'Add "credHelpers" entries mapping ECR registries to this helper ("ecr-login") in\n'
            "$DOCKER_CONFIG/config.json (default ~/.docker/config.json). Other keys, their order, the\n"
            "indentation and the file mode are kept; the file is replaced atomically."
        ),
        epilog=(
            "examples:\n"
            f"  {PROG} 123456789012.dkr.ecr.eu-west-1.amazonaws.com public.ecr.aws\n"
            f"  {PROG} --account 123456789012 --region us-east-1,eu-west-1\n"
            f"  {PROG} --region us-west-2          # your own account, from STS\n"
            f"  {PROG} --account 123456789012 --all-regions --dry-run\n"
            f"  {PROG} --credsstore               # every registry through this helper"
        ),
    )
    parser.add_argument(
        "registries", nargs="*", metavar="REGISTRY", help="a registry host or URL (any spelling docker sends)"
    )
    parser.add_argument(
        "--account",
        action="append",
        metavar="ID",
        help="a 12-digit account id (repeat or comma-separate); without it, --region asks STS for yours",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--region",
        "--regions",
        action="append",
        metavar="R",
        help="region(s) for --account (repeat or comma-separate); default: the AWS default region",
    )
    where.add_argument(
        "--all-regions",
        action="store_true",
        help="every region with ECR in the partition (botocore's bundled endpoint data; no network)",
    )
    parser.add_argument(
        "--partition",
        metavar="P",
        help="partition for --all-regions (aws, aws-cn, aws-us-gov, ...); default: that of the default region",
    )
    parser.add_argument("--fips", action="store_true", help="write the FIPS hosts (dkr.ecr-fips...) for --account")
    parser.add_argument(
        "--dualstack", action="store_true", help="write the dual-stack hosts (dkr-ecr...on.aws, ecr-public.aws.com)"
    )
    parser.add_argument("--public", action="store_true", help="also ECR Public (public.ecr.aws)")
    parser.add_argument("--profile", help="the AWS profile for the default region and the STS account lookup")
    parser.add_argument(
        "--credsstore",
        action="store_true",
        help='also set "credsStore" to ecr-login (docker then asks this helper for every registry)',
    )
    parser.add_argument("--force", action="store_true", help="replace entries that name another helper")
    parser.add_argument("--dry-run", action="store_true", help="print the change as a unified diff; write nothing")
    parser.add_argument("--docker-config", metavar="DIR", help="the Docker config directory (default: $DOCKER_CONFIG)")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.partition and not args.all_regions:
        parser.error("--partition only goes with --all-regions")
    try:
        hosts = wanted_hosts(args)
    except UsageError as exc:
        parser.error(str(exc))
    except ConfigureError as exc:
        return _error(str(exc))
    if not hosts and not args.credsstore:
        parser.error("name at least one registry, or --account/--region/--all-regions, --public or --credsstore")
    try:
        return _configure(args, hosts)
    except (ConfigureError, DockerConfigError) as exc:
        return _error(str(exc))


def _configure(args: argparse.Namespace, hosts: list[str]) -> int:
    directory = docker_config_dir(os.environ, args.docker_config)
    shown = os.path.join(directory, FILE_NAME)
    path = os.path.realpath(shown)  # edit a symlinked config.json where it points, as docker does
    original, doc, st = load(path)
    plan = plan_changes(doc, hosts, creds_store=args.credsstore, force=args.force)
    if plan.conflicts or plan.creds_store_conflict:
        for host, helper in plan.conflicts:
            _error_line(f"{host} already uses the credential helper {helper} in {shown}; use --force to replace it")
        if plan.creds_store_conflict:
            _error_line(f'"credsStore" is already {plan.creds_store_conflict} in {shown}; use --force to replace it')
        return 1
    if not (plan.added or plan.replaced or plan.creds_store):
        sys.stdout.write(f"{shown}: already configured, nothing to change\n")
        _warnings(doc, plan)
        return 0
    text = render(doc, original)
    if args.dry_run:
        before = (original or "").splitlines(keepends=True)
        diff = difflib.unified_diff(
            before, text.splitlines(keepends=True), "/dev/null" if original is None else shown, shown
        )
        sys.stdout.write("".join(line if line.endswith("\n") else line + "\n" for line in diff))
        _warnings(doc, plan)
        return 0
    write_atomically(path, text, st)
    lines = [f"updated {shown}:"]
    lines.extend(f'  added     "{host}": "{HELPER}"' for host in plan.added)
    lines.extend(f'  replaced  "{host}": "{old}" -> "{HELPER}"' for host, old in plan.replaced)
    lines.extend(f'  unchanged "{host}"' for host in plan.unchanged)
    if plan.creds_store is not None:
        old = plan.creds_store[0]
        change = f'"{old}" -> "{HELPER}"' if old else f'"{HELPER}"'
        lines.append(f"  credsStore {change}")
    sys.stdout.write("\n".join(lines) + "\n")
    _warnings(doc, plan)
    return 0


def _warnings(doc: Mapping[str, Any], plan: Plan) -> None:
    warning = path_warning(os.environ)
    if warning:
        _warning(warning)
    helpers = doc.get("credHelpers") or {}
    if len(helpers) > MANY_HELPERS:
        _warning(
            f"{len(helpers)} credHelpers entries: classic `docker build` runs a helper for every one of them "
            "before each build; keep only the registries you use"
        )
    if plan.creds_store is not None:
        old = plan.creds_store[0]
        auths = doc.get("auths")
        inline = isinstance(auths, dict) and any(isinstance(v, dict) and v.get("auth") for v in auths.values())
        if old or inline:
            where = f'in the "{old}" store' if old else 'in "auths"'
            _warning(
                f'with "credsStore": "{HELPER}", docker no longer finds the logins kept {where} for other '
                "registries, and `docker login` cannot store new ones"
            )


def _error_line(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")


def _error(message: str) -> int:
    _error_line(message)
    return 1


def _warning(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {message}\n")
