"""Who is asking: the store's identity key, derived from local inputs only, never from the network.

The Go helper resolves credentials to build its cache key, so every hit pays for SSO, STS or instance
metadata round trips, and the key changes whenever temporary credentials rotate. Here the key is a
hash of every *input* that can change which principal botocore would resolve: the credential
environment variables, the selected profile's sections in the shared config and credentials files
(and the profiles and SSO sessions they chain to), and the helper's own per-registry settings. They
are taken whatever botocore's precedence: over-including costs one cache miss, under-including would
serve one principal's token to another. Secret values are never part of it.

Where the identity is in a token rather than a variable (EKS Pod Identity's container authorization
token, a web identity token file), the token's stable claims count (``iss``, ``sub``, ``aud``, read
unverified): a rotated token names the same principal and costs no miss, another pod's token names
another. A token that is not a JWT counts by its digest. Instance credentials belong to the host: the
machine identifier and host name count, so two hosts sharing a home directory (EFS, NFS) never share
a token. So a cache directory serves one identity per key and may be shared by any number of them.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

try:  # hashlib loads OpenSSL (about 0.3x an interpreter start); the builtin BLAKE2 module is enough
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - some builds only ship hashlib
    from hashlib import blake2b

# Inputs that decide the principal. Secrets (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
# AWS_CONTAINER_AUTHORIZATION_TOKEN) are deliberately absent: a new secret comes with a new key id,
# a new role session or a new token file anyway. Endpoint overrides are here because a token from
# one endpoint is worthless at another.
ENV_INPUTS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCOUNT_ID",
    "AWS_CREDENTIAL_FILE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_IMDS_USE_IPV6",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_ECR_PUBLIC",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_DATA_PATH",
    "AWS_LOGIN_CACHE_DIRECTORY",
    "BOTOCORE_EXPERIMENTAL__PLUGINS",
)
# Files whose content names the principal: (environment variable naming the file, label).
TOKEN_FILE_INPUTS = (
    ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "container-token"),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "web-identity-token"),
)
# The host, for instance credentials: the first of these that holds an identifier.
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
MAX_TOKEN_BYTES = 1 << 16
SECRET_KEYS = frozenset({"aws_secret_access_key", "aws_session_token", "aws_security_token"})
_MAX_CHAIN = 16

Sections = dict[str, list[tuple[str, str]]]


def parse_ini(text: str) -> Sections:
    """Sections of an AWS shared config/credentials file, as botocore reads them (enough for a key).

    Keys are lower-cased; values keep their text; indented lines continue the previous value (the
    nested ``s3 =`` style). No interpolation, no errors: a malformed line is simply part of the key.
    """
    sections: Sections = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            current = sections.setdefault(" ".join(line[1:-1].split()), [])
        elif current is not None:
            if raw[:1] in " \t" and current:
                key, value = current[-1]
                current[-1] = (key, value + "\n" + line)
            else:
                key, _, value = line.partition("=")
                current.append((key.strip().lower(), value.strip()))
    return sections


def _read_sections(path: str) -> Sections | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_ini(f.read())
    except OSError:
        return None


def files_mention(environ: Mapping[str, str], word: str) -> bool:
    """Whether either AWS file contains ``word`` at all: a pre-check that spares parsing (and a hit
    importing what parses) for a setting that no profile has."""
    for path in aws_file_paths(environ):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                if word in f.read():
                    return True
        except OSError:
            pass
    return False


def aws_file_paths(environ: Mapping[str, str]) -> tuple[str, str]:
    """The shared config and credentials files botocore would read."""
    config = environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    credentials = environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return _expand(config, environ), _expand(credentials, environ)


def _expand(path: str, environ: Mapping[str, str]) -> str:
    if path.startswith("~") and environ.get("HOME"):
        return environ["HOME"] + path[1:]
    return os.path.expanduser(path)


def selected_profile(environ: Mapping[str, str], override: str | None = None) -> str:
    return override or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"


def _profile_material(profile: str, config: Sections | None, credentials: Sections | None) -> list[str]:
    """The non-secret settings of ``profile`` and of every profile or SSO session it chains to."""
    material: list[str] = []
    seen: set[str] = set()
    pending = [profile]
    while pending and len(seen) < _MAX_CHAIN:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for label, sections, section in (
            ("config", config, "default" if name == "default" else f"profile {name}"),
            ("config", config, f"profile {name}" if name == "default" else None),
            ("credentials", credentials, name),
        ):
            if sections is None or section is None:
                continue
            items = sections.get(section)
            if items is None:
                continue
            material.append(f"[{label}:{section}]")
            for key, value in items:
                material.append(f"{key}=<secret>" if key in SECRET_KEYS else f"{key}={value}")
                if key == "source_profile":
                    pending.append(value)
                elif key == "web_identity_token_file":
                    material.append(token_identity("web-identity-token", _expand(value, {})))
                elif key == "services" and config is not None:
                    for k, v in config.get(f"services {value}", ()):
                        material.append(f"services:{value}:{k}={v}")
                elif key == "sso_session" and config is not None:
                    for k, v in config.get(f"sso-session {value}", ()):
                        material.append(f"sso-session:{value}:{k}={v}")
    return material


def identity_key(
    environ: Mapping[str, str],
    *,
    profile: str | None = None,
    extra: Iterable[str] = (),
) -> str:
    """A short hex digest naming the principal the AWS SDK would resolve from these inputs.

    ``profile`` is a per-registry profile from the helper's config; ``extra`` carries its other
    per-registry settings (role to assume, external id, ...). Reads two small files, no network.
    """
    config_path, credentials_path = aws_file_paths(environ)
    pieces = [f"{name}={environ.get(name, '')}" for name in ENV_INPUTS]
    pieces.append(f"helper-profile={profile or ''}")
    pieces.extend(extra)
    pieces.extend(
        _profile_material(
            selected_profile(environ, profile), _read_sections(config_path), _read_sections(credentials_path)
        )
    )
    for variable, label in TOKEN_FILE_INPUTS:
        if environ.get(variable):
            pieces.append(token_identity(label, _expand(environ[variable], environ)))
    if environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"):
        pieces.append(_claims_or_digest("container-token-value", environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]))
    if environ.get("AWS_CREDENTIAL_FILE"):
        pieces.append(_legacy_key_id(_expand(environ["AWS_CREDENTIAL_FILE"], environ)))
    pieces.append(f"host={host_identity()}")
    return blake2b("\0".join(pieces).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def token_identity(label: str, path: str) -> str:
    """Who the token in the file at ``path`` speaks for: its stable claims, never the token."""
    try:
        with open(path, "rb") as f:
            token = f.read(MAX_TOKEN_BYTES).decode("utf-8", "replace").strip()
    except OSError:
        return f"{label}=unreadable"
    return _claims_or_digest(label, token)


def _claims_or_digest(label: str, token: str) -> str:
    """``iss``/``sub``/``aud`` of a JWT (the same in every rotation); a digest of anything else."""
    from docker_credential_ecr import oidc

    payload = oidc.claims(token)
    if payload.get("sub") or payload.get("iss"):
        stable = oidc.stable_claims(payload)
        return f"{label}:iss={stable['iss']}\0sub={stable['sub']}\0aud={stable['aud']}"
    return f"{label}:digest=" + blake2b(token.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _legacy_key_id(path: str) -> str:
    """The key id in botocore's legacy ``AWS_CREDENTIAL_FILE`` (``AWSAccessKeyId=...``); never the secret."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(MAX_TOKEN_BYTES).splitlines()
    except OSError:
        return "legacy-credential-file=unreadable"
    ids = [line.split("=", 1)[1].strip() for line in lines if line.strip().startswith("AWSAccessKeyId=")]
    return f"legacy-credential-file:{','.join(ids)}"


