"""A CI's OIDC token for a role: the CI web identity source (:class:`CiWebIdentity`, see :mod:`credentials`).

Used on a miss when ``AWS_ECR_WEB_IDENTITY`` or a ``[[registry]]`` table's ``web_identity`` names a
token source (see :mod:`oidc`). The token is exchanged with STS AssumeRoleWithWebIdentity, unsigned:
no other AWS credentials are resolved, needed or sent. The role's credentials are kept in the store
like assumed-role credentials (0600, assumed again at half life) under the source's identity key,
which holds the role and the token's stable claims, never the token. A refusal by STS becomes one
line naming the claim STS rejected and what to change (:func:`aws.explain_ci_web_identity`).
Standard library only at import; :mod:`aws` is imported on a miss.
"""

from __future__ import annotations

import time

from docker_credential_ecr import oidc
from docker_credential_ecr.credentials import Source
from docker_credential_ecr.errors import TokenFetchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from docker_credential_ecr.config import RegistryTable
    from docker_credential_ecr.credentials import Keeper
    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.store import AwsCredentials


class CiWebIdentity(Source):
    """A CI's OIDC token for a role (``AWS_ECR_WEB_IDENTITY`` or a table's ``web_identity``; see :mod:`oidc`).

    The identity key holds the role, the session name and whose token it is (its stable claims, or
    for GitHub the job's token request URL), never the token. The role's credentials are kept in the
    store like an assumed role's; the ECR token is cut to their expiry.
    """

    kind = "CI web identity"
    caps_token = True

    def __init__(self, environ: Mapping[str, str], setting: oidc.Setting, table: RegistryTable | None) -> None:
        super().__init__(environ)
        self.setting = setting
        self.table = table

    def __repr__(self) -> str:
        return f"CiWebIdentity({self.setting!r})"

    def identity_inputs(self) -> list[str]:
        table = self.table.identity_inputs() if self.table is not None else []
        return [*table, *oidc.principal_inputs(self.setting, self.environ)]

    @property
    def who(self) -> str:
        return f"role {self.setting.role_arn} (web identity)"

    def credentials(self, registry: Registry, keeper: Keeper) -> AwsCredentials:
        from docker_credential_ecr.store import credentials_key

        key = credentials_key(self.identity_key(), "sts", registry.partition)
        return role_credentials(registry, self.setting, environ=self.environ, keeper=keeper, key=key)


def role_credentials(
    registry: Registry, setting: oidc.Setting, *, environ: Mapping[str, str], keeper: Keeper, key: str
) -> AwsCredentials:
    """The role's credentials: kept ones under ``key`` while fresh, else the CI's token through STS."""
    try:
        source = oidc.parse_source(setting.spec, environ)
    except oidc.OIDCError as exc:
        raise TokenFetchError(str(exc)) from None
    if not setting.role_arn:
        raise TokenFetchError(
            f"{setting.origin} needs a role to assume: set AWS_ROLE_ARN (or role_arn in the [[registry]] table)"
        )
    kept = keeper.recall(key)
    if kept is not None:
        return kept
    from docker_credential_ecr import aws

    try:
        jwt = oidc.token(source, environ, timeout=aws.READ_TIMEOUT)
    except oidc.OIDCError as exc:
        raise TokenFetchError(str(exc)) from None
    creds = aws.assume_role_with_web_identity(
        registry,
        role_arn=setting.role_arn,
        role_from="role_arn" if setting.origin == "web_identity" else "AWS_ROLE_ARN",
        session_name=setting.session_name,
        token=jwt,
        token_label="<OIDC token>",  # noqa: S106 - a label for messages, not a secret
        environ=environ,
        claims=oidc.claims(jwt),
        source_label=source.describe(),
    )
    keeper.keep(key, creds)
    return creds


def describe(setting: oidc.Setting, environ: Mapping[str, str]) -> dict[str, object]:
    """For `doctor`: the source, the role, the session name and the token's claims (never the token)."""
    facts: dict[str, object] = {"setting": setting.spec, "from": setting.origin, "role": setting.role_arn or None}
    facts["session_name"] = setting.session_name
    try:
        source = oidc.parse_source(setting.spec, environ)
    except oidc.OIDCError as exc:
        facts["error"] = str(exc)
        return facts
    facts["source"] = source.describe()
    try:
        jwt = oidc.token(source, environ, timeout=6.0)
    except oidc.OIDCError as exc:
        facts["error"] = str(exc)
        return facts
    payload = oidc.claims(jwt)
    facts.update(oidc.stable_claims(payload))
    expiry = payload.get("exp")
    if isinstance(expiry, (int, float)) and not isinstance(expiry, bool):
        facts["expires_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
    del jwt
    return facts
