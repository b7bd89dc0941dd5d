"""helper's side paths: the cache busy, unusable or out of time, the timeout line, `list` without a cache.

The main line (miss, hit, stale, list) is in ``test_helper.py``; these are the paths mutation testing
(``scripts/mutate helper ...``) found no test for. The helper runs for real: the console script, or
:class:`Helper` in-process against the local fake ECR over HTTP, with the lock held by a real second
lock holder. Only faults that cannot be made to happen on cue are injected: a deadline firing inside
a cache write, a lock that would stay busy for a minute, a fetch that fails while another process
stores a token.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from docker_credential_ecr import log
from docker_credential_ecr.errors import (
    CredentialsNotFoundError,
    DeadlineExceededError,
    StoreBusyError,
    TokenFetchError,
)
from docker_credential_ecr.helper import Helper, timeout_line
from docker_credential_ecr.registry import parse
from docker_credential_ecr.settings import Settings
from docker_credential_ecr.store import FILE_NAME, Store, Token, token_key
from fakeecr import FakeAWS
from support import ECR_HOST, NOT_FOUND, OTHER_ACCOUNT_HOST, PUBLIC_HOST, run_helper

PREFIX = "docker-credential-ecr-login: "


class Run:
    """An in-process helper on ``env`` (the fake's endpoints, a private cache), its stderr lines kept.

    botocore reads the process environment itself, so ``env`` is also set there (``monkeypatch``).
    """

    def __init__(self, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        import docker_credential_ecr.aws  # noqa: F401 - imported now, not inside a get's short deadline

        self.warnings: list[str] = []
        self.helper = Helper(Settings.from_environ(env), warn=self.warnings.append)

    def key(self, url: str = ECR_HOST) -> str:
        resolution = self.helper.resolve(url)
        assert resolution is not None
        return token_key(self.helper.identity_key(resolution), resolution.registry)


def cached_tokens(cache_dir: Path) -> dict[str, Token]:
    return Store(str(cache_dir)).tokens() if (cache_dir / FILE_NAME).exists() else {}


# -- the timeout line ---------------------------------------------------------------------------------
def test_an_ecr_public_timeout_names_ecr_public(env: dict[str, str], fake: FakeAWS) -> None:
    fake.add_fault("ecr-public", "hang", times=None)
    proc = run_helper(["get"], {**env, "AWS_ECR_TIMEOUT": "1.5"}, PUBLIC_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr == (
        f"{PREFIX}ECR Public: no token in time (gave up after 1.5 s; AWS_ECR_TIMEOUT); check the network and proxy\n"
    )


@pytest.mark.parametrize(
    ("url", "where"),
    [
        (PUBLIC_HOST, "ECR Public"),
        ("ecr-public.aws.com", "ECR Public"),
        (ECR_HOST, "ECR (us-east-1)"),
        ("123456789012.dkr.ecr.eu-west-3.amazonaws.com", "ECR (eu-west-3)"),
    ],
)
def test_the_timeout_line_names_the_registry_s_api(url: str, where: str) -> None:
    registry = parse(url)
    assert registry is not None
    line = timeout_line(registry, DeadlineExceededError("gave up after 2 s"))
    assert line == f"{where}: no token in time (gave up after 2 s; AWS_ECR_TIMEOUT); check the network and proxy"


# -- a busy cache lock: the token is still served -------------------------------------------------------
def test_a_token_lock_held_elsewhere_fetches_without_the_cache(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run({**env, "AWS_ECR_TIMEOUT": "4"}, monkeypatch)
    key = run.key()
    with Store(str(cache_dir)).lock(key, timeout=1):  # another process fetching the same token, stuck
        answer = run.helper.get(ECR_HOST)
    assert answer.secret in fake.issued
    assert fake.calls("ecr") == 1
    # The wait was half of the 4 s deadline; the token was fetched, served, and not stored.
    assert run.warnings == [f"token cache: gave up waiting 2.0 s for the {key} lock; fetching without it"]
    assert cached_tokens(cache_dir) == {}


def test_a_token_file_lock_held_elsewhere_skips_storing_only(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run({**env, "AWS_ECR_TIMEOUT": "4"}, monkeypatch)
    with Store(str(cache_dir)).lock("cache-file", timeout=1):  # a writer stuck on the token file
        answer = run.helper.get(ECR_HOST)
    assert answer.secret in fake.issued
    assert len(run.warnings) == 1
    assert run.warnings[0].startswith("token cache: gave up waiting ")
    assert run.warnings[0].endswith(" s for the cache-file lock; going on without it")
    assert cached_tokens(cache_dir) == {}
    # A busy lock does not turn the cache off: the next miss stores its token.
    assert run.helper.get(ECR_HOST).secret == fake.issued[-1]
    assert fake.calls("ecr") == 2
    assert [t.password for t in cached_tokens(cache_dir).values()] == [fake.issued[-1]]


# -- the deadline fires while storing: the token is good, only the caching is lost -----------------------
def test_no_time_left_to_store_still_serves_the_token(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deadline_fires(self: Store, *args: object, **kwargs: object) -> None:
        raise DeadlineExceededError("gave up after 60 s")

    monkeypatch.setattr(Store, "put_token", deadline_fires)
    run = Run(env, monkeypatch)
    answer = run.helper.get(ECR_HOST)
    assert answer.secret in fake.issued
    assert run.warnings == ["token cache: no time left to store the token"]
    assert cached_tokens(cache_dir) == {}


def test_no_time_left_to_record_a_host_still_serves_the_hit(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Run(env, monkeypatch).helper.get(ECR_HOST)

    def deadline_fires(self: Store, *args: object, **kwargs: object) -> None:
        raise DeadlineExceededError("gave up after 60 s")

    monkeypatch.setattr(Store, "add_host", deadline_fires)
    run = Run(env, monkeypatch)
    # Another account in the same region: the same token, a host `list` has not seen yet.
    assert run.helper.get(OTHER_ACCOUNT_HOST).secret == fake.issued[0]
    assert run.warnings == []
    assert fake.calls("ecr") == 1
    assert [t.hosts for t in cached_tokens(cache_dir).values()] == [(ECR_HOST,)]


def test_a_hit_waits_one_second_to_record_its_host(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    """A hit for a host not yet recorded waits at most 1 s for the token file, then answers anyway."""
    assert run_helper(["get"], env, ECR_HOST).returncode == 0
    with Store(str(cache_dir)).lock("cache-file", timeout=1):  # a writer stuck on the token file
        proc = run_helper(["get"], env, OTHER_ACCOUNT_HOST)
    assert (proc.returncode, json.loads(proc.stdout)["Secret"]) == (0, fake.issued[0])
    assert proc.stderr == f"{PREFIX}token cache: gave up waiting 1.0 s for the cache-file lock; going on without it\n"
    assert fake.calls("ecr") == 1
    assert [t.hosts for t in cached_tokens(cache_dir).values()] == [(ECR_HOST,)]


# -- `list` without a usable cache: an empty list, never null --------------------------------------------
@pytest.mark.parametrize("how", ["disabled", "a-file"])
def test_list_without_a_usable_cache_is_empty(env: dict[str, str], cache_dir: Path, how: str) -> None:
    run_helper(["get"], env, ECR_HOST)  # a token that a usable cache would list
    if how == "disabled":
        env = {**env, "AWS_ECR_DISABLE_CACHE": "1"}
        stderr = ""
    else:
        env = {**env, "AWS_ECR_CACHE_DIR": str(cache_dir / FILE_NAME)}
        stderr = f"{PREFIX}not using the token cache: cache directory {cache_dir / FILE_NAME} is not a directory"
    proc = run_helper(["list"], env)
    assert (proc.returncode, json.loads(proc.stdout)) == (0, {})
    assert proc.stderr.startswith(stderr)
    assert proc.stderr.count("\n") == (1 if stderr else 0)


def test_a_failed_refresh_with_no_usable_token_is_not_found(
    env: dict[str, str], fake: FakeAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add_fault("ecr", "access-denied", times=None)
    run = Run(env, monkeypatch)
    with pytest.raises(CredentialsNotFoundError) as raised:
        run.helper.get(ECR_HOST)
    assert raised.value.hint is not None
    assert run.warnings == [raised.value.hint]
    assert raised.value.hint.startswith("access denied: ")


# -- what the log says a `get` was ------------------------------------------------------------------------
def age_tokens(cache_dir: Path, seconds: float) -> None:
    """Move every cached token ``seconds`` into the past (as if that much time had gone by)."""
    store = Store(str(cache_dir))
    for key, token in store.tokens().items():
        token.issued_at -= seconds
        token.expires_at -= seconds
        store.put_token(key, token, now=token.issued_at)


def info_lines(path: Path) -> list[str]:
    """The INFO lines of the log, without their timing."""
    lines = [line.split("] ", 1)[1] for line in path.read_text().splitlines() if " INFO " in line]
    return [line.rsplit(" (", 1)[0] for line in lines]


def test_the_log_tells_a_stale_token_served_from_a_fetch(env: dict[str, str], fake: FakeAWS, cache_dir: Path) -> None:
    log_file = cache_dir.parent / "helper.log"
    logged = {**env, "AWS_ECR_LOG_LEVEL": "info", "AWS_ECR_LOG_FILE": str(log_file)}
    first = run_helper(["get"], logged, ECR_HOST)
    age_tokens(cache_dir, 8 * 3600)  # past half its life: a refresh is due; 4 h left to serve it stale
    fake.add_fault("ecr", "access-denied", times=None)
    stale = run_helper(["get"], logged, ECR_HOST)
    assert json.loads(stale.stdout)["Secret"] == json.loads(first.stdout)["Secret"]
    assert stale.stderr.startswith(f"{PREFIX}access denied: ")
    assert stale.stderr.endswith(", which expires in 239 min\n") or stale.stderr.endswith(
        ", which expires in 240 min\n"
    )
    assert info_lines(log_file) == [
        f"get {ECR_HOST}: miss, fetched",
        f"get {ECR_HOST}: stale, served after a failed refresh",
    ]


def test_a_token_another_process_fetched_while_we_waited_is_served(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single flight: a miss waits for the process holding the token's lock and serves what it stored."""
    log_file = cache_dir.parent / "helper.log"
    run = Run({**env, "AWS_ECR_LOG_LEVEL": "info", "AWS_ECR_LOG_FILE": str(log_file)}, monkeypatch)
    key = run.key()
    other = Store(str(cache_dir))
    other.ensure_directory()
    looked = threading.Event()
    read = Store.token

    def token_seen(self: Store, name: str) -> Token | None:  # a spy: tells when the cache was read
        found = read(self, name)
        looked.set()
        return found

    monkeypatch.setattr(Store, "token", token_seen)
    now = time.time()
    theirs = Token(username="AWS", password="fetched-by-the-other", issued_at=now, expires_at=now + 43200)

    holding = threading.Event()

    def other_process() -> None:
        with other.lock(key, timeout=10):
            holding.set()
            looked.wait(30)  # our `get` found no token and now waits for this lock
            other.put_token(key, theirs, now=now)

    holder = threading.Thread(target=other_process)
    holder.start()
    assert holding.wait(30)
    try:
        run.helper.start_logging()
        answer = run.helper.get(ECR_HOST)
    finally:
        holder.join()
        log.shutdown()
    assert answer.secret == "fetched-by-the-other"
    assert fake.calls("ecr") == 0
    assert run.warnings == []
    assert info_lines(log_file) == [f"get {ECR_HOST}: miss, fetched by another process"]
    assert [t.hosts for t in cached_tokens(cache_dir).values()] == [(ECR_HOST,)]  # served here: `list` names it


def test_a_password_in_an_endpoint_url_never_reaches_stderr(env: dict[str, str]) -> None:
    """An endpoint (or proxy) URL with user info, named in a failure: the line shows it redacted."""
    with socket.socket() as bound:  # bound, never listening: connections to it are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        endpoint = f"http://puller:s3cret@127.0.0.1:{port}"
        proc = run_helper(["get"], {**env, "AWS_ENDPOINT_URL_ECR": endpoint, "AWS_ECR_TIMEOUT": "10"}, ECR_HOST)
    assert (proc.returncode, proc.stdout) == (1, NOT_FOUND + "\n")
    assert proc.stderr == (
        f"{PREFIX}cannot reach the ECR (us-east-1) endpoint (Could not connect to the endpoint URL: "
        f'"http://[REDACTED]@127.0.0.1:{port}/"): check the network, proxy and region\n'
    )


@pytest.mark.parametrize(("timeout", "wait"), [("300", "60.0"), ("4", "2.0")])
def test_a_miss_waits_for_another_fetch_half_the_deadline_at_most_a_minute(
    env: dict[str, str], fake: FakeAWS, monkeypatch: pytest.MonkeyPatch, timeout: str, wait: str
) -> None:
    """The lock of a token being fetched elsewhere is waited for at most a minute, and at most half of
    AWS_ECR_TIMEOUT; the fault (a lock that stays busy) is injected so that no test waits a minute."""

    def busy(self: Store, name: str, timeout: float) -> object:
        raise StoreBusyError(f"gave up waiting {timeout:.1f} s for the {name} lock")

    run = Run({**env, "AWS_ECR_TIMEOUT": timeout}, monkeypatch)
    key = run.key()
    monkeypatch.setattr(Store, "lock", busy)
    assert run.helper.get(ECR_HOST).secret in fake.issued
    assert run.warnings == [f"token cache: gave up waiting {wait} s for the {key} lock; fetching without it"]


def test_the_debug_log_tells_a_host_that_is_not_ours(env: dict[str, str], fake: FakeAWS, tmp_path: Path) -> None:
    log_file = tmp_path / "helper.log"
    logged = {**env, "AWS_ECR_LOG_LEVEL": "debug", "AWS_ECR_LOG_FILE": str(log_file)}
    proc = run_helper(["get"], logged, "ghcr.io")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, NOT_FOUND + "\n", "")
    debug = [line.split("] ", 1)[1] for line in log_file.read_text().splitlines() if " DEBUG " in line]
    assert "get ghcr.io: not an ECR registry or alias" in debug
    assert fake.calls("*") == 0


