"""The store: token freshness, schema, corruption, permissions, atomic writes, lock waits."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from docker_credential_ecr import registry
from docker_credential_ecr.errors import StoreBusyError, StoreError
from docker_credential_ecr.safefile import fsync_directory as _fsync_directory
from docker_credential_ecr.safefile import unlink_quietly as _unlink_quietly
from docker_credential_ecr.store import (
    CLOCK_SKEW,
    SCHEMA,
    STALE_MARGIN,
    VERSION,
    AwsCredentials,
    Store,
    Token,
    credentials_key,
    parse_credentials,
    parse_document,
    token_key,
)
from docker_credential_ecr.storewrite import publish, render_credentials, render_document

NOW = 1_800_000_000.0
HOUR = 3600.0


def entry(issued: float = NOW, lifetime: float = 12 * HOUR, hosts: tuple[str, ...] = ("h",)) -> Token:
    return Token(username="AWS", password="pw", issued_at=issued, expires_at=issued + lifetime, hosts=hosts)


@pytest.mark.parametrize(
    ("offset", "fresh", "usable"),
    [
        pytest.param(0, True, True, id="new"),
        pytest.param(6 * HOUR - 1, True, True, id="just-before-half"),
        pytest.param(6 * HOUR, False, True, id="half"),
        pytest.param(12 * HOUR - STALE_MARGIN - 1, False, True, id="nearly-expired"),
        pytest.param(12 * HOUR - STALE_MARGIN, False, False, id="inside-margin"),
        pytest.param(13 * HOUR, False, False, id="expired"),
        pytest.param(-HOUR, False, True, id="issued-in-the-future"),
    ],
)
def test_freshness(offset: float, fresh: bool, usable: bool) -> None:
    e = entry()
    assert e.is_fresh(NOW + offset) is fresh
    assert e.is_usable(NOW + offset) is usable


def test_repr_hides_password() -> None:
    assert repr(entry()) == f"Token(username='AWS', expires_at={NOW + 12 * HOUR}, hosts=('h',))"


def test_a_0_1_0_token_file_is_read() -> None:
    """The token file's format is unchanged since 0.1.0: an upgrade keeps the cache (version 1)."""
    doc = {
        "schema": "docker-credential-ecr/token-cache",
        "version": 1,
        "entries": {"k": {"username": "AWS", "password": "pw", "issued_at": NOW, "expires_at": NOW + HOUR}},
    }
    assert [t.hosts for t in parse_document(json.dumps(doc)).values()] == [()]
    assert json.loads(render_document({}))["version"] == 1


def test_key_separates_region_fips_dualstack_service() -> None:
    hosts = [
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.us-west-2.amazonaws.com",
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
        "123456789012.dkr-ecr.us-east-1.on.aws",
        "public.ecr.aws",
    ]
    keys = set()
    for h in hosts:
        r = registry.parse(h)
        assert r is not None
        keys.add(token_key("p", r))
    assert len(keys) == len(hosts)
    a, b = registry.parse("111111111111.dkr.ecr.us-east-1.amazonaws.com"), registry.parse(hosts[0])
    assert a is not None
    assert b is not None
    assert token_key("p", a) == token_key("p", b)  # one token per region, shared by accounts
    assert token_key("p", a) != token_key("q", a)


def test_round_trip(tmp_path: Path) -> None:
    cache = Store(str(tmp_path / "c"))
    assert cache.tokens() == {}
    cache.put_token("k", entry(), now=NOW)
    got = cache.token("k")
    assert got is not None
    assert (got.username, got.password, got.issued_at, got.expires_at, got.hosts) == (
        "AWS",
        "pw",
        NOW,
        NOW + 12 * HOUR,
        ("h",),
    )
    cache.add_host("k", "h2", now=NOW)
    assert cache.token("k").hosts == ("h", "h2")  # type: ignore[union-attr]


