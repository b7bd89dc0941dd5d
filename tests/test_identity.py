"""The identity key: what changes it, what must not, and that no secret is in it."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from docker_credential_ecr import identity
from docker_credential_ecr.identity import ENV_INPUTS, identity_key, parse_ini


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
        **extra,
    }


def _write(home: Path, name: str, text: str) -> None:
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / name).write_text(text)


CONFIG = """\
[default]
region = us-east-1

[profile dev]
role_arn = arn:aws:iam::111111111111:role/dev
source_profile = base

[profile base]
aws_access_key_id = AKIABASE

[profile sso]
sso_session = corp
sso_account_id = 222222222222
sso_role_name = ReadOnly

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = us-east-1
"""


def test_parse_ini() -> None:
    sections = parse_ini("# c\n[a]\nK = v\n  nested = 1\n; c\n[ profile   b ]\nx=y=z\n")
    assert sections == {"a": [("k", "v\nnested = 1")], "profile b": [("x", "y=z")]}


def test_stable(home: Path) -> None:
    _write(home, "config", CONFIG)
    assert identity_key(_env(home)) == identity_key(_env(home))
    assert len(identity_key(_env(home))) == 32


@pytest.mark.parametrize("name", ENV_INPUTS)
def test_every_env_input_changes_it(home: Path, name: str) -> None:
    assert identity_key(_env(home)) != identity_key(_env(home, **{name: "something-else"}))


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"])
def test_secrets_do_not_change_it(home: Path, name: str) -> None:
    assert identity_key(_env(home)) == identity_key(_env(home, **{name: "s3cr3t"}))


def test_profiles_differ(home: Path) -> None:
    _write(home, "config", CONFIG)
    keys = {identity_key(_env(home, AWS_PROFILE=p)) for p in ("default", "dev", "base", "sso", "missing")}
    assert len(keys) == 5
    # A per-registry profile is its own principal, whatever AWS_PROFILE says.
    assert identity_key(_env(home), profile="dev") != identity_key(_env(home))
    assert identity_key(_env(home), profile="dev") != identity_key(_env(home), profile="base")
    assert identity_key(_env(home, AWS_PROFILE="x"), profile="dev") != identity_key(_env(home), profile="dev")


def test_chained_profile_change_is_seen(home: Path) -> None:
    _write(home, "config", CONFIG)
    before = identity_key(_env(home, AWS_PROFILE="dev"))
    _write(home, "config", CONFIG.replace("AKIABASE", "AKIAOTHER"))
    assert identity_key(_env(home, AWS_PROFILE="dev")) != before


def test_sso_session_change_is_seen(home: Path) -> None:
    _write(home, "config", CONFIG)
    before = identity_key(_env(home, AWS_PROFILE="sso"))
    _write(home, "config", CONFIG.replace("corp.awsapps", "other.awsapps"))
    assert identity_key(_env(home, AWS_PROFILE="sso")) != before


def test_unrelated_profile_change_is_not_a_miss(home: Path) -> None:
    _write(home, "config", CONFIG)
    before = identity_key(_env(home, AWS_PROFILE="sso"))
    _write(home, "config", CONFIG + "\n[profile unrelated]\nregion = eu-west-1\n")
    assert identity_key(_env(home, AWS_PROFILE="sso")) == before


def test_credentials_file_secret_is_excluded_but_key_id_counts(home: Path) -> None:
    _write(home, "credentials", "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = one\n")
    first = identity_key(_env(home))
    _write(home, "credentials", "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = two\n")
    assert identity_key(_env(home)) == first
    _write(home, "credentials", "[default]\naws_access_key_id = AKIA2\naws_secret_access_key = two\n")
    assert identity_key(_env(home)) != first


def test_source_profile_cycle_terminates(home: Path) -> None:
    _write(home, "config", "[profile a]\nsource_profile = b\n[profile b]\nsource_profile = a\n")
    assert identity_key(_env(home, AWS_PROFILE="a")) != identity_key(_env(home, AWS_PROFILE="b"))


def test_extra_settings_change_it(home: Path) -> None:
    assert identity_key(_env(home), extra=["role_arn=x"]) != identity_key(_env(home))


def test_web_identity_token_rotation_is_not_a_miss(home: Path) -> None:
    token = home / "token"
    token.write_text(jwt(sub="system:serviceaccount:ci:builder", iat=1))
    env = _env(home, AWS_ROLE_ARN="arn:aws:iam::1:role/r", AWS_WEB_IDENTITY_TOKEN_FILE=str(token))
    before = identity_key(env)
    token.write_text(jwt(sub="system:serviceaccount:ci:builder", iat=2))
    assert identity_key(env) == before


# -- #13: the identity behind every credential source, and inputs listed independently of ENV_INPUTS --
def jwt(**claims: object) -> str:
    """An unsigned JWT with these claims (the helper reads claims unverified; STS verifies)."""
    payload = {"iss": "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC", "aud": ["pods.eks.amazonaws.com"], **claims}

    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(payload)}.c2lnbmF0dXJl"


@pytest.mark.parametrize("variable", ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE"])
def test_token_files_count_by_their_stable_claims(home: Path, variable: str) -> None:
    """Two pods, the same environment, a token file each: two identities; a rotation is the same one."""
    token = home / "token"
    env = _env(
        home, **{variable: str(token), "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"}
    )
    keys = {}
    for claims in (
        {"sub": "system:serviceaccount:team-a:puller", "iat": 1, "exp": 2, "jti": "one"},
        {"sub": "system:serviceaccount:team-a:puller", "iat": 3, "exp": 4, "jti": "two"},  # rotated
        {"sub": "system:serviceaccount:team-b:puller", "iat": 1, "exp": 2, "jti": "one"},
        {"sub": "system:serviceaccount:team-a:puller", "aud": ["sts.amazonaws.com"]},
        {"sub": "system:serviceaccount:team-a:puller", "iss": "https://other.example"},
    ):
        token.write_text(jwt(**claims) + "\n")
        keys[json.dumps(claims)] = identity_key(env)
    first, rotated, other_sub, other_aud, other_iss = keys.values()
    assert first == rotated
    assert len({first, other_sub, other_aud, other_iss}) == 4


def test_a_container_token_in_the_environment_counts_by_its_claims(home: Path) -> None:
    a1, a2 = jwt(sub="pod-a", iat=1), jwt(sub="pod-a", iat=2)
    b = jwt(sub="pod-b", iat=1)

    def key(token: str) -> str:
        return identity_key(_env(home, AWS_CONTAINER_AUTHORIZATION_TOKEN=token))

    assert key(a1) == key(a2)
    assert key(a1) != key(b)
    assert key("opaque-one") != key("opaque-two")  # not a JWT: counted by its digest


def test_a_web_identity_token_file_named_in_a_profile_counts(home: Path) -> None:
    token = home / "token"
    _write(home, "config", f"[profile pod]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = {token}\n")
    env = _env(home, AWS_PROFILE="pod")
    token.write_text(jwt(sub="a"))
    first = identity_key(env)
    token.write_text(jwt(sub="b"))
    assert identity_key(env) != first


def test_two_hosts_sharing_a_home_never_share_a_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Instance credentials are the host's: another machine id or host name is another principal."""
    machine_id = home / "machine-id"
    monkeypatch.setattr(identity, "MACHINE_ID_FILES", (str(machine_id),))
    env = _env(home)
    machine_id.write_text("host-one\n")
    one = identity_key(env)
    machine_id.write_text("host-two\n")
    two = identity_key(env)
    assert one != two
    machine_id.write_text("host-one\n")
    assert identity_key(env) == one
    real = os.uname()
    monkeypatch.setattr(os, "uname", lambda: _Uname(real))
    assert identity_key(env) != one


