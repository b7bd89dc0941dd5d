"""doctor's checks of the token: the cache (its file, its safety checks, this registry's entry and what
the next `get` does with it), a live fetch (GetAuthorizationToken through the helper's own path, timed,
the token dropped), and the cached token tried at the registry (``GET /v2/``), which docker never
reports back.
"""

from __future__ import annotations

import time

from docker_credential_ecr.commands.cache import cache_state, describe_entry, iso
from docker_credential_ecr.commands.dockerconfig import EXECUTABLE
from docker_credential_ecr.commands.report import Section
from docker_credential_ecr.errors import DeadlineExceededError, StoreError, TokenFetchError
from docker_credential_ecr.helper import timeout_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from docker_credential_ecr.config import Resolution
    from docker_credential_ecr.helper import Helper
    from docker_credential_ecr.registry import Registry
    from docker_credential_ecr.settings import Settings


def check_cache(settings: Settings, registry: Registry | None, principal: str, now: float) -> Section:
    section = Section("cache")
    state = cache_state(settings, now, current_principal=principal)
    entries = state.pop("entries")
    assert isinstance(entries, list)
    section.facts.update(state)
    section.facts["entries"] = len(entries)
    if state["error"]:
        section.warn(f"the helper cannot use the cache ({state['error']}): every get calls AWS")
    if state["problem"]:
        section.warn(f"{state['path']}: {state['problem']}")
    if registry is None or state["error"]:
        return section
    from docker_credential_ecr.store import Store, token_key

    key = token_key(principal, registry)
    section.facts["key"] = key
    entry = None
    if settings.cache_dir:
        try:
            entry = Store(settings.cache_dir).token(key)
        except StoreError:  # reported above through cache_state
            entry = None
    if entry is None:
        section.facts["entry"] = None
        section.facts["next_get"] = "calls AWS (no token cached for this principal and region)"
        return section
    facts = describe_entry(key, entry, now)
    section.facts["entry"] = facts
    section.facts["next_get"] = {
        "fresh": "answers from the cache, no network",
        "stale": "calls AWS for a new token; serves this one if that fails",
        "expired": "calls AWS (the cached token has expired)",
    }[str(facts["status"])]
    if not settings.cache_file:
        section.facts["next_get"] = "calls AWS (the cache is off)"
    return section


def check_fetch(helper: Helper, resolution: Resolution, settings: Settings, cached_expiry: float | None) -> Section:
    """A live GetAuthorizationToken through the helper's own fetch path, timed; the token is dropped."""
    # Imported before the clock starts: time the fetch, not botocore's import.
    from docker_credential_ecr import aws  # noqa: F401
    from docker_credential_ecr.deadline import Deadline

    section = Section("fetch")
    started = time.monotonic()
    error = None
    try:
        with Deadline(settings.timeout):
            token = helper.fetch(resolution)
    except TokenFetchError as exc:
        error = str(exc)
    except DeadlineExceededError as exc:
        error = timeout_line(resolution.registry, exc)
    except Exception as exc:  # a bug: `get` would answer not-found; say what it was
        error = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
    elapsed = time.monotonic() - started
    section.facts["elapsed_ms"] = round(elapsed * 1000)
    section.facts["ok"] = error is None
    if error is not None:
        section.facts["error"] = error
        message = error
        if cached_expiry is not None and cached_expiry > time.time():
            message += f" (the cached token still works until {iso(cached_expiry)})"
        section.fail(message)
        return section
    now = time.time()
    section.facts.update(
        {
            "username": token.username,
            "issued_at": iso(token.issued_at),
            "expires_at": iso(token.expires_at),
            "expires_in_seconds": round(token.expires_at - now, 1),
            "written_to_cache": False,
        }
    )
    del token
    return section


def check_cached_token_at_registry(settings: Settings, resolution: Resolution, principal: str, now: float) -> Section:
    """``GET /v2/`` at the registry (or the alias docker talks to) with the cached token.

    docker never tells the helper that a registry refused its answer, so a token the registry no longer
    takes (revoked, or the policy changed) keeps being served from the cache: this says so."""
    from http.client import HTTPException

    from docker_credential_ecr.commands.registry_probe import probe, registry_url
    from docker_credential_ecr.store import Store, token_key

    section = Section("registry_auth")
    entry = None
    if settings.cache_dir:
        try:
            entry = Store(settings.cache_dir).token(token_key(principal, resolution.registry))
        except StoreError:  # reported in the cache section
            entry = None
    if entry is None:
        section.skipped = "no cached token for this principal and region"
        return section
    if entry.expires_at <= now:
        section.skipped = "the cached token has expired"
        return section
    url = registry_url(resolution.host)
    section.facts["url"] = url
    started = time.monotonic()
    try:
        status = probe(resolution.host, entry.username, entry.password, settings.timeout)
    except (OSError, HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        reason_text = " ".join(str(reason).split()) or type(exc).__name__
        section.warn(f"could not ask {url} about the cached token: {reason_text}")
        return section
    section.facts["elapsed_ms"] = round((time.monotonic() - started) * 1000)
    section.facts["http_status"] = status
    section.facts["accepted"] = 200 <= status < 300
    if status in (401, 403):
        section.fail(f"rejected by the registry: run `{EXECUTABLE} cache clear`")
    elif not 200 <= status < 300:
        section.warn(f"{url} answered HTTP {status}: cannot tell whether the registry takes the cached token")
    return section
