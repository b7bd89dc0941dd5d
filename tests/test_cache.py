"""The token cache file: freshness, schema, corruption, permissions, atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from docker_credential_ecr import registry
from docker_credential_ecr.cache import (
    SCHEMA,
    STALE_MARGIN,
    VERSION,
    Entry,
    TokenCache,
    cache_key,
    parse_document,
    render_document,
)
from docker_credential_ecr.errors import CacheError

NOW = 1_800_000_000.0
HOUR = 3600.0


def entry(issued: float = NOW, lifetime: float = 12 * HOUR, hosts: tuple[str, ...] = ("h",)) -> Entry:
    return Entry(username="AWS", password="pw", issued_at=issued, expires_at=issued + lifetime, hosts=hosts)


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
        keys.add(cache_key("p", r))
    assert len(keys) == len(hosts)
    a, b = registry.parse("111111111111.dkr.ecr.us-east-1.amazonaws.com"), registry.parse(hosts[0])
    assert a is not None
    assert b is not None
    assert cache_key("p", a) == cache_key("p", b)  # one token per region, shared by accounts
    assert cache_key("p", a) != cache_key("q", a)


def test_round_trip(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path / "c"))
    assert cache.read() == {}
    cache.store("k", entry(), now=NOW)
    got = cache.lookup("k")
    assert got is not None
    assert (got.username, got.password, got.issued_at, got.expires_at, got.hosts) == (
        "AWS",
        "pw",
        NOW,
        NOW + 12 * HOUR,
        ("h",),
    )
    cache.add_host("k", "h2", now=NOW)
    assert cache.lookup("k").hosts == ("h", "h2")  # type: ignore[union-attr]


def test_permissions(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    TokenCache(str(directory)).store("k", entry(), now=NOW)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "cache.json").stat().st_mode) == 0o600
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_existing_open_directory_is_closed(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    TokenCache(str(directory)).store("k", entry(), now=NOW)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_expired_entries_are_pruned_on_write(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path))
    cache.store("old", entry(issued=NOW - 20 * HOUR), now=NOW - 20 * HOUR)
    cache.store("new", entry(), now=NOW)
    assert set(cache.read()) == {"new"}


def test_clear(tmp_path: Path) -> None:
    cache = TokenCache(str(tmp_path))
    cache.store("a", entry(), now=NOW)
    cache.store("b", entry(), now=NOW)
    assert cache.clear() == 2
    assert cache.read() == {}


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
    cache = TokenCache(str(tmp_path))
    assert cache.read() == {}
    cache.store("k", entry(), now=NOW)
    assert set(cache.read()) == {"k"}
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
    assert TokenCache(str(tmp_path)).read() == {}


def test_symlinked_file_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir(mode=0o700)
    target = tmp_path / "target.json"
    target.write_text(render_document({"k": entry()}))
    (directory / "cache.json").symlink_to(target)
    cache = TokenCache(str(directory))
    with pytest.raises(CacheError):
        cache.read()


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(CacheError, match="not a directory"):
        TokenCache(str(tmp_path / "link")).read()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
def test_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "c"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(CacheError, match="writable by other users"):
        TokenCache(str(directory)).read()
    with pytest.raises(CacheError):
        TokenCache(str(directory)).store("k", entry(), now=NOW)


def test_file_writable_by_others_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    path = tmp_path / "cache.json"
    path.write_text(render_document({"k": entry()}))
    path.chmod(0o666)
    with pytest.raises(CacheError, match="writable by other users"):
        TokenCache(str(tmp_path)).read()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "c"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    with pytest.raises(CacheError, match="belongs to another user"):
        TokenCache(str(directory)).read()


def test_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("x")
    with pytest.raises(CacheError):
        TokenCache(str(tmp_path / "c")).read()
    with pytest.raises(CacheError):
        TokenCache(str(tmp_path / "c")).store("k", entry(), now=NOW)


def test_failed_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = TokenCache(str(tmp_path / "c"))
    cache.store("k", entry(), now=NOW)
    before = (tmp_path / "c" / "cache.json").read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CacheError, match="No space left"):
        cache.store("k2", entry(), now=NOW)
    assert (tmp_path / "c" / "cache.json").read_bytes() == before
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.endswith(".tmp")]