class _Uname:
    """``os.uname()`` of another host name."""

    def __init__(self, real: os.uname_result) -> None:
        self.nodename = real.nodename + "-other"


def test_a_services_section_counts(home: Path) -> None:
    """``services = x`` names per-service endpoints: another ECR or STS endpoint is another key."""
    config = "[default]\nservices = mine\n[services mine]\necr =\n  endpoint_url = https://a.example\n"
    _write(home, "config", config)
    first = identity_key(_env(home))
    _write(home, "config", config.replace("a.example", "b.example"))
    assert identity_key(_env(home)) != first


@pytest.mark.parametrize(
    ("profile", "section"),
    [("default", "default"), ("default", "profile default"), ("dev", "profile dev")],
    ids=["default", "profile-default", "named"],
)
def test_the_selected_profile_section_counts(home: Path, profile: str, section: str) -> None:
    """``[default]``, ``[profile default]`` and ``[profile NAME]``: each is read as botocore reads it."""
    env = _env(home, AWS_PROFILE=profile)
    _write(home, "config", f"[{section}]\nrole_arn = arn:aws:iam::111111111111:role/a\n")
    first = identity_key(env)
    _write(home, "config", f"[{section}]\nrole_arn = arn:aws:iam::111111111111:role/b\n")
    assert identity_key(env) != first
    # ... and another profile's section does not.
    second = identity_key(env)
    _write(home, "config", f"[{section}]\nrole_arn = arn:aws:iam::111111111111:role/b\n[profile other]\nregion = x\n")
    assert identity_key(env) == second


