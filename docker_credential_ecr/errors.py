"""The exception tree, and the protocol's fixed error texts.

The texts are wire format: docker compares the trimmed stdout with NOT_FOUND_MESSAGE to tell "no
credentials here" (pull anonymously) from a hard error (docker-credential-helpers client/client.go).
"""

from __future__ import annotations

NOT_FOUND_MESSAGE = "credentials not found in native keychain"
MISSING_SERVER_URL_MESSAGE = "no credentials server URL"
MISSING_USERNAME_MESSAGE = "no credentials username"
NOT_IMPLEMENTED_MESSAGE = "not implemented"


class HelperError(Exception):
    """An error the protocol reports: `message` goes to stdout, `hint` (if any) is one line for stderr."""

    message = "helper error"

    def __init__(self, hint: str | None = None) -> None:
        super().__init__(hint or self.message)
        self.hint = hint


class CredentialsNotFoundError(HelperError):
    """No usable token: docker falls back to anonymous access."""

    message = NOT_FOUND_MESSAGE


class MissingServerURLError(HelperError):
    message = MISSING_SERVER_URL_MESSAGE


class MissingUsernameError(HelperError):
    message = MISSING_USERNAME_MESSAGE


class NotImplementedByHelperError(HelperError):
    """`store`/`erase`: ECR tokens are fetched, never stored (unless told to ignore such requests)."""

    message = NOT_IMPLEMENTED_MESSAGE


class BadRequestError(HelperError):
    """A request the protocol cannot read (store with a body that is not the credentials JSON)."""

    def __init__(self, message: str) -> None:
        super().__init__(None)
        self.message = message


class TokenFetchError(Exception):
    """Getting a token from AWS failed; the text is one actionable line and never holds a secret."""


class DeadlineExceededError(BaseException):
    """The whole `get` ran out of time (network silent, lock held too long).

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` in a library between the
    timer and the helper can swallow it.
    """


class ConfigError(Exception):
    """The project's config file is unreadable or invalid; the text names the file and line."""


class StoreError(Exception):
    """The store's directory or a file in it cannot be used safely; a cache miss, never a failure."""


class StoreBusyError(StoreError):
    """Another process held a store file's lock for all of the wait allowed: this one write is skipped."""