def test_permissions(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    Store(str(directory)).put_token("k", entry(), now=NOW)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "cache.json").stat().st_mode) == 0o600
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_existing_open_directory_is_closed(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    Store(str(directory)).put_token("k", entry(), now=NOW)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_expired_entries_are_pruned_on_write(tmp_path: Path) -> None:
    cache = Store(str(tmp_path))
    cache.put_token("old", entry(issued=NOW - 20 * HOUR), now=NOW - 20 * HOUR)
    cache.put_token("new", entry(), now=NOW)
    assert set(cache.tokens()) == {"new"}
    cache.put_token("ends-now", entry(issued=NOW - HOUR, lifetime=HOUR), now=NOW - 1)
    cache.put_token("new", entry(), now=NOW)  # a token whose expiry is now is gone
    assert set(cache.tokens()) == {"new"}


def test_clear(tmp_path: Path) -> None:
    cache = Store(str(tmp_path))
    cache.put_token("a", entry(), now=NOW)
    cache.put_token("b", entry(), now=NOW)
    assert cache.clear() == 2
    assert cache.tokens() == {}


CORRUPT = [
    pytest.param(b"", id="empty"),
    pytest.param(b"null", id="null"),
    pytest.param(b'{"schema": "docker-credential-ecr/token-cache", "version": 1, "entr', id="truncated"),
    pytest.param(b"\x00\xff\xfe binary \x89PNG", id="binary"),
    pytest.param(b"[]", id="array"),
    pytest.param(json.dumps({"schema": SCHEMA, "version": 99, "entries": {}}).encode(), id="future-version"),
    pytest.param(json.dumps({"schema": SCHEMA, "version": VERSION, "entries": []}).encode(), id="entries-list"),
    # The Go helper's cache.json shape (registry -> AuthEntry).
    pytest.param(
        json.dumps(
            {
                "version": "1.0",
                "registries": {"123456789012.dkr.ecr.us-east-1.amazonaws.com": {"AuthorizationToken": "eA=="}},
            }
        ).encode(),
        id="go-helper-format",
    ),
    pytest.param(b"[" * 100_000, id="deep-nesting"),
]


@pytest.mark.parametrize("content", CORRUPT)
def test_corrupt_file_is_a_miss_and_replaced(tmp_path: Path, content: bytes) -> None:
    tmp_path.chmod(0o700)
    (tmp_path / "cache.json").write_bytes(content)
    (tmp_path / "cache.json").chmod(0o600)
    cache = Store(str(tmp_path))
    assert cache.tokens() == {}
    cache.put_token("k", entry(), now=NOW)
    assert set(cache.tokens()) == {"k"}
    assert json.loads((tmp_path / "cache.json").read_text())["schema"] == SCHEMA


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"username": "AWS", "password": "pw", "issued_at": "x", "expires_at": 1}, id="str-time"),
        pytest.param({"username": "AWS", "password": 5, "issued_at": 1, "expires_at": 2}, id="int-password"),
        pytest.param({"username": "", "password": "p", "issued_at": 1, "expires_at": 2}, id="empty-user"),
        pytest.param({"username": "AWS", "password": "p", "issued_at": True, "expires_at": 2}, id="bool-time"),
        pytest.param(
            {"username": "AWS", "password": "p", "issued_at": 1, "expires_at": 2, "hosts": "h"}, id="hosts-str"
        ),
        pytest.param("just a string", id="not-object"),
    ],
)
def test_wrong_types_drop_only_that_entry(value: object) -> None:
    good = entry().to_json()
    doc = json.dumps({"schema": SCHEMA, "version": VERSION, "entries": {"bad": value, "good": good}})
    assert set(parse_document(doc)) == {"good"}


def test_render_parse_round_trip() -> None:
    entries = {"a": entry(), "b": entry(hosts=("x", "y"))}
    parsed = parse_document(render_document(entries))
    assert {k: v.to_json() for k, v in parsed.items()} == {k: v.to_json() for k, v in entries.items()}


