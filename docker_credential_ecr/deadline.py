"""One bound on the whole of a `get`, whatever the network or another process does.

botocore's timeouts bound each HTTP attempt to ECR, but not the credential providers it runs first
(STS, SSO, instance metadata, a ``credential_process``) nor a lock held by a stuck process. A real
timer covers them all: on POSIX an interval timer whose signal raises
:class:`~docker_credential_ecr.errors.DeadlineExceededError` in the main thread (a blocked socket
call is interrupted and the exception unwinds through it, cleaning up as it goes). Imported only on a
cache miss.
"""

from __future__ import annotations

import signal
import threading
import time

from docker_credential_ecr.errors import DeadlineExceededError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType, TracebackType


class Deadline:
    """``with Deadline(30):`` raises DeadlineExceededError in the block once 30 s have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self._previous: object = None
        self._armed = False

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def __enter__(self) -> Deadline:
        self.expires = time.monotonic() + self.seconds
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGALRM, self._expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self._armed = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)  # type: ignore[arg-type]
            self._armed = False

    def _expired(self, signum: int, frame: FrameType | None) -> None:
        raise DeadlineExceededError(f"gave up after {self.seconds:g} s")
