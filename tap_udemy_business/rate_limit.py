"""The request rate: one governor per credential, shared by every stream that uses it.

Udemy publishes no limits: a 429 with `Retry-After` is all a client learns. Gateways
mostly limit with a token bucket of R requests/s and a burst of B, and announce the wait
in whole seconds (a 50 ms wait becomes "1"). Pausing every request for `Retry-After`
after each 429 wastes most of the limit: the bucket refills in 1/R s while everyone sits
out a second. So the governor pauses no one for a 429 (the refused URL alone waits out
its `Retry-After`, in its retry); it paces requests instead, at a rate it searches for:

- Unthrottled, requests are not paced at all: only the cap on requests in flight holds.
- A rate that draws a 429 becomes the *ceiling*; a rate that ran a whole period without
  one (and was what held requests back) becomes the *floor*. After a 429 the rate goes
  down by 15 %, or to the floor if that is higher; after a clean period it moves
  half-way to the ceiling (or, with no ceiling yet, quadruples). The two close in on the
  limit from both sides, which works whatever the burst: with a burst of 1, a rate just
  over the limit has every other request refused, so counting successes would measure
  half the rate, not the limit.
- Once floor and ceiling are within 3 %, the rate holds at the floor. It probes above
  the ceiling again after 1, 2, 4... 16 clean periods (the ceiling rising 2 %, 4 %,
  8 %... each time), so a limit that went up is found within seconds, and a steady one costs
  one 429 now and then.
- A 429 says nothing about the rate of now if its request left before the rate last
  changed (it was in flight at the old rate): it is ignored.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import typing as t
import weakref
from contextlib import contextmanager

from tap_udemy_business.errors import SyncAbortedError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: How often a request waiting for its turn checks whether its read was cancelled.
CANCEL_POLL_SECONDS = 0.25
#: The rate after the first 429: what got through so far per second, at least this.
START_RATE = 4.0
#: A 429 cuts the rate by this factor, or to the floor if that is higher.
DECREASE = 0.85
#: A 429 at the floor lowers it by this share, doubled at each one in a row.
STRIKE = 0.05
#: At most this many clean periods between two probes above a ceiling that held.
MAX_PROBE_WAIT = 16
#: With no ceiling yet, a clean period multiplies the rate by this.
START_GROWTH = 4.0
#: A period: long enough for this many requests, and at least this many seconds.
PERIOD_REQUESTS = 6.0
PERIOD_SECONDS = 0.25
#: Before any ceiling is known, a period is only this many requests (at least 0.2 s).
START_PERIOD_REQUESTS = 1.5
#: Floor and ceiling this close (ratio) are the limit: the search stops.
CLOSE = 1.03
#: Above the ceiling, probing raises it by this much first, doubling each time.
PROBE_STEP = 0.02
#: The rate grows only while requests go out at it: this share of it succeeded.
BINDING_SHARE = 0.8
#: The slowest pace: one request in this many seconds.
SLOWEST_INTERVAL = 10.0
#: Pages read ahead while paced: enough for this many seconds at the paced rate, so a page
#: waiting out its `Retry-After` at the head of the line does not stall the others...
AHEAD_SECONDS = 2.5
#: ...and never more than this many pages (memory).
MAX_AHEAD = 128

LOGGER = logging.getLogger("tap-udemy-business")


class RateGovernor:
    """Caps requests in flight and, once the API has throttled, paces them at its limit.

    Thread-safe: every stream and page worker of a credential uses the same governor.
    A worker calls `slot()` around a request and then `on_success()` or `on_throttle()`
    from the same thread, which is how a 429 is matched with the rate it was sent at.
    """

    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic) -> None:
        """Start unpaced, with at most `maximum` requests in flight.

        Args:
            maximum: the cap on requests in flight (`max_concurrent_requests`).
            clock: monotonic seconds (injectable for tests).
        """
        self.maximum = maximum
        #: Requests per second, or None: not paced (never throttled yet).
        self.rate: float | None = None
        self.floor = 0.0
        self.ceiling = math.inf
        self._clock = clock
        self._cond = threading.Condition()
        self._sending = threading.local()
        self._in_flight = 0
        self._next_start = 0.0
        self._successes = 0
        self._changed = clock()  # when the rate last changed...
        self._successes_then = 0  # ...and the successes then
        self._probe_wait = 1  # clean periods at the floor before probing above the ceiling
        self._held = 0  # clean periods held so far
        self._probing = False  # whether the rate is above a ceiling that had held
        self._strikes = 0  # 429s at the floor in a row
        self._probe_step = PROBE_STEP

    @contextmanager
    def slot(self, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold one place in flight, at the paced time, for one request.

        Raises:
            SyncAbortedError: `cancel` was set while waiting: the read has failed.
        """
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    raise SyncAbortedError
                now = self._clock()
                wait = self._next_start - now
                if wait <= 0 and self._in_flight < self.maximum:
                    break
                if cancel is not None:  # look at `cancel` now and then while waiting
                    wait = min(wait, CANCEL_POLL_SECONDS) if wait > 0 else CANCEL_POLL_SECONDS
                self._cond.wait(timeout=wait if wait > 0 else None)
            self._in_flight += 1
            if self.rate is not None:
                self._next_start = max(now, self._next_start) + 1.0 / self.rate
        self._sending.at = now
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify()

    def read_ahead(self, base: int) -> int:
        """Pages to request ahead of the consumer: `base`, more while paced (see AHEAD_SECONDS)."""
        rate = self.rate
        if rate is None:
            return base
        return max(base, min(MAX_AHEAD, math.ceil(rate * AHEAD_SECONDS)))

    def on_success(self) -> None:
        """Count a success; after a clean period at the paced rate, move the rate up."""
        with self._cond:
            self._successes += 1
            if self.rate is not None:
                self._after_clean(self._clock())

    def on_throttle(self, retry_after: float) -> None:  # noqa: ARG002 - the retry waits it out
        """Count a 429: the rate it was sent at is too high (see the module's docstring)."""
        with self._cond:
            now = self._clock()
            sent_at = getattr(self._sending, "at", now)
            if self.rate is None:  # the first burst: start from what got through
                elapsed = max(PERIOD_SECONDS, now - self._changed)
                self._set_rate(max(START_RATE, self._successes / elapsed), now)
                return
            if sent_at < self._changed:
                return  # sent at an earlier rate, still in flight when it changed
            rate = self.rate
            self.ceiling = rate
            if self.floor >= rate:  # the floor drew a 429: jitter, or the limit went down
                # Each 429 at the floor in a row cuts twice as deep: 5 %, 10 %, 20 %...
                self._strikes += 1
                self.floor = rate * max(0.5, 1.0 - STRIKE * 2.0 ** (self._strikes - 1))
            if self._probing:  # the probe above the old ceiling failed: wait longer
                self._probe_wait = min(MAX_PROBE_WAIT, self._probe_wait * 2)
                self._probing = False
            self._probe_step = PROBE_STEP
            self._set_rate(max(self.floor, rate * DECREASE), now)
            LOGGER.info(
                "Rate limited at %.1f requests/s; pacing at %.1f/s", rate, self.floor or self.rate
            )

    def _period(self) -> float:
        rate = t.cast("float", self.rate)
        if self.ceiling == math.inf:
            return max(0.2, START_PERIOD_REQUESTS / rate)
        return max(PERIOD_SECONDS, PERIOD_REQUESTS / rate)

    def _after_clean(self, now: float) -> None:
        """Move the rate up once it ran a clean period while holding requests back."""
        rate = t.cast("float", self.rate)
        elapsed = now - self._changed
        if elapsed < self._period():
            return
        if self._successes - self._successes_then < BINDING_SHARE * rate * elapsed:
            self._changed, self._successes_then = now, self._successes  # idle: start again
            return
        self._strikes = 0
        if self._probing:  # a probe above the old ceiling held: the limit went up
            self._probe_wait, self._probing = 1, False
        self.floor = max(self.floor, rate)
        if self.ceiling == math.inf:
            self._set_rate(rate * START_GROWTH, now)
        elif self.ceiling > self.floor * CLOSE:
            self._set_rate(_between(self.floor, self.ceiling), now)
        else:
            self._held += 1
            if self._held < self._probe_wait:
                self._changed, self._successes_then = now, self._successes
                return
            self._held = 0
            self._probing = True
            self.ceiling *= 1.0 + self._probe_step
            self._probe_step *= 2.0
            self._set_rate(_between(self.floor, self.ceiling), now)

    def _set_rate(self, rate: float, now: float) -> None:
        self.rate = max(1.0 / SLOWEST_INTERVAL, rate)
        # The next request waits a whole interval of the new rate: sending at once would
        # test the new rate with the spacing of the old one.
        self._next_start = max(self._next_start, now + 1.0 / self.rate)
        self._changed = now
        self._successes_then = self._successes
        self._cond.notify_all()


def _between(floor: float, ceiling: float) -> float:
    """The next rate to try: half-way, geometrically while the bracket is wide."""
    if ceiling > 2 * floor:
        return math.sqrt(floor * ceiling)
    return (floor + ceiling) / 2.0


_GOVERNORS: weakref.WeakValueDictionary[tuple[str, str], RateGovernor] = (
    weakref.WeakValueDictionary()
)
_GOVERNORS_LOCK = threading.Lock()


def governor_for(origin: str, credential: str, maximum: int) -> RateGovernor:
    """The governor of one credential at one API: shared while anything uses it.

    Udemy limits per credential, so two taps (or two streams) with the same client id
    share one rate instead of each learning it by being throttled.
    """
    with _GOVERNORS_LOCK:
        governor = _GOVERNORS.get((origin, credential))
        if governor is None:
            governor = RateGovernor(maximum)
            _GOVERNORS[origin, credential] = governor
        return governor