def test_oversized_file_is_a_miss(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    (tmp_path / "cache.json").write_bytes(b" " * (5 << 20))
    assert Store(str(tmp_path)).tokens() == {}


def test_the_size_bound_is_4_mib_exactly(tmp_path: Path) -> None:
    """A file of exactly 4 MiB is read; one byte more is not ours (a miss)."""
    tmp_path.chmod(0o700)
    text = render_document({"k": entry()})
    path = tmp_path / "cache.json"
    path.write_text(text + " " * ((4 << 20) - len(text)))
    assert set(Store(str(tmp_path)).tokens()) == {"k"}
    path.write_text(text + " " * ((4 << 20) - len(text) + 1))
    assert Store(str(tmp_path)).tokens() == {}


def test_symlinked_file_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir(mode=0o700)
    target = tmp_path / "target.json"
    target.write_text(render_document({"k": entry()}))
    (directory / "cache.json").symlink_to(target)
    cache = Store(str(directory))
    with pytest.raises(StoreError):
        cache.tokens()


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(StoreError, match="not a directory"):
        Store(str(tmp_path / "link")).tokens()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
def test_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(StoreError, match="writable by other users"):
        Store(str(directory)).tokens()
    with pytest.raises(StoreError):
        Store(str(directory)).put_token("k", entry(), now=NOW)


def test_file_writable_by_others_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    path = tmp_path / "cache.json"
    path.write_text(render_document({"k": entry()}))
    path.chmod(0o666)
    with pytest.raises(StoreError, match=r"^cache file .*cache\.json is writable by other users$"):
        Store(str(tmp_path)).tokens()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    with pytest.raises(StoreError, match="belongs to another user"):
        Store(str(directory)).tokens()


def test_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("x")
    with pytest.raises(StoreError):
        Store(str(tmp_path / "c")).tokens()
    with pytest.raises(StoreError):
        Store(str(tmp_path / "c")).put_token("k", entry(), now=NOW)


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Store(str(tmp_path / "c"))
    cache.put_token("k", entry(), now=NOW)
    before = (tmp_path / "c" / "cache.json").read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StoreError, match=r"^cache file .*cache\.json cannot be written: No space left on device$"):
        cache.put_token("k2", entry(), now=NOW)
    assert (tmp_path / "c" / "cache.json").read_bytes() == before
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.endswith(".tmp")]


# -- stored AWS credentials (assumed roles): the same rules as tokens -------------------------------
def creds(issued: float = NOW, lifetime: float = HOUR, key_id: str = "ASIAEXAMPLE") -> AwsCredentials:
    return AwsCredentials(
        access_key_id=key_id,
        secret_access_key="secret-value-0000",
        session_token="session-token-0000",
        issued_at=issued,
        expires_at=issued + lifetime,
    )


def test_credentials_round_trip_private_and_pruned(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "c"))
    key = credentials_key("id", "sts", "aws")
    assert key == "id/sts/aws"
    assert store.credentials(key) is None  # no directory yet
    store.put_credentials(key, creds(), now=NOW)
    store.put_credentials("old", creds(issued=NOW - 2 * HOUR), now=NOW)  # expired: dropped on write
    got = store.credentials(key)
    assert got is not None
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        "ASIAEXAMPLE",
        "secret-value-0000",
        "session-token-0000",
    )
    assert (got.issued_at, got.expires_at) == (NOW, NOW + HOUR)
    assert set(store.all_credentials()) == {key}
    assert stat.S_IMODE((tmp_path / "c" / "credentials.json").stat().st_mode) == 0o600
    assert "secret" not in repr(got)
    assert "session-token" not in repr(got)
    assert store.clear_credentials() == 1
    assert store.all_credentials() == {}


@pytest.mark.parametrize(
    ("offset", "fresh"),
    [(0, True), (HOUR / 2 - 1, True), (HOUR / 2, False), (-CLOCK_SKEW - 1, False), (-CLOCK_SKEW, True)],
)
def test_credentials_are_fresh_for_half_their_life(offset: float, fresh: bool) -> None:
    assert creds().is_fresh(NOW + offset) is fresh


