"""The request rate: one governor per credential, shared by every stream that uses it."""

from __future__ import annotations

import threading
import time
import typing as t
from contextlib import contextmanager

from tap_udemy_business.errors import SyncAbortedError

if t.TYPE_CHECKING:
    from collections.abc import Iterator

GROW_AFTER_SUCCESSES = 20
#: How often a request waiting for its turn checks whether its read was cancelled.
CANCEL_POLL_SECONDS = 0.25
#: Per success, the spacing between paced requests shrinks by this factor.
PACE_SPEEDUP = 0.999


class AdaptiveLimiter:
    """Caps requests in flight and paces them; backs off on 429 and recovers slowly.

    One limiter is shared by every stream of a tap, because Udemy's rate limit is per
    credential, not per endpoint. A 429's `Retry-After` pauses every request, not only
    the one that was refused, and halves the requests allowed in flight. From the second
    429 on, requests are also spaced at the rate the API accepted between the two
    (requests sent / time between the 429s), so the tap settles just under the limit
    instead of bursting into it and sitting out `Retry-After` again; the spacing shrinks
    by 0.1 % per success, probing back up towards whatever the API allows.
    """

    def __init__(self, maximum: int) -> None:
        """Start at the configured maximum, unpaced."""
        self.maximum = maximum
        self.limit = maximum
        self.interval = 0.0
        self._in_flight = 0
        self._successes = 0
        self._paused_until = 0.0
        self._next_start = 0.0
        self._sent_since_throttle = 0
        self._last_throttle: float | None = None
        self._cond = threading.Condition()

    @contextmanager
    def slot(self, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold one of the `limit` places, at the paced time, for one request.

        Raises:
            SyncAbortedError: `cancel` was set while waiting: the read has failed.
        """
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    raise SyncAbortedError
                now = time.monotonic()
                wait = max(self._paused_until, self._next_start) - now
                if wait <= 0 and self._in_flight < self.limit:
                    break
                if cancel is not None:  # look at `cancel` now and then while waiting
                    wait = min(wait, CANCEL_POLL_SECONDS) if wait > 0 else CANCEL_POLL_SECONDS
                self._cond.wait(timeout=wait if wait > 0 else None)
            self._in_flight += 1
            self._sent_since_throttle += 1
            if self.interval:
                self._next_start = max(now, self._next_start) + self.interval
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def on_success(self) -> None:
        """Count a success: speed the pace up a little; in time, allow one more in flight."""
        with self._cond:
            self._successes += 1
            self.interval *= PACE_SPEEDUP
            if self.limit < self.maximum and self._successes >= GROW_AFTER_SUCCESSES * self.limit:
                self.limit += 1
                self._successes = 0
                self._cond.notify_all()

    def on_throttle(self, retry_after: float) -> None:
        """Halve the cap, pace at the accepted rate, and pause everyone `retry_after` s.

        The 429s of requests already in flight during a pause are one event, not several:
        they neither halve the cap again nor measure anything. The accepted rate is
        measured from the end of the last pause, when sending could resume, to this 429.
        """
        with self._cond:
            now = time.monotonic()
            if now < self._paused_until:
                return
            if self._last_throttle is not None and self._sent_since_throttle:
                sending_since = max(self._last_throttle, self._paused_until)
                if now > sending_since:
                    self.interval = (now - sending_since) / self._sent_since_throttle
            self._last_throttle = now
            self._sent_since_throttle = 0
            self.limit = max(1, self.limit // 2)
            self._successes = 0
            self._paused_until = now + retry_after
            self._cond.notify_all()