# Written out by hand, not taken from identity.py: a name misspelt or dropped there fails here.
SECRET_FILE_KEYS = ("aws_secret_access_key", "aws_session_token", "aws_security_token")


@pytest.mark.parametrize("key", SECRET_FILE_KEYS)
def test_secret_keys_in_the_files_never_count(home: Path, key: str) -> None:
    """A secret (and a rotating one) in the credentials or config file changes nothing."""
    for name in ("credentials", "config"):
        _write(home, name, f"[default]\naws_access_key_id = AKIA1\n{key} = one\n")
        first = identity_key(_env(home))
        _write(home, name, f"[default]\naws_access_key_id = AKIA1\n{key} = two\n")
        assert identity_key(_env(home)) == first, (name, key)
        (home / ".aws" / name).unlink()
    assert set(SECRET_FILE_KEYS) == set(identity.SECRET_KEYS)


# Every environment variable botocore reads that can change who the principal is, which endpoint
# answers, or which region it is asked in: written out by hand from botocore's credential providers,
# its session variables and its endpoint resolution.
IDENTITY_VARIABLES = (
    # credentials (botocore.credentials: EnvProvider, AssumeRoleWithWebIdentityProvider,
    # ContainerProvider, OriginalEC2Provider, the shared files, the profile)
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCOUNT_ID",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CREDENTIAL_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_IMDS_USE_IPV6",
    "AWS_LOGIN_CACHE_DIRECTORY",
    "BOTOCORE_EXPERIMENTAL__PLUGINS",
    # endpoints
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
    "AWS_DATA_PATH",
    # region
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)
# botocore variables that are secrets (counted by their claims or not at all) or that change neither
# who asks nor where: how the call is made (retries, timeouts, checksums, telemetry, user agent).
NOT_IDENTITY = {
    "AWS_SECRET_ACCESS_KEY": "a secret: a new one comes with a new key id, role session or token",
    "AWS_SESSION_TOKEN": "a secret, rotating",
    "AWS_SECURITY_TOKEN": "a secret, rotating (the old name of AWS_SESSION_TOKEN)",
    "AWS_CREDENTIAL_EXPIRATION": "when the environment's credentials expire, not whose they are",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "a secret: its stable claims count instead",
    "AWS_CA_BUNDLE": "which certificates are trusted, not who asks",
    "AWS_CSM_CLIENT_ID": "client-side monitoring",
    "AWS_CSM_ENABLED": "client-side monitoring",
    "AWS_CSM_HOST": "client-side monitoring",
    "AWS_CSM_PORT": "client-side monitoring",
    "AWS_DEFAULTS_MODE": "timeouts and retries",
    "AWS_DISABLE_HOST_PREFIX_INJECTION": "not used by ECR's operations",
    "AWS_DISABLE_REQUEST_COMPRESSION": "request encoding",
    "AWS_EC2_METADATA_V1_DISABLED": "whether IMDSv1 may be used, same host, same role",
    "AWS_ENDPOINT_DISCOVERY_ENABLED": "not used by ECR or STS",
    "AWS_MAX_ATTEMPTS": "retries",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "retries",
    "AWS_METADATA_SERVICE_TIMEOUT": "timeouts",
    "AWS_REQUEST_CHECKSUM_CALCULATION": "checksums",
    "AWS_REQUEST_MIN_COMPRESSION_SIZE_BYTES": "request encoding",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "checksums",
    "AWS_RETRY_MODE": "retries",
    "AWS_S3_DISABLE_EXPRESS_SESSION_AUTH": "S3 only",
    "AWS_SIGV4A_SIGNING_REGION_SET": "multi-region signing, not used by ECR or STS",
    "AWS_SDK_UA_APP_ID": "user agent",
    "AWS_AUTH_SCHEME_PREFERENCE": "how requests are signed, not by whom",
    "BOTOCORE_TCP_KEEPALIVE": "sockets",
    "AWS_EXECUTION_ENV": "user agent",
    "AWS_LAMBDA_FUNCTION_NAME": "user agent",
    "AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS": "S3 only",
    "AWS_S3_USE_ARN_REGION": "S3 only",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "S3 only",
}