def test_a_get_with_an_unusable_cache_says_so_once_and_answers(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path
) -> None:
    cache_dir.write_text("a file where the directory should be")
    proc = run_helper(["get"], env, ECR_HOST)
    assert (proc.returncode, json.loads(proc.stdout)["Secret"]) == (0, fake.issued[0])
    assert proc.stderr == (
        f"{PREFIX}not using the token cache: cache directory {cache_dir} is not a directory (a symlink or a file)\n"
    )


def test_a_token_another_process_stored_while_our_refresh_failed_is_served(
    env: dict[str, str], cache_dir: Path
) -> None:
    """The refresh fails, but meanwhile another process stored a token: that one is served (re-read)."""
    now = time.time()
    theirs = Token(username="AWS", password="stored-by-the-other", issued_at=now - 30000, expires_at=now + 13200)
    warnings: list[str] = []

    def fails_while_another_stores(registry: object) -> Token:  # the fault: our fetch fails
        Store(str(cache_dir)).put_token(key, theirs, now=now)
        raise TokenFetchError("access denied: try again")

    helper = Helper(Settings.from_environ(env), fetch=fails_while_another_stores, warn=warnings.append)
    resolution = helper.resolve(ECR_HOST)
    assert resolution is not None
    key = token_key(helper.identity_key(resolution), resolution.registry)
    assert helper.get(ECR_HOST).secret == "stored-by-the-other"
    assert warnings == ["access denied: try again; using the cached token, which expires in 219 min"]