@pytest.mark.parametrize(
    "value",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"secret_access_key": "s", "session_token": "t", "issued_at": 1, "expires_at": 2}, id="no-key"),
        pytest.param(
            {"access_key_id": "", "secret_access_key": "s", "session_token": "t", "issued_at": 1, "expires_at": 2},
            id="empty-key",
        ),
        pytest.param(
            {"access_key_id": "k", "secret_access_key": 1, "session_token": "t", "issued_at": 1, "expires_at": 2},
            id="secret-not-text",
        ),
        pytest.param(
            {
                "access_key_id": "k",
                "secret_access_key": "s",
                "session_token": "t",
                "issued_at": 10**999,
                "expires_at": 2,
            },
            id="huge-time",
        ),
        pytest.param(
            {"access_key_id": "k", "secret_access_key": "s", "session_token": "t", "issued_at": True, "expires_at": 2},
            id="bool-time",
        ),
    ],
)
def test_malformed_credentials_drop_only_that_entry(value: object) -> None:
    doc = json.loads(render_credentials({"good": creds()}))
    doc["entries"]["bad"] = value
    assert set(parse_credentials(json.dumps(doc))) == {"good"}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[]", id="not-an-object"),
        pytest.param('{"schema": "docker-credential-ecr/token-cache", "version": 1, "entries": {}}', id="tokens"),
        pytest.param(
            '{"schema": "docker-credential-ecr/aws-credentials", "version": 2, "entries": {}}', id="other-version"
        ),
        pytest.param('{"schema": "docker-credential-ecr/aws-credentials", "version": 1, "entries": []}', id="list"),
        pytest.param("{", id="not-json"),
    ],
)
def test_foreign_credentials_documents_are_empty(text: str) -> None:
    assert parse_credentials(text) == {}


def test_parsed_config_copy_is_published_privately(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "c"))
    store.publish_config_copy('{"schema": "x"}')
    assert store.read_private(store.config_copy_path) == '{"schema": "x"}'
    assert stat.S_IMODE((tmp_path / "c" / "config.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700


# -- locks: bounded waits, never through a link ----------------------------------------------------
def test_a_busy_lock_is_store_busy_after_the_wait_allowed(tmp_path: Path) -> None:
    import filelock

    store = Store(str(tmp_path / "c"))
    store.ensure_directory()
    # A lock held in this process is another open file description: the store's flock waits.
    held = filelock.FileLock(str(tmp_path / "c" / "locks" / "credentials-file.lock"))
    busy = r"^gave up waiting 0\.1 s for the credentials-file lock$"
    with held, pytest.raises(StoreBusyError, match=busy):
        store.put_credentials("k", creds(), now=NOW, timeout=0.1)
    assert store.all_credentials() == {}
    store.put_credentials("k", creds(), now=NOW, timeout=0.1)  # free again: written
    assert set(store.all_credentials()) == {"k"}


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo", "other-mode"])
def test_a_planted_lock_file_is_refused_not_followed(tmp_path: Path, kind: str) -> None:
    store = Store(str(tmp_path / "c"))
    store.ensure_directory()
    lock = tmp_path / "c" / "locks" / "cache-file.lock"
    target = tmp_path / "target"
    target.write_text("keep")
    if kind == "symlink":
        lock.symlink_to(target)
    elif kind == "directory":
        lock.mkdir()
    elif kind == "fifo":
        os.mkfifo(lock, 0o600)
    else:
        lock.write_text("")
        lock.chmod(0o666)
    with pytest.raises(StoreError, match=r"^cache lock cannot be taken: ") as info:
        store.put_token("k", entry(), now=NOW)
    if kind == "other-mode":
        assert str(info.value) == f"cache lock cannot be taken: lock file {lock} is writable by other users"
    if kind == "fifo":
        assert str(info.value) == f"cache lock cannot be taken: {lock} is not a regular file"
    assert not isinstance(info.value, StoreBusyError)
    assert target.read_text() == "keep"
    assert not (tmp_path / "c" / "cache.json").exists()


def test_a_lock_that_cannot_be_taken_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import filelock

    store = Store(str(tmp_path / "c"))

    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    with pytest.raises(StoreError, match=r"^cache lock cannot be taken: Permission denied$"):
        store.put_token("k", entry(), now=NOW)


def test_orphan_temp_files_are_swept_under_the_lock(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "c"))
    store.put_token("k", entry(), now=NOW)
    orphan = tmp_path / "c" / "cache.json.999.deadbeef.tmp"
    orphan.write_text("a token left by a killed writer")
    other = tmp_path / "c" / "credentials.json.999.deadbeef.tmp"
    other.write_text("credentials left by a killed writer")
    store.put_token("k2", entry(), now=NOW)
    assert not orphan.exists()
    assert other.exists()  # another file's temp: swept under that file's lock
    store.put_credentials("k", creds(), now=NOW)
    assert not other.exists()


def test_add_host_records_each_host_once(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "c"))
    store.put_token("k", entry(hosts=("a",)), now=NOW)
    store.add_host("k", "b", now=NOW)
    store.add_host("k", "b", now=NOW)
    store.add_host("missing", "c", now=NOW)
    assert {k: t.hosts for k, t in store.tokens().items()} == {"k": ("a", "b")}