@pytest.mark.parametrize("name", IDENTITY_VARIABLES)
def test_every_identity_variable_changes_it(home: Path, name: str) -> None:
    assert name in ENV_INPUTS
    assert identity_key(_env(home)) != identity_key(_env(home, **{name: "something-else"}))


def _botocore_variables() -> set[str]:
    """Every environment variable botocore's own tables name (read from the installed botocore)."""
    import botocore
    import botocore.configprovider
    import botocore.credentials

    names: set[str] = set()
    for _key, env, *_rest in botocore.configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES.values():
        names.update([env] if isinstance(env, str) else env or [])
    env_provider = botocore.credentials.EnvProvider
    names.update({env_provider.ACCESS_KEY, env_provider.SECRET_KEY, env_provider.EXPIRY_TIME, *env_provider.TOKENS})
    names.add(getattr(env_provider, "ACCOUNT_ID", "AWS_ACCOUNT_ID"))
    container = botocore.credentials.ContainerProvider
    names.update(
        getattr(container, a) for a in ("ENV_VAR", "ENV_VAR_FULL", "ENV_VAR_AUTH_TOKEN", "ENV_VAR_AUTH_TOKEN_FILE")
    )
    web_identity: dict[str, str] = botocore.credentials.AssumeRoleWithWebIdentityProvider._CONFIG_TO_ENV_VAR  # type: ignore[attr-defined]
    names.update(web_identity.values())
    names.add(botocore.credentials.OriginalEC2Provider.CRED_FILE_ENV)
    # ... and every variable name written anywhere in its source, tables or not (IMDS, login, plugins).
    import re

    for source in Path(botocore.__file__).parent.glob("*.py"):
        names.update(re.findall(r"""['"]((?:AWS|BOTOCORE)_[A-Z0-9_]+)['"]""", source.read_text(encoding="utf-8")))
    return {n for n in names if n}


def test_every_botocore_variable_is_classified() -> None:
    """A variable a new botocore reads must be put in IDENTITY_VARIABLES (and ENV_INPUTS) or NOT_IDENTITY."""
    unclassified = _botocore_variables() - set(IDENTITY_VARIABLES) - set(NOT_IDENTITY)
    assert not unclassified, f"botocore reads {sorted(unclassified)}: does it change the principal, endpoint or region?"
    assert not set(IDENTITY_VARIABLES) & set(NOT_IDENTITY)


def test_every_env_input_is_known_to_botocore_or_to_this_list() -> None:
    """No name in ENV_INPUTS that nobody reads (a misspelling would look like coverage)."""
    # The hand list, or the installed botocore (an older one than the list was written for lacks some).
    known = _botocore_variables() | set(IDENTITY_VARIABLES)
    assert set(ENV_INPUTS) <= known, sorted(set(ENV_INPUTS) - known)


def test_service_endpoint_variables_are_botocores_names() -> None:
    """AWS_ENDPOINT_URL_<SERVICE> as botocore spells it for the clients this helper builds."""
    import botocore.configprovider

    provider = botocore.configprovider.ConfiguredEndpointProvider
    for service in ("ecr", "ecr-public", "sts", "sso"):
        name = provider(full_config={}, scoped_config={}, client_name=service)._get_service_env_var_name()  # type: ignore[attr-defined]
        assert name in IDENTITY_VARIABLES
        assert name in ENV_INPUTS