def test_an_assumed_role_s_token_keeps_its_12_hours(
    env: dict[str, str], fake: FakeAWS, cache_dir: Path, tmp_path: Path
) -> None:
    """A role's credentials last an hour, but the ECR token they got lasts its own 12 h: only sources
    whose credentials are the identity (MFA session, web identity) cut the token to their expiry."""
    config = tmp_path / "config.toml"
    config.write_text('[[registry]]\nmatch = "123456789012"\nrole_arn = "arn:aws:iam::210987654321:role/ecr-pull"\n')
    proc = run_helper(["get"], {**env, "DOCKER_CREDENTIAL_ECR_CONFIG": str(config)}, ECR_HOST)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert fake.calls("sts:AssumeRole") == 1
    [token] = cached_tokens(cache_dir).values()
    assert token.expires_at - token.issued_at > 12 * 3600 - 600  # not the role credentials' 3600 s


def test_a_refresh_keeps_the_hosts_of_the_token_it_re_read_under_the_lock(
    env: dict[str, str], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token re-read under the lock, not the one read before it, gives the hosts `list` keeps:
    another process may have served it for another host in between (made to happen here: that
    process's write lands as our lock is taken)."""
    now = time.time()
    old = Token(username="AWS", password="old", issued_at=now - 30000, expires_at=now + 13200, hosts=(ECR_HOST,))
    fresh = Token(username="AWS", password="new", issued_at=now, expires_at=now + 43200)
    helper = Helper(Settings.from_environ(env), fetch=lambda registry: fresh, warn=lambda line: None)
    resolution = helper.resolve(ECR_HOST)
    assert resolution is not None
    key = token_key(helper.identity_key(resolution), resolution.registry)
    Store(str(cache_dir)).put_token(key, old, now=now)
    real_lock = Store.lock

    def lock_after_another_serves_an_alias(self: Store, name: str, timeout: float) -> object:
        Store(str(cache_dir)).add_host(key, "registry.example.com", now=now)  # the other process
        return real_lock(self, name, timeout)

    monkeypatch.setattr(Store, "lock", lock_after_another_serves_an_alias)
    assert helper.get(ECR_HOST).secret == "new"
    assert cached_tokens(cache_dir)[key].hosts == (ECR_HOST, "registry.example.com")
