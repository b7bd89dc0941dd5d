"""CI token sources, JWT claims and STS session names (docker_credential_ecr.oidc)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fakeecr
from docker_credential_ecr import oidc
from fakeecr import FakeAWS

STS_SESSION_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}")  # STS's [\w+=,.@-]{2,64}, \w in ASCII


# -- sources ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"GITHUB_ACTIONS": "true"}, ("github", "", "GitHub Actions"), id="github"),
        pytest.param({"GITLAB_CI": "true", "CI": "true"}, ("env", "GITLAB_OIDC_TOKEN", "GitLab CI"), id="gitlab"),
        pytest.param({"CIRCLECI": "true"}, ("env", "CIRCLE_OIDC_TOKEN_V2", "CircleCI"), id="circleci"),
        pytest.param(
            {"BITBUCKET_BUILD_NUMBER": "7", "CI": "true"},
            ("env", "BITBUCKET_STEP_OIDC_TOKEN", "Bitbucket Pipelines"),
            id="bitbucket",
        ),
        pytest.param({"CI": "true"}, None, id="unknown-ci"),
        pytest.param({"GITHUB_ACTIONS": "false"}, None, id="github-false"),
    ],
)
def test_detect(environ: dict[str, str], expected: tuple[str, str, str] | None) -> None:
    found = oidc.detect(environ)
    assert (None if found is None else (found.kind, found.detail, found.ci)) == expected


def test_parse_source() -> None:
    assert oidc.parse_source("github", {}) == oidc.Source("github")
    assert oidc.parse_source(" env:MY_TOKEN ", {}) == oidc.Source("env", "MY_TOKEN")
    assert oidc.parse_source("file:~/t.jwt", {"HOME": "/h"}) == oidc.Source("file", "/h/t.jwt")
    assert oidc.parse_source("auto", {"CIRCLECI": "true"}).spec == "env:CIRCLE_OIDC_TOKEN_V2"
    for bad in ("", "gitlab", "env:", "env:A-B", "env:É", "file:", "github:x", "auto:x"):
        with pytest.raises(oidc.OIDCError, match="is not a token source: expected github, env:NAME"):
            oidc.parse_source(bad, {})
        assert oidc.check_spec(bad) is not None
    with pytest.raises(oidc.OIDCError, match="=auto: no CI detected"):
        oidc.parse_source("auto", {})
    assert oidc.Source("github", ci="GitHub Actions").describe().endswith("detected GitHub Actions")


def test_env_token_and_remedies() -> None:
    jwt = fakeecr.make_jwt({"sub": "s"})
    assert oidc.local_token(oidc.Source("env", "T"), {"T": f" {jwt}\n"}) == jwt
    remedies = {
        "GITLAB_OIDC_TOKEN": "id_tokens: GITLAB_OIDC_TOKEN: aud: sts.amazonaws.com",
        "BITBUCKET_STEP_OIDC_TOKEN": "oidc: true",
        "CIRCLE_OIDC_TOKEN_V2": "CircleCI",
        "OTHER": "AWS_ECR_WEB_IDENTITY",
    }
    for name, remedy in remedies.items():
        with pytest.raises(oidc.OIDCError, match=f"no OIDC token in environment variable {name}") as info:
            oidc.local_token(oidc.Source("env", name), {name: "  "})
        assert remedy in str(info.value)


def test_file_token(tmp_path: Path) -> None:
    jwt = fakeecr.make_jwt({"sub": "s"})
    path = tmp_path / "token"
    path.write_text(jwt + "\n")
    path.chmod(0o644)
    assert oidc.local_token(oidc.Source("file", str(path)), {}) == jwt
    link = tmp_path / "link"
    link.symlink_to(path)  # Kubernetes projected volumes are symlinks: followed, then checked
    assert oidc.local_token(oidc.Source("file", str(link)), {}) == jwt
    path.chmod(0o646)
    with pytest.raises(oidc.OIDCError, match="not this user's"):
        oidc.local_token(oidc.Source("file", str(path)), {})
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(oidc.OIDCError, match="not a regular file"):  # and no hang
        oidc.local_token(oidc.Source("file", str(fifo)), {})
    with pytest.raises(oidc.OIDCError, match="cannot read the OIDC token file"):
        oidc.local_token(oidc.Source("file", str(tmp_path / "absent")), {})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(oidc.OIDCError, match="is empty"):
        oidc.local_token(oidc.Source("file", str(empty)), {})
    big = tmp_path / "big"
    big.write_bytes(b"x" * (oidc.MAX_TOKEN_BYTES + 1))
    with pytest.raises(oidc.OIDCError, match="larger than 64 KiB"):
        oidc.local_token(oidc.Source("file", str(big)), {})
    assert stat.S_IMODE(path.stat().st_mode) == 0o646  # read only, never changed


# -- GitHub Actions' token service over real HTTP -----------------------------------------------------


def test_github_token_from_the_fake(fake: FakeAWS) -> None:
    fake.github_oidc("job-request-token", {"sub": "repo:octo/app:ref:refs/heads/main", "repository_owner": "octo"})
    environ = {oidc.GITHUB_URL_ENV: fake.github_token_url, oidc.GITHUB_BEARER_ENV: "job-request-token"}
    jwt = oidc.token(oidc.Source("github"), environ, timeout=5)
    assert oidc.stable_claims(oidc.claims(jwt)) == {
        "iss": fakeecr.GITHUB_ISSUER,
        "sub": "repo:octo/app:ref:refs/heads/main",
        "aud": "sts.amazonaws.com",
    }
    (request,) = fake.requests
    assert request.params["audience"] == "sts.amazonaws.com"
    assert request.params["bearer_token"] == "present"
    with pytest.raises(oidc.OIDCError, match=r"answered HTTP 401 \(the job's request token was refused\)") as info:
        oidc.github_token({**environ, oidc.GITHUB_BEARER_ENV: "stale"}, timeout=5)
    assert "stale" not in str(info.value)
    with pytest.raises(oidc.OIDCError, match="permissions: id-token: write"):
        oidc.github_token({oidc.GITHUB_URL_ENV: fake.github_token_url}, timeout=5)
    with pytest.raises(oidc.OIDCError, match="not an https URL"):
        oidc.github_token({**environ, oidc.GITHUB_URL_ENV: "http://192.0.2.1/token"}, timeout=5)
    fake.add_fault("github-oidc", "hang")
    with pytest.raises(oidc.OIDCError, match="cannot reach GitHub Actions' OIDC token service"):
        oidc.github_token(environ, timeout=0.5)


# -- claims and identity ----------------------------------------------------------------------------


def test_claims() -> None:
    jwt = fakeecr.make_jwt({"iss": "https://i", "sub": "s", "aud": ["b", "a"], "exp": 5})
    assert oidc.stable_claims(oidc.claims(jwt)) == {"iss": "https://i", "sub": "s", "aud": "a,b"}
    for not_a_jwt in ("", "a.b", "a.!!!.c", "a.bnVsbA.c", "a." + "W10" + ".c"):
        assert oidc.claims(not_a_jwt) == {}


def test_identity_inputs_follow_claims_not_the_token(tmp_path: Path) -> None:
    claims = {"iss": "https://gitlab.example.com", "sub": "project_path:g/p:ref_type:branch:ref:main", "aud": "a"}
    one, rotated = fakeecr.make_jwt({**claims, "exp": 1}), fakeecr.make_jwt({**claims, "exp": 2})
    source = oidc.Source("env", "GITLAB_OIDC_TOKEN")
    key = oidc.identity_inputs(source, {"GITLAB_OIDC_TOKEN": one})
    assert key == oidc.identity_inputs(source, {"GITLAB_OIDC_TOKEN": rotated})
    assert not any(one in piece or one.split(".")[2] in piece for piece in key)
    other = fakeecr.make_jwt({**claims, "sub": "project_path:g/other:ref_type:branch:ref:main"})
    assert oidc.identity_inputs(source, {"GITLAB_OIDC_TOKEN": other}) != key
    assert oidc.identity_inputs(source, {}) == ["web-identity=env:GITLAB_OIDC_TOKEN", "token=absent"]
    opaque = oidc.identity_inputs(source, {"GITLAB_OIDC_TOKEN": "opaque-secret-token"})
    assert opaque[1].startswith("token-digest=")
    assert "opaque-secret-token" not in "".join(opaque)
    github = oidc.identity_inputs(oidc.Source("github"), {oidc.GITHUB_URL_ENV: "https://x/job/1"})
    assert "github-request-url=https://x/job/1" in github
    assert github != oidc.identity_inputs(oidc.Source("github"), {oidc.GITHUB_URL_ENV: "https://x/job/2"})


# -- session names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"GITHUB_REPOSITORY": "octo/app", "GITHUB_RUN_ID": "123456"}, "octo.app@123456"),
        ({"CI_PROJECT_PATH": "group/sub group/proj", "CI_PIPELINE_ID": "99"}, "group.sub-group.proj@99"),
        ({"CIRCLE_PROJECT_REPONAME": "app", "CIRCLE_BUILD_NUM": "42"}, "app@42"),
        ({"BITBUCKET_REPO_FULL_NAME": "team/repo", "BITBUCKET_BUILD_NUMBER": "3"}, "team.repo@3"),
        ({"AWS_ROLE_SESSION_NAME": "mine", "GITHUB_REPOSITORY": "o/a", "GITHUB_RUN_ID": "1"}, "mine"),
        ({"AWS_ROLE_SESSION_NAME": "x"}, "docker-credential-ecr"),
        ({"GITHUB_REPOSITORY": "o/a"}, "docker-credential-ecr"),
        ({}, "docker-credential-ecr"),
        ({"GITHUB_REPOSITORY": "o/" + "r" * 80, "GITHUB_RUN_ID": "1234567890"}, ("o." + "r" * 80)[:53] + "@1234567890"),
    ],
)
def test_session_name(environ: dict[str, str], expected: str) -> None:
    assert oidc.session_name(environ) == expected


_CI_VARS = list(oidc._CI_RUN)


@settings(max_examples=150, deadline=None)
@given(
    pair=st.sampled_from(_CI_VARS),
    repo=st.text(min_size=0, max_size=200),
    run=st.text(min_size=0, max_size=100),
    explicit=st.one_of(st.none(), st.text(max_size=100)),
)
def test_session_name_is_always_valid_for_sts(pair: tuple[str, str], repo: str, run: str, explicit: str | None) -> None:
    environ = {pair[0]: repo, pair[1]: run}
    if explicit is not None:
        environ["AWS_ROLE_SESSION_NAME"] = explicit
    name = oidc.session_name(environ)
    assert STS_SESSION_NAME.fullmatch(name), name
    assert name == oidc.session_name(dict(environ))  # deterministic
    clean_run = run.strip()
    if (
        explicit is None
        and repo.strip()
        and clean_run
        and len(clean_run) <= 32
        and all(c in oidc.SESSION_NAME_CHARS for c in clean_run)
    ):
        assert name.endswith("@" + clean_run)  # the run id survives, however long the repository


@given(st.text(max_size=300))
def test_clean_session_name_keeps_allowed_text(text: str) -> None:
    cleaned = oidc.clean_session_name(text)
    assert len(cleaned) == min(len(text), 64)
    assert all(c in oidc.SESSION_NAME_CHARS for c in cleaned)
    assert all(cleaned[i] == c for i, c in enumerate(text[:64]) if c in oidc.SESSION_NAME_CHARS)