def test_botocore_credential_config_keys_count(home: Path) -> None:
    """Every key of the selected profile counts (secrets masked): botocore's credential keys included."""
    import botocore.credentials

    keys = {"region", "role_arn", "source_profile", "credential_source", "credential_process", "external_id"}
    keys |= {"mfa_serial", "role_session_name", "duration_seconds", "web_identity_token_file", "sso_start_url"}
    keys |= {"sso_region", "sso_account_id", "sso_role_name", "sso_session", "aws_access_key_id", "endpoint_url"}
    keys |= {"ca_bundle", "sts_regional_endpoints", "use_fips_endpoint", "use_dualstack_endpoint", "services"}
    keys.add(botocore.credentials.SharedCredentialProvider.ACCESS_KEY)
    for key in sorted(keys):
        _write(home, "config", f"[default]\n{key} = one\n")
        first = identity_key(_env(home))
        _write(home, "config", f"[default]\n{key} = two\n")
        assert identity_key(_env(home)) != first, key


# -- mutants of identity.py that survived (scripts/mutate identity tests/test_identity.py) ---------------
def test_a_line_ending_in_a_bracket_is_a_value_not_a_section() -> None:
    sections = parse_ini("[default]\ncredential_process = fetch --tags [a]\n[b\nregion = x\n")
    assert sections == {"default": [("credential_process", "fetch --tags [a]"), ("[b", ""), ("region", "x")]}


def test_the_default_files_are_home_s_aws_config_and_credentials(home: Path) -> None:
    """Without AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, ~/.aws/config and ~/.aws/credentials count."""
    env = {"HOME": str(home)}
    assert identity.aws_file_paths(env) == (f"{home}/.aws/config", f"{home}/.aws/credentials")
    for name in ("config", "credentials"):
        _write(home, name, "[default]\naws_access_key_id = AKIA1\n")
        first = identity_key(env)
        _write(home, name, "[default]\naws_access_key_id = AKIA2\n")
        assert identity_key(env) != first, name


def test_the_named_files_count_instead_of_the_default_ones(home: Path) -> None:
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    env = {
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(elsewhere / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(elsewhere / "credentials"),
    }
    assert identity.aws_file_paths(env) == (str(elsewhere / "config"), str(elsewhere / "credentials"))
    for name in ("config", "credentials"):
        first = identity_key(env)
        _write(home, name, "[default]\naws_access_key_id = AKIA1\n")  # ~/.aws: not read
        assert identity_key(env) == first, name
        (elsewhere / name).write_text("[default]\naws_access_key_id = AKIA1\n")
        assert identity_key(env) != first, name


def test_a_tilde_path_is_under_the_environment_s_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"HOME": str(home), "AWS_CONFIG_FILE": "~/cfg", "AWS_SHARED_CREDENTIALS_FILE": "~/creds"}
    assert identity.aws_file_paths(env) == (f"{home}/cfg", f"{home}/creds")
    monkeypatch.setenv("HOME", "/process-home")  # without HOME in the mapping: the process's home
    assert identity.aws_file_paths({"AWS_CONFIG_FILE": "~/cfg"}) == (
        "/process-home/cfg",
        "/process-home/.aws/credentials",
    )


@pytest.mark.parametrize(
    ("environ", "override", "selected"),
    [
        ({}, None, "default"),
        ({"AWS_DEFAULT_PROFILE": "b"}, None, "b"),
        ({"AWS_PROFILE": "a", "AWS_DEFAULT_PROFILE": "b"}, None, "a"),
        ({"AWS_PROFILE": "a"}, "c", "c"),
    ],
)
def test_selected_profile(environ: dict[str, str], override: str | None, selected: str) -> None:
    assert identity.selected_profile(environ, override) == selected


