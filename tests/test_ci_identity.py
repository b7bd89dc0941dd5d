"""CI runners without login: the installed helper gets a CI's OIDC token, assumes a role with it, gets ECR.

Each CI recipe of docs/ci.md is exercised here by its mechanism: the token source it names (GitHub
Actions' token service over HTTP, GitLab/CircleCI/Bitbucket variables, a file), against the fake OIDC
provider and the fake STS, whose trust checks answer STS's own errors.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import fakeecr
from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, WEST_HOST, get_ok, run_helper

ROLE = "arn:aws:iam::111122223333:role/ci-ecr-pull"
GITHUB_SUB = "repo:octo/app:ref:refs/heads/main"
GITLAB_ISSUER = "https://gitlab.example.com"
GITLAB_SUB = "project_path:group/app:ref_type:branch:ref:main"
CIRCLE_ISSUER = "https://oidc.circleci.com/org/0b7f7c2e-1111-2222-3333-444455556666"
CIRCLE_SUB = "org/0b7f7c2e-1111-2222-3333-444455556666/project/9e1a/user/77aa"
BITBUCKET_ISSUER = "https://api.bitbucket.org/2.0/workspaces/team/pipelines-config/identity/oidc"
BITBUCKET_SUB = "{repo-uuid}:{step-uuid}"
BITBUCKET_AUD = "ari:cloud:bitbucket::workspace/0d7e"
JOB_REQUEST_TOKEN = "job-request-token-not-a-jwt"


@pytest.fixture
def ci_env(env: dict[str, str]) -> dict[str, str]:
    """The sealed environment with no AWS credentials at all: the CI token is the only credential."""
    base = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    return {**base, "AWS_ROLE_ARN": ROLE}


def github(fake: FakeAWS, ci_env: dict[str, str]) -> dict[str, str]:
    fake.add_oidc_provider(fakeecr.GITHUB_ISSUER, ["sts.amazonaws.com"])
    fake.trust_web_identity(ROLE, fakeecr.GITHUB_ISSUER, "repo:octo/app:ref:refs/heads/*")
    fake.github_oidc(JOB_REQUEST_TOKEN, {"sub": GITHUB_SUB, "repository": "octo/app", "repository_owner": "octo"})
    return {
        **ci_env,
        "AWS_ECR_WEB_IDENTITY": "github",
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "octo/app",
        "GITHUB_RUN_ID": "8123456789",
        "ACTIONS_ID_TOKEN_REQUEST_URL": fake.github_token_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": JOB_REQUEST_TOKEN,
    }


def gitlab(
    fake: FakeAWS, ci_env: dict[str, str], trust: str = "project_path:group/app:ref_type:branch:ref:*", **claims: object
) -> dict[str, str]:
    fake.add_oidc_provider(GITLAB_ISSUER, ["sts.amazonaws.com"])
    fake.trust_web_identity(ROLE, GITLAB_ISSUER, trust)
    token = fakeecr.make_jwt({"iss": GITLAB_ISSUER, "aud": "sts.amazonaws.com", "sub": GITLAB_SUB, **claims})
    return {
        **ci_env,
        "AWS_ECR_WEB_IDENTITY": "auto",
        "GITLAB_CI": "true",
        "CI_PROJECT_PATH": "group/app",
        "CI_PIPELINE_ID": "4242",
        "GITLAB_OIDC_TOKEN": token,
    }


def sts_calls(fake: FakeAWS) -> list[fakeecr.Request]:
    return [r for r in fake.requests if r.op == "sts:AssumeRoleWithWebIdentity"]


def assert_one_line_without_secrets(stderr: str, *secrets: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    for secret in secrets:
        assert secret not in stderr
        assert secret.rpartition(".")[2] not in stderr
    return lines[0]


# -- the recipes ------------------------------------------------------------------------------------


def test_github_actions(fake: FakeAWS, ci_env: dict[str, str], cache_dir: Path) -> None:
    env = github(fake, ci_env)
    answer = get_ok(env)
    assert answer["Username"] == "AWS"
    assert [r.op for r in fake.requests] == ["github-oidc", "sts:AssumeRoleWithWebIdentity", "ecr"]
    oidc_request, assume, ecr = fake.requests
    assert oidc_request.params["audience"] == "sts.amazonaws.com"
    assert assume.access_key_id == ""  # unsigned: no other credentials needed or used
    assert assume.params["RoleArn"] == ROLE
    assert assume.params["RoleSessionName"] == "octo.app@8123456789"
    assert (ecr.access_key_id, ecr.session_token) == (fakeecr.access_key_for_role(ROLE), True)
    calls = fake.calls("*")
    assert get_ok(env)["Secret"] == answer["Secret"]
    assert fake.calls("*") == calls  # the second get makes no call at all
    # The role's credentials are kept (0600) for a second region: ECR again, no token, no STS.
    get_ok(env, WEST_HOST)
    assert fake.calls("ecr") == 2
    assert fake.calls("github-oidc") == fake.calls("sts") == 1
    roles = cache_dir / "credentials.json"
    assert stat.S_IMODE(roles.stat().st_mode) == 0o600
    stored = "".join(p.read_text() for p in cache_dir.rglob("*.json"))
    assert JOB_REQUEST_TOKEN not in stored
    for secret in fake.issued_secrets[:1]:  # the role's secret key sits in the role cache only
        assert secret not in (cache_dir / "cache.json").read_text()


def test_github_actions_other_job_is_another_identity(fake: FakeAWS, ci_env: dict[str, str]) -> None:
    env = github(fake, ci_env)
    get_ok(env)
    other_job = {**env, "ACTIONS_ID_TOKEN_REQUEST_URL": fake.github_token_url + "&job=2"}
    get_ok(other_job)
    assert fake.calls("github-oidc") == fake.calls("sts") == 2  # never another job's token or role session


def test_gitlab_ci_auto(fake: FakeAWS, ci_env: dict[str, str]) -> None:
    env = gitlab(fake, ci_env)
    get_ok(env)
    (assume,) = sts_calls(fake)
    assert assume.params["RoleSessionName"] == "group.app@4242"
    # A rotated token with the same claims is the same identity: still a hit, no call.
    calls = fake.calls("*")
    rotated = {**env, "GITLAB_OIDC_TOKEN": fakeecr.make_jwt(_claims_of(env["GITLAB_OIDC_TOKEN"]))}
    assert rotated["GITLAB_OIDC_TOKEN"] != env["GITLAB_OIDC_TOKEN"]
    get_ok(rotated)
    assert fake.calls("*") == calls
    # Another project's token is another identity: a miss, and its own AssumeRoleWithWebIdentity.
    other = gitlab(fake, ci_env, sub="project_path:group/app:ref_type:branch:ref:release")
    get_ok(other)
    assert len(sts_calls(fake)) == 2


CI_CASES = {
    "circleci": (
        {"CIRCLECI": "true", "CIRCLE_PROJECT_REPONAME": "app", "CIRCLE_BUILD_NUM": "77"},
        "CIRCLE_OIDC_TOKEN_V2",
        (CIRCLE_ISSUER, CIRCLE_SUB, "0b7f7c2e-1111-2222-3333-444455556666"),
        "app@77",
    ),
    "bitbucket": (
        {"CI": "true", "BITBUCKET_BUILD_NUMBER": "31", "BITBUCKET_REPO_FULL_NAME": "team/app"},
        "BITBUCKET_STEP_OIDC_TOKEN",
        (BITBUCKET_ISSUER, BITBUCKET_SUB, BITBUCKET_AUD),
        "team.app@31",
    ),
}


@pytest.mark.parametrize("ci", sorted(CI_CASES))
def test_circleci_and_bitbucket_auto(fake: FakeAWS, ci_env: dict[str, str], ci: str) -> None:
    variables, token_variable, (issuer, sub, audience), session = CI_CASES[ci]
    fake.add_oidc_provider(issuer, [audience])
    fake.trust_web_identity(ROLE, issuer, sub)
    token = fakeecr.make_jwt({"iss": issuer, "aud": audience, "sub": sub})
    env = {**ci_env, **variables, "AWS_ECR_WEB_IDENTITY": "auto", token_variable: token}
    get_ok(env)
    (assume,) = sts_calls(fake)
    assert assume.params["RoleSessionName"] == session
    calls = fake.calls("*")
    get_ok(env)
    assert fake.calls("*") == calls


def test_token_file_and_registry_table(fake: FakeAWS, ci_env: dict[str, str], home: Path, tmp_path: Path) -> None:
    fake.add_oidc_provider(GITLAB_ISSUER, ["sts.amazonaws.com"])
    fake.trust_web_identity(ROLE, GITLAB_ISSUER, GITLAB_SUB)
    token_file = tmp_path / "oidc-token"
    token_file.write_text(fakeecr.make_jwt({"iss": GITLAB_ISSUER, "aud": "sts.amazonaws.com", "sub": GITLAB_SUB}))
    config = home / ".config" / "docker-credential-ecr" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[[registry]]\nmatch = "123456789012"\nweb_identity = "file:{token_file}"\nrole_arn = "{ROLE}"\n'
        'session_name = "table-session"\n'
    )
    env = {k: v for k, v in ci_env.items() if k != "AWS_ROLE_ARN"}  # the role comes from the table
    get_ok(env)
    (assume,) = sts_calls(fake)
    assert (assume.params["RoleArn"], assume.params["RoleSessionName"]) == (ROLE, "table-session")
    bad = config.read_text().replace(f"file:{token_file}", "gitlab")
    config.write_text(bad)
    proc = run_helper(["get"], env, ECR_HOST)
    assert (proc.returncode, proc.stdout.strip()) == (1, NOT_FOUND)
    assert "web_identity 'gitlab' is not a token source: expected github, env:NAME, file:PATH or auto" in proc.stderr


# -- what STS refuses, and what to change -----------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param(
            {"aud": "https://gitlab.example.com"},
            "STS refused the token's audience (aud https://gitlab.example.com): add https://gitlab.example.com to "
            "the client ids of the IAM OIDC provider gitlab.example.com, or have the CI issue the token for "
            "sts.amazonaws.com",
            id="wrong-audience",
        ),
        pytest.param(
            {"iss": "https://gitlab.other.example"},
            "STS does not trust the token's issuer (iss https://gitlab.other.example): create an IAM OIDC identity "
            f"provider for https://gitlab.other.example with client id sts.amazonaws.com in the account of {ROLE}",
            id="untrusted-provider",
        ),
        pytest.param(
            {"sub": "project_path:group/app:ref_type:branch:ref:feature/x"},
            f"the trust policy of {ROLE} refuses the token's subject "
            "(sub project_path:group/app:ref_type:branch:ref:feature/x): allow it in the condition on "
            "gitlab.example.com:sub (and gitlab.example.com:aud = sts.amazonaws.com)",
            id="sub-rejected",
        ),
        pytest.param({"exp": 1_000_000}, "has expired: the CI must hand out a fresh one", id="expired"),
    ],
)
def test_refusals_name_the_claim(
    fake: FakeAWS, ci_env: dict[str, str], claims: dict[str, object], expected: str
) -> None:
    env = gitlab(fake, ci_env, trust=GITLAB_SUB, **claims)
    proc = run_helper(["get"], env, ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    line = assert_one_line_without_secrets(proc.stderr, env["GITLAB_OIDC_TOKEN"])
    assert expected in line
    assert fake.calls("ecr") == 0


def test_missing_token_and_role(fake: FakeAWS, ci_env: dict[str, str]) -> None:
    env = github(fake, ci_env)
    no_permission = {k: v for k, v in env.items() if not k.startswith("ACTIONS_ID_TOKEN")}
    proc = run_helper(["get"], no_permission, ECR_HOST)
    assert (proc.returncode, proc.stdout.strip()) == (1, NOT_FOUND)
    assert "add `permissions: id-token: write` to the workflow or job" in assert_one_line_without_secrets(proc.stderr)
    no_role = {k: v for k, v in env.items() if k != "AWS_ROLE_ARN"}
    proc = run_helper(["get"], no_role, ECR_HOST)
    assert "AWS_ECR_WEB_IDENTITY needs a role to assume: set AWS_ROLE_ARN" in proc.stderr
    wrong_bearer = {**env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "expired-request-token"}
    proc = run_helper(["get"], wrong_bearer, ECR_HOST)
    line = assert_one_line_without_secrets(proc.stderr, "expired-request-token")
    assert "answered HTTP 401" in line
    gitlab_without_id_tokens = {**gitlab(fake, ci_env), "GITLAB_OIDC_TOKEN": ""}
    proc = run_helper(["get"], gitlab_without_id_tokens, ECR_HOST)
    assert "id_tokens: GITLAB_OIDC_TOKEN: aud: sts.amazonaws.com" in assert_one_line_without_secrets(proc.stderr)
    assert fake.calls("sts") == fake.calls("ecr") == 0


# -- doctor -----------------------------------------------------------------------------------------


def test_doctor_shows_source_and_claims_never_the_token(fake: FakeAWS, ci_env: dict[str, str]) -> None:
    env = gitlab(fake, ci_env, exp=4102444800)
    proc = run_helper(["doctor", "--json", ECR_HOST], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    web = report["sections"]["credentials"]["web_identity"]
    assert web["source"] == "environment variable GITLAB_OIDC_TOKEN, detected GitLab CI"
    assert (web["iss"], web["sub"], web["aud"]) == (GITLAB_ISSUER, GITLAB_SUB, "sts.amazonaws.com")
    assert web["expires_at"] == "2100-01-01T00:00:00Z"
    assert web["role"] == ROLE
    assert report["sections"]["fetch"]["ok"] is True
    text = run_helper(["doctor", ECR_HOST], env)
    token = env["GITLAB_OIDC_TOKEN"]
    for output in (proc.stdout, proc.stderr, text.stdout, text.stderr):
        assert token not in output
        assert token.split(".")[1] not in output
    assert "sub:" in text.stdout
    refused = gitlab(fake, ci_env, sub="project_path:evil/app:ref_type:branch:ref:main")
    failing = run_helper(["doctor", ECR_HOST], refused)
    assert failing.returncode == 1
    assert "refuses the token's subject (sub project_path:evil/app" in failing.stdout


def test_never_uses_other_credentials(fake: FakeAWS, env: dict[str, str]) -> None:
    """With static keys in the environment too, the web identity is what assumes the role and calls ECR."""
    with_keys = github(fake, {**env, "AWS_ROLE_ARN": ROLE})
    get_ok(with_keys)
    assert sts_calls(fake)[0].access_key_id == ""
    assert fake.requests[-1].access_key_id == fakeecr.access_key_for_role(ROLE)
    assert os.environ.get("AWS_ECR_WEB_IDENTITY") is None


def _claims_of(jwt: str) -> dict[str, object]:
    from docker_credential_ecr.oidc import claims

    return claims(jwt)


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_cache_hit_imports_nothing_heavy(fake: FakeAWS, ci_env: dict[str, str], tmp_path: Path, ci: str) -> None:
    """A hit with a CI identity reads the token's claims (or the job's URL) locally: no network, no botocore."""
    from test_import_budget import bare_modules, heavy, modules_after

    env = github(fake, ci_env) if ci == "github" else gitlab(fake, ci_env)
    warm = get_ok(env)
    calls = fake.calls("*")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    modules, stdout = modules_after(["get"], env, workdir, ECR_HOST)
    assert json.loads(stdout)["Secret"] == warm["Secret"]
    assert fake.calls("*") == calls
    assert heavy(modules, bare_modules(env, workdir)) == []


# -- the config file's web_identity -------------------------------------------------------------------


def test_web_identity_table_key_is_validated() -> None:
    from docker_credential_ecr import config as configs
    from docker_credential_ecr.errors import ConfigError

    table = '[[registry]]\nmatch = "123456789012"\n'
    text = table + f'web_identity = " env:CI_TOKEN "\nrole_arn = "{ROLE}"\nsession_name = "s1"\n'
    rule = configs.parse(text).tables[0]
    assert (rule.web_identity, rule.role_arn, rule.session_name) == ("env:CI_TOKEN", ROLE, "s1")
    assert rule.settings()["web_identity"] == "env:CI_TOKEN"
    assert configs.RegistryTable.from_json(rule.to_json()).web_identity == "env:CI_TOKEN"  # the parsed copy keeps it
    # session_name alone is a web identity setting too (the role may come from AWS_ROLE_ARN).
    assert configs.parse(table + 'web_identity = "auto"\nsession_name = "s1"\n').tables[0].role_arn is None
    for bad, message in (
        ('web_identity = "gitlab"', "web_identity 'gitlab' is not a token source"),
        ('web_identity = "env:"', "web_identity 'env:' is not a token source"),
        ('web_identity = "github"\nprofile = "p"', "web_identity excludes profile and external_id"),
        (f'web_identity = "github"\nrole_arn = "{ROLE}"\nexternal_id = "x1"', "excludes profile and external_id"),
        ("web_identity = 3", "web_identity"),
    ):
        with pytest.raises(ConfigError, match=message):
            configs.parse(table + bad + "\n")


def test_principal_follows_the_table_and_the_claims(tmp_path: Path) -> None:
    from docker_credential_ecr import config as configs
    from docker_credential_ecr.helper import Helper
    from docker_credential_ecr.registry import parse
    from docker_credential_ecr.settings import Settings

    registry = parse(ECR_HOST)
    assert registry is not None
    claims = {"iss": GITLAB_ISSUER, "aud": "sts.amazonaws.com", "sub": GITLAB_SUB}
    base = {"HOME": str(tmp_path), "AWS_ECR_CACHE_DIR": str(tmp_path / "c"), "AWS_ROLE_ARN": ROLE}

    def principal(environ: dict[str, str], text: str = "") -> str:
        config = configs.parse(text)
        resolution = config.resolve(ECR_HOST)
        assert resolution is not None
        return Helper(Settings.from_environ(environ), config=config).identity_key(resolution)

    plain = principal(base)
    web = {**base, "AWS_ECR_WEB_IDENTITY": "env:T", "T": fakeecr.make_jwt(claims)}
    assert principal(web) != plain
    assert principal({**web, "T": fakeecr.make_jwt({**claims, "exp": 5})}) == principal(web)  # rotation
    assert principal({**web, "T": fakeecr.make_jwt({**claims, "sub": "other"})}) != principal(web)
    assert principal({**web, "AWS_ROLE_ARN": ROLE + "2"}) != principal(web)
    table = f'[[registry]]\nmatch = "123456789012"\nweb_identity = "env:T"\nrole_arn = "{ROLE}"\n'
    assert principal({**base, "T": web["T"]}, table) not in (plain, principal(web))
    # A table with its own profile is another principal on purpose: the environment's web identity stays out.
    with_profile = '[[registry]]\nmatch = "123456789012"\nprofile = "p"\n'
    assert principal(web, with_profile) == principal(base, with_profile)


def test_doctor_without_a_registry_takes_the_ci_token_as_the_credential(fake: FakeAWS, ci_env: dict[str, str]) -> None:
    env = gitlab(fake, ci_env)
    proc = run_helper(["doctor", "--json"], env)
    report = json.loads(proc.stdout)
    credentials = report["sections"]["credentials"]
    assert credentials["problems"] == []  # not "no AWS credentials found": there are none but the token
    assert credentials["web_identity"]["sub"] == GITLAB_SUB
    assert proc.returncode == 0, proc.stdout
    refused = run_helper(["doctor", "--json"], {**env, "GITLAB_OIDC_TOKEN": ""})
    assert refused.returncode == 1
    problems = json.loads(refused.stdout)["sections"]["credentials"]["problems"]
    assert [p["level"] for p in problems] == ["fail"]
    assert "no OIDC token in environment variable GITLAB_OIDC_TOKEN" in problems[0]["message"]
