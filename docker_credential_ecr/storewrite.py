"""The store's writing half: the directory made ours, each file changed under its lock, published whole.

:mod:`store` reads (the hot path: no lock, nothing beyond the standard library) and hands every write
to the functions here, imported only when something is written (a miss, ``cache clear``, ``login``):
a hit loads none of this. The rules are :mod:`store`'s: a file is re-read under its lock
(:mod:`storelock`), changed, and published whole with ``os.replace`` (:func:`publish`, the one
writer, through :func:`safefile.write_atomically`); every lock wait is bounded by what the caller
passes.
"""

from __future__ import annotations

import os
import stat

from docker_credential_ecr import safefile
from docker_credential_ecr.errors import StoreError
from docker_credential_ecr.safefile import RefusedError
from docker_credential_ecr.store import (
    _FILE_LOCKS,
    CREDENTIALS_FILE_NAME,
    CREDENTIALS_SCHEMA,
    CREDENTIALS_VERSION,
    FILE_NAME,
    SCHEMA,
    VERSION,
    WRITE_WAIT,
)
from docker_credential_ecr.store import _refused as store_refused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextlib import AbstractContextManager
    from typing import TypeVar

    from docker_credential_ecr.store import AwsCredentials, Store, Token

    _R = TypeVar("_R", "Token", "AwsCredentials")


# -- documents --------------------------------------------------------------------------------------
def render_document(entries: dict[str, Token]) -> str:
    return _render_entries(SCHEMA, VERSION, entries)


def render_credentials(entries: dict[str, AwsCredentials]) -> str:
    return _render_entries(CREDENTIALS_SCHEMA, CREDENTIALS_VERSION, entries)


def _render_entries(schema: str, version: int, entries: Mapping[str, Token | AwsCredentials]) -> str:
    import json

    body = {k: e.to_json() for k, e in sorted(entries.items())}
    return json.dumps({"schema": schema, "version": version, "entries": body}, indent=1)


# -- the directory, its locks, its files -----------------------------------------------------------
def ensure_directory(store: Store) -> None:
    """Create the directory (0700) and its locks/ if needed; StoreError unless it is ours alone."""
    try:
        if not store._check_directory():
            os.makedirs(store.directory, mode=0o700, exist_ok=True)
            store._check_directory()
        st = os.stat(store.directory)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(store.directory, 0o700)  # ours and not writable by others: close it to readers too
        locks = os.path.join(store.directory, "locks")
        try:
            os.mkdir(locks, 0o700)
        except FileExistsError:
            pass
        # makedirs(exist_ok=True) follows a symlink: lock files would be created wherever it points.
        try:
            safefile.check_directory(locks)
        except RefusedError as exc:
            raise store_refused("lock directory", locks, exc) from None
    except OSError as exc:
        # The directory may exist: what failed may be creating locks/ or a lock file in it.
        raise StoreError(f"cache directory {store.directory} is not writable: {exc.strerror or exc}") from None


def lock(store: Store, name: str, timeout: float) -> AbstractContextManager[object]:
    """An inter-process lock named ``name`` (a token key, or a file's); StoreError when the wait runs
    out (:mod:`storelock`, imported only here: writes and misses)."""
    ensure_directory(store)
    from docker_credential_ecr import storelock

    return storelock.lock(os.path.join(store.directory, "locks"), name, timeout)


def update(
    store: Store, change: Callable[[dict[str, Token]], None], *, now: float, timeout: float = WRITE_WAIT
) -> None:
    """Re-read the token file under its lock, apply ``change``, drop expired tokens, publish."""
    _rewrite(store, FILE_NAME, read=store.tokens, render=render_document, change=change, now=now, timeout=timeout)


def update_credentials(
    store: Store, change: Callable[[dict[str, AwsCredentials]], None], *, now: float, timeout: float = WRITE_WAIT
) -> None:
    """The same for the credentials file."""
    _rewrite(
        store,
        CREDENTIALS_FILE_NAME,
        read=store.all_credentials,
        render=render_credentials,
        change=change,
        now=now,
        timeout=timeout,
    )