def test_aws_default_profile_selects_the_section_that_counts(home: Path) -> None:
    env = _env(home, AWS_DEFAULT_PROFILE="dev")
    _write(home, "config", "[profile dev]\nrole_arn = arn:aws:iam::111111111111:role/a\n")
    first = identity_key(env)
    _write(home, "config", "[profile dev]\nrole_arn = arn:aws:iam::111111111111:role/b\n")
    assert identity_key(env) != first


def test_the_same_line_in_config_or_in_credentials_is_another_identity(home: Path) -> None:
    """botocore reads the two files differently (credentials has no ``profile`` prefix, no settings)."""
    _write(home, "config", "[default]\nrole_arn = arn:aws:iam::111111111111:role/a\n")
    in_config = identity_key(_env(home))
    (home / ".aws" / "config").rename(home / ".aws" / "credentials")
    assert identity_key(_env(home)) != in_config


def test_a_chain_counts_to_its_sixteenth_profile(home: Path) -> None:
    """A source_profile chain is followed through 16 profiles (botocore refuses longer ones anyway)."""
    chain = "".join(f"[profile p{i}]\nsource_profile = p{i + 1}\n" for i in range(1, 17))

    def key(last: str, after: str) -> str:
        _write(
            home, "config", chain.replace("source_profile = p17\n", f"source_profile = p17\nregion = {last}\n") + after
        )
        return identity_key(_env(home, AWS_PROFILE="p1"))

    assert key("a", "") != key("b", "")  # p16's own setting counts
    assert key("a", "[profile p17]\nregion = x\n") == key("a", "[profile p17]\nregion = y\n")  # p17 does not


def test_an_unreadable_token_file_counts_as_unreadable(home: Path) -> None:
    assert identity.token_identity("web-identity-token", str(home / "missing")) == "web-identity-token=unreadable"
    token = home / "token"
    token.write_text("opaque\n")
    digest = identity.token_identity("web-identity-token", str(token))
    assert digest.startswith("web-identity-token:digest=")
    assert len(digest) == len("web-identity-token:digest=") + 32


def test_a_token_counts_by_its_first_64_kib(home: Path) -> None:
    token = home / "token"
    token.write_bytes(b"a" * 65535 + b"b")
    last_byte_in = identity.token_identity("t", str(token))
    token.write_bytes(b"a" * 65535 + b"c")
    assert identity.token_identity("t", str(token)) != last_byte_in
    last_byte_changed = identity.token_identity("t", str(token))
    token.write_bytes(b"a" * 65535 + b"c" + b"beyond the bound")
    assert identity.token_identity("t", str(token)) == last_byte_changed


def test_a_jwt_counts_by_iss_sub_and_aud() -> None:
    token = jwt(sub="system:serviceaccount:ci:builder", iat=1)
    assert identity._claims_or_digest("web-identity-token", token) == (
        "web-identity-token:iss=https://oidc.eks.eu-west-1.amazonaws.com/id/ABC\0"
        "sub=system:serviceaccount:ci:builder\0aud=pods.eks.amazonaws.com"
    )


def test_the_legacy_credential_file_counts_by_its_key_id_only(home: Path) -> None:
    legacy = home / "legacy"
    legacy.write_text("AWSAccessKeyId=AKIAONE\nAWSSecretKey=s3cr3t\n")
    env = _env(home, AWS_CREDENTIAL_FILE=str(legacy))
    assert identity._legacy_key_id(str(legacy)) == "legacy-credential-file:AKIAONE"
    first = identity_key(env)
    legacy.write_text("AWSAccessKeyId=AKIAONE\nAWSSecretKey=another\n")
    assert identity_key(env) == first
    legacy.write_text("AWSAccessKeyId=AKIATWO\nAWSSecretKey=another\n")
    assert identity_key(env) != first
    assert identity._legacy_key_id(str(home / "missing")) == "legacy-credential-file=unreadable"
    legacy.write_text("AWSAccessKeyId=AKIAONE\n  AWSAccessKeyId=AKIATWO=\n")
    assert identity._legacy_key_id(str(legacy)) == "legacy-credential-file:AKIAONE,AKIATWO="