def test_unreadable_directory_and_file_are_store_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(str(tmp_path / "c"))
    store.put_token("k", entry(), now=NOW)
    real_lstat, real_read = os.lstat, os.read

    def lstat_fails(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path) == store.directory:
            raise OSError(5, "Input/output error")
        return real_lstat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "lstat", lstat_fails)
    with pytest.raises(StoreError, match="is unreadable: Input/output error"):
        store.tokens()
    monkeypatch.setattr(os, "lstat", real_lstat)

    def read_fails(fd: int, n: int) -> bytes:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "read", read_fails)
    with pytest.raises(StoreError, match="cannot be read: Input/output error"):
        store.tokens()
    monkeypatch.setattr(os, "read", real_read)
    (tmp_path / "c" / "cache.json").chmod(0o000)
    if os.geteuid() != 0:
        with pytest.raises(StoreError, match="cannot be opened"):
            store.tokens()


def test_a_fifo_is_not_a_cache_file(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "c"))
    store.ensure_directory()
    os.mkfifo(tmp_path / "c" / "cache.json", 0o600)
    with pytest.raises(StoreError, match="is not a regular file"):
        store.tokens()


def test_no_temp_file_means_store_error_and_no_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(str(tmp_path / "c"))
    store.ensure_directory()
    (tmp_path / "c").chmod(0o500)
    try:
        if os.geteuid() == 0:
            real_open = os.open

            def no_create(path: str, flags: int, *args: int, **kwargs: object) -> int:
                if str(path).endswith(".tmp"):
                    raise OSError(30, "Read-only file system")
                return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

            monkeypatch.setattr(os, "open", no_create)
        with pytest.raises(StoreError, match="cannot be written"):
            publish(str(tmp_path / "c" / "cache.json"), "{}")
    finally:
        (tmp_path / "c").chmod(0o700)
    assert not (tmp_path / "c" / "cache.json").exists()


def test_an_interrupted_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(str(tmp_path / "c"))
    store.ensure_directory()
    real_open, real_fsync = os.open, os.fsync
    temps: list[str] = []

    def record(path: str, flags: int, *args: int, **kwargs: object) -> int:
        temps.append(os.path.basename(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    def interrupted_once(fd: int) -> None:
        monkeypatch.setattr(os, "fsync", real_fsync)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "open", record)
    monkeypatch.setattr(os, "fsync", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        publish(str(tmp_path / "c" / "cache.json"), "{}")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["locks"]
    # Named so that the next writer's sweep finds it, had this process been killed instead.
    assert temps[0].startswith("cache.json.")
    assert temps[0].endswith(".tmp")


def test_a_planted_locks_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir(mode=0o700)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "c" / "locks").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="is not a directory"):
        Store(str(tmp_path / "c")).put_token("k", entry(), now=NOW)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_directory_that_cannot_be_made_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "makedirs", refuse)
    with pytest.raises(StoreError, match=r"is not writable: Read-only file system$"):
        Store(str(tmp_path / "c")).put_token("k", entry(), now=NOW)


def test_a_directory_that_cannot_be_listed_skips_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(str(tmp_path / "c"))
    store.put_token("k", entry(), now=NOW)

    def refuse(path: object) -> None:
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(os, "scandir", refuse)
    store.put_token("k2", entry(), now=NOW)  # no sweep, the write itself goes on
    assert set(store.tokens()) == {"k", "k2"}


def test_durability_steps_are_best_effort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _unlink_quietly(str(tmp_path / "absent"))  # nothing to remove: no error
    _fsync_directory(str(tmp_path / "absent"))  # cannot be opened: skipped
    calls: list[int] = []

    def refuse(fd: int) -> None:
        calls.append(fd)
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "fsync", refuse)
    _fsync_directory(str(tmp_path))  # a directory that cannot be fsynced (some file systems): skipped
    assert len(calls) == 1
