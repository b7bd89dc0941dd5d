"""The store: token freshness, schema, corruption, permissions, atomic writes, lock waits."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from docker_credential_ecr import registry
from docker_credential_ecr.errors import StoreError
from docker_credential_ecr.store import (
    SCHEMA,
    STALE_MARGIN,
    VERSION,
    Store,
    Token,
    parse_document,
    render_document,
    token_key,
)

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
    assert "pw" not in repr(entry()).replace("password", "")


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
    with pytest.raises(StoreError, match="writable by other users"):
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
    with pytest.raises(StoreError, match="No space left"):
        cache.put_token("k2", entry(), now=NOW)
    assert (tmp_path / "c" / "cache.json").read_bytes() == before
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.endswith(".tmp")]
