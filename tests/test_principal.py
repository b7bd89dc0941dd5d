"""The principal fingerprint: what changes it, what must not, and that no secret is in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from docker_credential_ecr.principal import ENV_INPUTS, fingerprint, parse_ini


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
    assert fingerprint(_env(home)) == fingerprint(_env(home))
    assert len(fingerprint(_env(home))) == 32


@pytest.mark.parametrize("name", ENV_INPUTS)
def test_every_env_input_changes_it(home: Path, name: str) -> None:
    assert fingerprint(_env(home)) != fingerprint(_env(home, **{name: "something-else"}))


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"])
def test_secrets_do_not_change_it(home: Path, name: str) -> None:
    assert fingerprint(_env(home)) == fingerprint(_env(home, **{name: "s3cr3t"}))


def test_profiles_differ(home: Path) -> None:
    _write(home, "config", CONFIG)
    keys = {fingerprint(_env(home, AWS_PROFILE=p)) for p in ("default", "dev", "base", "sso", "missing")}
    assert len(keys) == 5
    # A per-registry profile is its own principal, whatever AWS_PROFILE says.
    assert fingerprint(_env(home), profile="dev") != fingerprint(_env(home))
    assert fingerprint(_env(home), profile="dev") != fingerprint(_env(home), profile="base")
    assert fingerprint(_env(home, AWS_PROFILE="x"), profile="dev") != fingerprint(_env(home), profile="dev")


def test_chained_profile_change_is_seen(home: Path) -> None:
    _write(home, "config", CONFIG)
    before = fingerprint(_env(home, AWS_PROFILE="dev"))
    _write(home, "config", CONFIG.replace("AKIABASE", "AKIAOTHER"))
    assert fingerprint(_env(home, AWS_PROFILE="dev")) != before


def test_sso_session_change_is_seen(home: Path) -> None:
    _write(home, "config", CONFIG)
    before = fingerprint(_env(home, AWS_PROFILE="sso"))
    _write(home, "config", CONFIG.replace("corp.awsapps", "other.awsapps"))
    assert fingerprint(_env(home, AWS_PROFILE="sso")) != before


def test_unrelated_profile_change_is_not_a_miss(home: Path) -> None:
    _write(home, "config", CONFIG)
    before = fingerprint(_env(home, AWS_PROFILE="sso"))
    _write(home, "config", CONFIG + "\n[profile unrelated]\nregion = eu-west-1\n")
    assert fingerprint(_env(home, AWS_PROFILE="sso")) == before


def test_credentials_file_secret_is_excluded_but_key_id_counts(home: Path) -> None:
    _write(home, "credentials", "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = one\n")
    first = fingerprint(_env(home))
    _write(home, "credentials", "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = two\n")
    assert fingerprint(_env(home)) == first
    _write(home, "credentials", "[default]\naws_access_key_id = AKIA2\naws_secret_access_key = two\n")
    assert fingerprint(_env(home)) != first


def test_source_profile_cycle_terminates(home: Path) -> None:
    _write(home, "config", "[profile a]\nsource_profile = b\n[profile b]\nsource_profile = a\n")
    assert fingerprint(_env(home, AWS_PROFILE="a")) != fingerprint(_env(home, AWS_PROFILE="b"))


def test_extra_settings_change_it(home: Path) -> None:
    assert fingerprint(_env(home), extra=["role_arn=x"]) != fingerprint(_env(home))


def test_web_identity_token_rotation_is_not_a_miss(home: Path) -> None:
    token = home / "token"
    token.write_text("one")
    env = _env(home, AWS_ROLE_ARN="arn:aws:iam::1:role/r", AWS_WEB_IDENTITY_TOKEN_FILE=str(token))
    before = fingerprint(env)
    token.write_text("two")
    assert fingerprint(env) == before