@pytest.mark.parametrize(
    ("environ", "profile", "text"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIAABCDEFGH1234"}, None, "environment access key AKIA…1234"),
        ({"AWS_ACCESS_KEY_ID": "AKIAABCDEFGH1234"}, "dev", "profile 'dev'"),
        ({"AWS_PROFILE": "ci"}, None, "profile 'ci'"),
        ({"AWS_DEFAULT_PROFILE": "old"}, None, "profile 'old'"),
        (
            {"AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"},
            None,
            "web identity role arn:aws:iam::1:role/r",
        ),
        ({"AWS_ROLE_ARN": "arn:aws:iam::1:role/r"}, None, "default profile, then container or instance credentials"),
        ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/x"}, None, "container credentials endpoint"),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1/x"}, None, "container credentials endpoint"),
        ({}, None, "default profile, then container or instance credentials"),
    ],
)
def test_describe(environ: dict[str, str], profile: str | None, text: str) -> None:
    assert identity.describe(environ, profile) == text


def test_the_first_machine_id_file_with_an_id_counts(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = home / "machine-id", home / "dbus-machine-id"
    monkeypatch.setattr(identity, "MACHINE_ID_FILES", (str(first), str(second)))
    node = os.uname().nodename
    second.write_text("from-dbus\n")
    assert identity.host_identity() == f"from-dbus/{node}"  # the first is missing
    first.write_text("\n")
    assert identity.host_identity() == f"from-dbus/{node}"  # the first is empty
    first.write_text("from-etc\n")
    assert identity.host_identity() == f"from-etc/{node}"
    second.write_text("changed\n")
    assert identity.host_identity() == f"from-etc/{node}"  # the second is not read any more


def test_the_machine_id_is_etc_machine_id() -> None:
    try:
        machine = Path("/etc/machine-id").read_text(encoding="ascii").strip()
    except OSError:
        machine = ""
    if not machine:
        pytest.skip("this machine has no /etc/machine-id")
    assert identity.host_identity() == f"{machine}/{os.uname().nodename}"


@pytest.mark.parametrize("missing", ["iss", "sub"])
def test_a_jwt_with_only_iss_or_only_sub_counts_by_its_claims(missing: str) -> None:
    """Either claim makes it a JWT identity: a rotated token (another iat) is the same key."""
    one = {"sub": "pod", "iss": "https://issuer.example", "iat": 1}
    two = {**one, "iat": 2}
    del one[missing], two[missing]
    first = identity._claims_or_digest("t", _bare_jwt(one))
    assert first.startswith("t:iss=")
    assert identity._claims_or_digest("t", _bare_jwt(two)) == first


def _bare_jwt(claims: dict[str, object]) -> str:
    def part(data: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_undecodable_bytes_never_break_the_key(home: Path) -> None:
    """Files not in UTF-8 and environment values with undecodable bytes (surrogate escapes) still count."""
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / "config").write_bytes(b"[default]\nregion = caf\xe9\n")
    first = identity_key(_env(home))
    (home / ".aws" / "config").write_bytes(b"[default]\nregion = cafe\n")
    assert identity_key(_env(home)) != first
    escaped = b"opaque-\xff".decode("utf-8", "surrogateescape")  # as os.environ holds such a value
    assert identity_key(_env(home, AWS_PROFILE=escaped)) != identity_key(_env(home, AWS_PROFILE="opaque-"))
    key = identity_key(_env(home, AWS_CONTAINER_AUTHORIZATION_TOKEN=escaped))
    assert key != identity_key(_env(home, AWS_CONTAINER_AUTHORIZATION_TOKEN="opaque-"))


def test_the_helper_s_profile_counts_without_any_section(home: Path) -> None:
    assert identity_key(_env(home), profile="a") != identity_key(_env(home), profile="b")
    assert identity_key(_env(home), profile="a") != identity_key(_env(home))


def test_a_value_naming_an_sso_session_is_not_a_reference_to_it(home: Path) -> None:
    """Only ``sso_session = X`` brings [sso-session X] in; another key with the value X does not."""
    _write(home, "config", "[default]\nregion = corp\n[sso-session corp]\nsso_region = us-east-1\n")
    first = identity_key(_env(home))
    _write(home, "config", "[default]\nregion = corp\n[sso-session corp]\nsso_region = eu-west-1\n")
    assert identity_key(_env(home)) == first