def _rewrite(
    store: Store,
    file_name: str,
    *,
    read: Callable[[], dict[str, _R]],
    render: Callable[[dict[str, _R]], str],
    change: Callable[[dict[str, _R]], None],
    now: float,
    timeout: float,
) -> None:
    """One file of the store, re-read under its lock, changed, its expired entries dropped, published."""
    with lock(store, _FILE_LOCKS[file_name], timeout):
        _sweep_temp_files(store, file_name)
        entries = read()
        change(entries)
        for key in [k for k, e in entries.items() if e.expires_at <= now]:
            del entries[key]
        publish(os.path.join(store.directory, file_name), render(entries))


def _sweep_temp_files(store: Store, file_name: str) -> None:
    """Remove temp files of writers killed before their rename (kill -9, OOM, power loss).

    Only a writer holding the file's lock creates one, and the lock dies with its holder, so under
    that lock every temp file left is an orphan: it would otherwise keep a secret on disk and eat
    the space the next write needs. Unlinking never follows a symlink.
    """
    prefix, suffix = file_name + ".", ".tmp"
    try:
        with os.scandir(store.directory) as names:
            orphans = [e.name for e in names if e.name.startswith(prefix) and e.name.endswith(suffix)]
    except OSError:
        return
    for name in orphans:
        safefile.unlink_quietly(os.path.join(store.directory, name))


def put_token(store: Store, key: str, token: Token, *, now: float, timeout: float = WRITE_WAIT) -> None:
    def change(entries: dict[str, Token]) -> None:
        entries[key] = token

    update(store, change, now=now, timeout=timeout)


def add_host(store: Store, key: str, host: str, *, now: float, timeout: float = WRITE_WAIT) -> None:
    """Remember that the token under ``key`` was served for ``host`` (for `list`)."""

    def change(entries: dict[str, Token]) -> None:
        entry = entries.get(key)
        if entry is not None and host not in entry.hosts:
            entry.hosts = (*entry.hosts, host)

    update(store, change, now=now, timeout=timeout)


def put_credentials(
    store: Store, key: str, credentials: AwsCredentials, *, now: float, timeout: float = WRITE_WAIT
) -> None:
    def change(entries: dict[str, AwsCredentials]) -> None:
        entries[key] = credentials

    update_credentials(store, change, now=now, timeout=timeout)


def clear(store: Store) -> int:
    """Remove every token; returns how many there were."""
    removed = 0

    def change(entries: dict[str, Token]) -> None:
        nonlocal removed
        removed = len(entries)
        entries.clear()

    update(store, change, now=0.0)
    return removed


def clear_credentials(store: Store, keep: Callable[[str], bool] | None = None) -> int:
    """Remove every stored credential but those whose key ``keep`` accepts; returns how many went."""
    removed = 0

    def change(entries: dict[str, AwsCredentials]) -> None:
        nonlocal removed
        gone = [key for key in entries if keep is None or not keep(key)]
        removed = len(gone)
        for key in gone:
            del entries[key]

    update_credentials(store, change, now=0.0)
    return removed


def publish_config_copy(store: Store, text: str) -> None:
    """Publish the config's parsed copy, on the store's terms. StoreError when it cannot."""
    ensure_directory(store)
    publish(store.config_copy_path, text)


def publish(path: str, text: str) -> None:
    """Write ``text`` as a new 0600 file beside ``path``, fsync it, rename it over ``path``
    (:func:`safefile.write_atomically`: never through a planted symlink; on any failure the old file
    is left as it was and no temp file stays). Raises StoreError."""
    try:
        safefile.write_atomically(path, text.encode("utf-8"))
    except OSError as exc:
        raise StoreError(f"cache file {path} cannot be written: {exc.strerror}") from None
