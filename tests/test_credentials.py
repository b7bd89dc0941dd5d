"""The credentials seam: which source serves a request, its identity key, and where its credentials are kept."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import filelock
import pytest

from docker_credential_ecr import credentials, identity
from docker_credential_ecr.config import RegistryTable
from docker_credential_ecr.kubelet import KubeletWebIdentity, WebIdentity
from docker_credential_ecr.settings import APP_NAME
from docker_credential_ecr.store import Store, lock_wait
from fakeecr import FakeAWS, access_key_for_role
from support import ECR_HOST, run_helper

ROLE = "arn:aws:iam::123456789012:role/ecr-pull"


def _table(*, profile: str | None = None, role_arn: str | None = None) -> RegistryTable:
    return RegistryTable(match="123456789012", kind="account", profile=profile, role_arn=role_arn)


def _web_identity() -> WebIdentity:
    return WebIdentity(role_arn=ROLE, token="header.payload.signature", session_name="ns.sa", identity="abc")


@pytest.mark.parametrize(
    ("table", "web", "kind", "profile"),
    [
        pytest.param(None, False, credentials.DefaultChain, None, id="no-table"),
        pytest.param(_table(profile="dev"), False, credentials.DefaultChain, "dev", id="profile"),
        pytest.param(_table(profile="dev", role_arn=ROLE), False, credentials.AssumedRole, "dev", id="role"),
        pytest.param(_table(role_arn=ROLE), True, KubeletWebIdentity, None, id="kubelet-wins"),
    ],
)
def test_the_first_source_that_applies_serves(
    table: RegistryTable | None, web: bool, kind: type[credentials.Source], profile: str | None
) -> None:
    source = credentials.select(credentials.Context({}, table, _web_identity() if web else None))
    assert type(source) is kind
    assert source.profile == profile


def test_identity_keys_part_sources_and_keep_0_1_0s_keys(home: Path) -> None:
    environ = {"HOME": str(home), "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE000000001"}
    chain = credentials.select(credentials.Context(environ))
    role = credentials.select(credentials.Context(environ, _table(role_arn=ROLE)))
    kubelet = credentials.select(credentials.Context(environ, None, _web_identity()))
    # The default chain and an assumed role keep the keys 0.1.0 wrote: an upgrade keeps the cache warm.
    assert chain.identity_key() == identity.identity_key(environ)
    assert role.identity_key() == identity.identity_key(environ, extra=_table(role_arn=ROLE).identity_inputs())
    assert len({chain.identity_key(), role.identity_key(), kubelet.identity_key()}) == 3
    assert kubelet.identity_key().startswith("wi-")
    assert (chain.who, role.who, kubelet.who) == (None, f"role {ROLE}", f"web identity role {ROLE}")


def test_a_write_waits_a_share_of_what_is_left() -> None:
    class Left:
        def __init__(self, seconds: float) -> None:
            self.seconds = seconds

        def remaining(self) -> float:
            return self.seconds

    assert lock_wait(None) == 5.0
    assert lock_wait(Left(30.0)) == 5.0  # type: ignore[arg-type]
    assert lock_wait(Left(6.0)) == 1.5  # type: ignore[arg-type]
    assert lock_wait(Left(0.0)) == 0.05  # type: ignore[arg-type]
    assert lock_wait(Left(10.0), 60.0, 0.5) == 5.0  # type: ignore[arg-type]


def _use_role(env: dict[str, str], home: Path) -> None:
    config = home / ".config" / APP_NAME / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[[registry]]\nmatch = "123456789012"\nrole_arn = "{ROLE}"\n')
    env["XDG_CONFIG_HOME"] = str(home / ".config")


@pytest.mark.parametrize(
    ("timeout", "longest"),
    [pytest.param("6", 1.5, id="AWS_ECR_TIMEOUT=6"), pytest.param(None, 5.0, id="default-timeout")],
)
def test_a_held_credentials_lock_costs_only_the_caching_of_the_role(
    env: dict[str, str], home: Path, fake: FakeAWS, timeout: str | None, longest: float
) -> None:
    """#13 item 6: another process holds the role credentials' lock all along. The helper waits a share of
    its deadline (never 0.1.0's 10 s), goes on without storing the role, and still answers with a token,
    which it caches (the token file's lock is another)."""
    _use_role(env, home)
    if timeout is not None:
        env["AWS_ECR_TIMEOUT"] = timeout
    store = Store(env["AWS_ECR_CACHE_DIR"])
    store.ensure_directory()
    holder = filelock.FileLock(os.path.join(store.directory, "locks", "credentials-file.lock"), mode=0o600)
    with holder:  # held by this process: the helper's flock on its own descriptor cannot get it
        proc = run_helper(["get"], env, ECR_HOST)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Secret"] == fake.issued[-1]
    waited = re.fullmatch(
        r"docker-credential-ecr-login: token cache: gave up waiting ([0-9.]+) s for the credentials-file lock; "
        r"going on without it\n",
        proc.stderr,
    )
    assert waited is not None, proc.stderr
    assert float(waited.group(1)) <= longest < 10
    assert fake.calls("sts:AssumeRole") == 1
    assert store.all_credentials() == {}  # not stored...
    assert [t.username for t in store.tokens().values()] == ["AWS"]  # ...but the token is
    assert [r.access_key_id for r in fake.requests if r.op == "ecr"] == [access_key_for_role(ROLE)]