def host_identity() -> str:
    """This machine, for credentials that belong to it (instance metadata): machine id and host name.

    Both, because cloned images can share a machine id, and containers share their image's; a host
    name that changes costs one cache miss, never a token served to another host.
    """
    machine = ""
    for path in MACHINE_ID_FILES:
        try:  # bytes, then decoded: a text file would import the ascii codec's module on every hit
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                machine = os.read(fd, 256).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
        except OSError:
            continue
        if machine:
            break
    try:
        node = os.uname().nodename
    except AttributeError:  # pragma: no cover - Windows
        import socket

        node = socket.gethostname()
    return f"{machine}/{node}"


def describe(environ: Mapping[str, str], profile: str | None = None) -> str:
    """A person-readable guess of the credential source (for messages and `doctor`; no secrets)."""
    if environ.get("AWS_ACCESS_KEY_ID") and not profile:
        return f"environment access key {environ['AWS_ACCESS_KEY_ID'][:4]}…{environ['AWS_ACCESS_KEY_ID'][-4:]}"
    name = selected_profile(environ, profile)
    if profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE"):
        return f"profile {name!r}"
    if environ.get("AWS_ROLE_ARN") and environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return f"web identity role {environ['AWS_ROLE_ARN']}"
    if environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return "container credentials endpoint"
    return "default profile, then container or instance credentials"
