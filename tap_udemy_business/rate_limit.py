"""The request rate: one governor per credential, shared by every stream that uses it.

Udemy publishes no limits: a 429 with `Retry-After` is all a client learns. Gateways
mostly limit with a token bucket of R requests/s and a burst of B, and announce the wait
in whole seconds (a 50 ms wait becomes "1"). Pausing every request for `Retry-After`
after each 429 wastes most of the limit: the bucket refills in 1/R s while everyone sits
out a second. So the governor pauses no one for a 429 (the refused URL alone waits out
its `Retry-After`, in its retry); it paces requests instead, at a rate it searches for:

- Unthrottled, requests are not paced at all: only the cap on requests in flight holds,
  save at the very start: until a second request has been answered, one goes at a time.
  The first answer's 200 says nothing of a burst; with a burst of 1 it took the only
  token, and requests sent together after it (a read's first pages, each needed before
  its query's other pages can be planned) would all be refused, leaving the read a whole
  `Retry-After` with nothing to send. Sent alone, the second tells: a 429 starts the pace
  while the others are still unsent, a 200 opens the cap.
  The first 429 starts the pace at what got through so far per second (at least
  START_RATE); the successes of requests sent before it are taken as the burst, the
  opening's as one once a floor shows that the limit refilled 1.5 tokens between them
  (a first answer takes 45 ms over loopback: at 50/s a burst of 1 refills in 20 ms).
- A rate that draws a 429 becomes the *ceiling*; a rate that ran a whole period without
  one (and was what held requests back) becomes the *floor* (before any ceiling, with a
  burst, only what got through beyond the first burst's worth). With no ceiling yet a clean
  period quadruples the rate; with no floor yet a 429 halves it; then a 429 takes it
  half-way down to the floor (at least 15 %) and a clean period half-way up to the
  ceiling. With a burst of 1 a period is 2 requests (a rate over the limit is refused at
  its second request: counting successes would measure half of it, not the limit), else 6.
- With a burst, a rate a little over the limit runs clean for seconds on the burst, so
  clean periods prove little. But at every 429 the bucket is empty, so between two 429s
  what got through is what it refilled: when 429s come at least every 20 requests, with
  requests going out at the pace, over a second and 10 successes or more, that count per
  second is the limit, and the rate holds just under it.
- Two 429s with fewer successes sent between them than half the first burst: the bucket
  cannot have filled between, so it refilled no more than those successes and one token,
  and that per second (over at least 0.5 s, 3 % above it for timing) is a sure ceiling,
  which a floor that clean periods on the burst set too high comes under.
- Once floor and ceiling are within 3 %, the rate holds at the floor. It probes 2 % above
  the ceiling after 40 requests; a probe that holds is followed at once by one 2.5 times
  further, and a failed one doubles the wait (up to 80 requests; 20 for 15 s after the
  limit went down, until the floor is back where it was, as it may come back). So a
  limit that went up is found within seconds, and a steady one costs a 429 per 40 to 80
  requests. With a burst, probes that gained under 30 % before a 429 may have run on it:
  the floor goes back to where they began or, with a small burst (a period holds more
  requests than it can store), to the step below the last one held, so a limit a step or
  two above the floor is reached. Probes that gained more keep the step below the last
  one held (with a small burst, the last one): that last, longest step came with the
  bucket full after a while under the limit.
- A lone 429 at the floor (none in the last 40 requests) is arrival jitter: with a burst
  of 1 a request that arrives a fraction of a millisecond early is refused, and one 429
  costs less than a slower pace; with a burst of 1, so are up to 2 in 80 requests (jitter
  comes at random: two close together now and then). More cut the floor 5 %, and 10 %,
  then 20 % each when they come one right after another: three in a row say the limit
  went down, and it may come back.
- A 429 says nothing about the rate of now if its request left before the rate last
  changed (it was in flight at the old rate): it is ignored by the search (the bucket is
  still empty then: it counts for the measure).
- With a burst of 1, the request after a 429 is timed from the last 200 (which took the
  bucket's one token), not from the 429: the bucket is not left full for most of an
  interval, so a 429 of arrival jitter costs a round trip, not a token.
- Requests waiting for their turn go in the order their pages are read (retries first,
  then by `request_order`, then in the order they asked): the page the consumer waits
  for is not overtaken by later ones (which would fill the read-ahead and leave nothing
  to send at its next 429), nor a query's pages by a later query's, asked while its
  first page waited out a `Retry-After`.
- In a read's last seconds (its last `Retry-After` and second at the pace, as its page
  reader counts them) no probe goes above the limit: it could gain a few requests, and
  its 429 could leave the last page waiting out a `Retry-After` with nothing else to do.
- While paced, pages are read ahead for the longest `Retry-After` seen plus 1 s at the
  pace (or at the rate the search is heading for), and at most 80 pages are held, so a
  page waiting out its `Retry-After` at the head of the line does not stall the others.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import threading
import time
import typing as t
import weakref
from collections import deque
from contextlib import contextmanager

from tap_udemy_business.concurrency import Order, ReadAhead, request_order
from tap_udemy_business.errors import SyncAbortedError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: How often a request waiting for its turn checks whether its read was cancelled.
CANCEL_POLL_SECONDS = 0.25
#: Requests answered 200 before more than one may be in flight unpaced (a 429 first
#: starts the pace instead).
OPENING_ANSWERS = 2
#: The opening's requests, one at a time, show a burst of one if the floor refills this
#: many tokens between them (over one: a floor that ran on a burst may be above the limit).
OPENING_REFILLS = 1.5
#: The rate after the first 429: what got through so far per second, at least this.
START_RATE = 6.0
#: A 429 cuts the rate by this factor, or to the floor if that is higher...
DECREASE = 0.85
#: ...or by this one while no rate has run clean yet (the first burst overshot).
FIRST_DECREASE = 0.5
#: 429s at the floor that are arrival jitter, cheaper than a slower pace: up to this many
#: within the last this many requests (with a burst, a lone one)...
TOLERATED = 1
TOLERATE_REQUESTS = 40
#: ...or, with a burst of 1, where jitter refuses a request now and then at any pace near
#: the limit (one that arrives a millisecond early, after one that came late) while a pace
#: over it is refused at every other request, up to this many within this many.
TOLERATED_NO_BURST = 2
TOLERATE_REQUESTS_NO_BURST = 80
#: The next one lowers the floor by this share...
STRIKE = 0.05
#: ...twice as much at each one in a row within this many requests (a limit that fell),
#: up to this share.
STRIKE_STREAK = 10
STRIKE_MAX = 0.2
#: Requests at the floor before the first probe above the ceiling; each failed probe
#: doubles the wait, up to the second figure (a probe that fails costs one 429).
PROBE_WAIT_FIRST = 40
PROBE_WAIT_MAX = 80
#: For this long after the limit went down, probes come every PROBE_WAIT_DROPPED requests,
#: failed or not: a limit that moved may move back.
PROBE_WAIT_DROPPED = 20
DROPPED_SECONDS = 15.0
#: The limit measured between 429s (the bucket is empty at each, so what got through in
#: between is what it refilled): over at least this long and this many successes...
ESTIMATE_SECONDS = 1.0
ESTIMATE_SUCCESSES = 10
#: ...only where 429s came at least every 1 / ESTIMATE_REFUSED requests (the pace was over
#: the limit all along; with a burst of 1 a rate over the limit is refused at every other
#: request and a lone 429 is jitter, so there it takes one every request: never)...
ESTIMATE_REFUSED = 0.05
ESTIMATE_REFUSED_NO_BURST = 1.0
#: ...and requests went out at this share of the pace at least (the reader did not stall).
ESTIMATE_PACED = 0.9
#: The pace is then this much under it. 429s remembered for that:
ESTIMATE_MARGIN = 0.01
ESTIMATE_HISTORY = 32
#: Two 429s with fewer successes sent between them than half the burst (at least one
#: fewer than it): the bucket never filled between, so what got through is all it
#: refilled, one token more at most, a sure upper bound on the limit. Only over at least
#: this long (send times stand for arrival times), this much above what was counted.
BOUND_SECONDS = 0.5
BOUND_MARGIN = 0.03
#: A measured limit under this share of the floor, or 429s at the floor in a row that cut
#: it under the second share (three in a row do: 0.95 x 0.9 x 0.8), the floor before those
#: 429s: the limit went down.
DROP = 0.8
STRUCK_DROP = 0.7
#: With no ceiling yet, a clean period multiplies the rate by this.
START_GROWTH = 4.0
#: A period: long enough for this many requests, and at least this many seconds. With a
#: burst of 1 (the first burst's successes), two requests are proof enough: any rate above
#: the limit is refused at its second request.
PERIOD_REQUESTS = 6.0
PERIOD_SECONDS = 0.25
#: Before any ceiling is known, a period is only this many requests (at least 0.2 s).
START_PERIOD_REQUESTS = 1.5
#: Floor and ceiling this close (ratio), or this close in requests/s (at a few requests/s
#: a step over the limit costs a 429 out of few requests), are the limit: the search stops.
CLOSE = 1.03
CLOSE_RPS = 0.1
#: Above the ceiling, probing raises the rate by this much first, then by this many times
#: more at each probe that holds.
PROBE_STEP = 0.02
PROBE_GROWTH = 2.5
#: A burst this many times smaller than a period is small: after probes that gained
#: little, the step below the last one held is kept.
SMALL_BURST_PERIODS = 2
#: Probes that gained this much (ratio) before failing: the limit went up, and may go on.
#: With a burst, ones that gained less gained nothing (they ran on the burst).
PROBE_MOVED = 1.3
#: The rate grows only while requests go out at it: this share of it succeeded.
BINDING_SHARE = 0.8
#: The slowest pace: one request in this many seconds.
SLOWEST_INTERVAL = 10.0
#: Pages read ahead while paced: enough for the longest `Retry-After` seen (at most
#: MAX_RETRY_AHEAD s) plus this many seconds at the paced rate (or at the rate the search
#: is heading for), so a page waiting out its `Retry-After` at the head of the line does
#: not stall the others...
AHEAD_SECONDS = 1.0
MAX_RETRY_AHEAD = 4.0
#: ...and never more than this many pages (memory: parsed, a page of 100 records is about
#: 200 KB, and while the head waits they pile up; 1.6 s at 50 requests/s).
MAX_AHEAD = 80

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
        self._lock = threading.RLock()
        #: Requests waiting for their turn, in the order they go (see `_Turn`): the page
        #: the consumer waits for goes first, not whichever thread wakes first.
        self._waiting: list[_Turn] = []
        self._asked = itertools.count()
        self._sending = threading.local()
        self._in_flight = 0
        self._next_start = 0.0
        self._last_start = 0.0  # when the last request was let through
        self._last_ok = -math.inf  # when the latest 200 came
        self._first_sent: float | None = None
        self._sent = 0  # requests let through so far
        self._successes = 0
        self._changed = clock()  # when the rate last changed...
        self._successes_then = 0  # ...and the successes then
        self._probe_wait = PROBE_WAIT_FIRST  # requests at the floor before probing above it
        self._held_since = 0  # requests sent when the rate last settled at the floor
        self._probing = False  # whether the rate is above a ceiling that had held
        self._strikes = 0  # 429s at the floor in a row
        #: Requests sent at the last 429s at the floor (enough to tell jitter by).
        self._floor_429s: deque[int] = deque(maxlen=max(TOLERATED, TOLERATED_NO_BURST) + 1)
        self._probe_step = PROBE_STEP
        self._probe_base = 0.0  # the floor when the probes began
        self._held_before = 0.0  # the floor before the last clean period raised it
        self._dropped_at = -math.inf  # when the limit last went down...
        self._dropped_from = 0.0  # ...and the floor before it did
        self._struck_from = 0.0  # the floor before the 429s at the floor in a row
        self._retry_after = 1.0  # the longest Retry-After seen (for the read-ahead)
        self._ending = False  # whether the read is in its last seconds (see `remaining`)
        #: Successes of requests sent before the first 429 came, the opening's apart (see
        #: `_burst`): about the limit's burst.
        self._burst_oks = 0
        self._opening_oks = 0
        self._opening_gap = math.inf  # the shortest time between two of the opening's sends
        self._opening_last = -math.inf
        self._opening_refilled = False  # whether a floor showed the opening's gap refilled
        self._first_429 = math.inf
        self._since_429 = 0.0  # successes per second between the last two 429s
        #: The last 429s: when, and the successes and requests sent by then.
        self._throttles: deque[tuple[float, int, int]] = deque(maxlen=ESTIMATE_HISTORY)
        #: When the latest 429s' requests were sent, and the latest successes' (`_bound`).
        self._refused_sent: deque[float] = deque(maxlen=ESTIMATE_HISTORY)
        self._ok_sent: deque[float] = deque(maxlen=ESTIMATE_HISTORY)

    @contextmanager
    def slot(self, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold one place in flight, at the paced time, for one request.

        Raises:
            SyncAbortedError: `cancel` was set while waiting: the read has failed.
        """
        retry = getattr(self._sending, "retry", False)
        self._sending.retry = False
        with self._lock:
            ready = threading.Condition(self._lock)
            turn = _Turn(not retry, request_order() or (), next(self._asked), ready)
            bisect.insort(self._waiting, turn)
            try:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise SyncAbortedError
                    now = self._clock()
                    wait = self._next_start - now
                    first = self._waiting[0] is turn
                    if first and wait <= 0 and self._in_flight < self._cap():
                        break
                    timeout = wait if first and wait > 0 else None
                    if cancel is not None:  # look at `cancel` now and then while waiting
                        timeout = min(timeout or CANCEL_POLL_SECONDS, CANCEL_POLL_SECONDS)
                    turn.ready.wait(timeout)
            finally:
                self._waiting.remove(turn)
                self._wake()  # the next in line: its turn may have come (unpaced, it has)
            self._sending.alone = self._cap() == 1  # the opening: one at a time
            self._in_flight += 1
            self._sent += 1
            self._last_start = now
            if self._first_sent is None:
                self._first_sent = now
            if self.rate is not None:
                self._next_start = max(now, self._next_start) + 1.0 / self.rate
        self._sending.at = now
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._wake()

    def _wake(self) -> None:
        """Let the request first in line look again whether its turn has come."""
        if self._waiting:
            self._waiting[0].ready.notify()

    def _cap(self) -> int:
        """Requests allowed in flight now: one until the second answer (see the module).

        Unpaced, no 429 has come yet (the first one sets the rate), so the answers so far
        are the successes.
        """
        if self.rate is None and self._successes < OPENING_ANSWERS:
            return 1
        return self.maximum

    def read_ahead(self, base: int) -> ReadAhead:
        """How far to read ahead of the consumer: `base`, more while paced (see AHEAD_SECONDS).

        While paced, up to MAX_AHEAD pages are held, whether in or not: pages that came in
        out of order (a later query's, read while an earlier first page waited out its
        `Retry-After`) would otherwise fill the window for as long as that query waits
        its turn, and leave nothing to send when the next page is refused.
        """
        rate = self.rate
        if rate is None:
            return ReadAhead(base, base)
        if self.ceiling == math.inf:  # still growing: read ahead for the rate to come
            rate *= START_GROWTH
        seconds = AHEAD_SECONDS + min(MAX_RETRY_AHEAD, self._retry_after)
        requests = max(base, min(MAX_AHEAD, math.ceil(rate * seconds)))
        return ReadAhead(requests, max(requests, MAX_AHEAD), paced=True)

    def remaining(self, pages: int | None) -> None:
        """Hear how many pages the read has left (None: not known yet).

        In the read's last `Retry-After` plus AHEAD_SECONDS at the pace, no probe goes
        above the limit: what it could gain is a few requests, and the 429 it may draw
        can leave the read's last page waiting out a `Retry-After` with nothing else to do.
        """
        with self._lock:
            rate = self.rate
            self._ending = (
                pages is not None
                and rate is not None
                and pages <= rate * (AHEAD_SECONDS + min(MAX_RETRY_AHEAD, self._retry_after))
            )

    def on_success(self) -> None:
        """Count a success; after a clean period at the paced rate, move the rate up."""
        with self._lock:
            now = self._clock()
            self._successes += 1
            if self.rate is None and self._successes == OPENING_ANSWERS:
                self._wake()  # the opening cap lifts
            self._last_ok = now
            sent_at = getattr(self._sending, "at", now)
            self._ok_sent.append(sent_at)
            if sent_at < self._first_429:
                if getattr(self._sending, "alone", False):
                    self._opening_oks += 1
                    self._opening_gap = min(self._opening_gap, sent_at - self._opening_last)
                    self._opening_last = sent_at
                else:
                    self._burst_oks += 1
            if self.rate is not None:
                self._after_clean(now)

    def on_throttle(self, retry_after: float) -> None:
        """Count a 429: the rate it was sent at is too high (see the module's docstring)."""
        with self._lock:
            now = self._clock()
            self._retry_after = max(self._retry_after, retry_after)
            self._sending.retry = True  # this thread's next request is the retry
            sent_at = getattr(self._sending, "at", now)
            bound = self._bound(sent_at)
            self._throttled(sent_at, now)
            if bound is not None:
                self._keep_under(bound, now)
            if self._burst <= 1:
                self._resume_from_last_success(sent_at)

    @property
    def _burst(self) -> int:
        """The limit's burst as the successes before the first 429 show it.

        The opening's requests went one at a time, each after the last answer. Where the
        limit refills a token in less time than went between them (the floor says how
        fast it refills at least), each may have taken a token that came since the last:
        together they show a burst of one. Counted as a burst, a limit of 50/s with a
        burst of 1 (a first answer in 45 ms) would be searched as one with a burst.
        """
        opening = self._opening_oks
        refilled = self._opening_gap * self.floor >= OPENING_REFILLS
        if opening > 1 and (self._opening_refilled or refilled):
            self._opening_refilled = True  # a floor that falls later (the limit did) is not
            opening = 1  # the limit of the opening
        return self._burst_oks + opening

    def _bound(self, sent_at: float) -> float | None:
        """A sure upper bound on the limit from this 429 and an earlier one, if there is one.

        At a 429 the bucket holds less than a token. Between two 429s it refilled the
        limit times the time between, and gave out a token to each success: if the bucket
        never filled (it cannot with fewer successes than its burst after it was full),
        the limit is under the successes plus one per that time. Clean periods over the
        limit run on the burst for seconds and prove little; this holds from the second
        429 on, whatever ran before.
        """
        oks, refused = self._ok_sent, self._refused_sent
        bound = None
        for earlier in reversed(refused):
            if earlier >= sent_at:
                continue  # sent after this one: in flight together
            got = sum(earlier < ok < sent_at for ok in oks)
            if got >= max(1, self._burst // 2) or (len(oks) == oks.maxlen and oks[0] > earlier):
                break  # the bucket may have filled between; or the successes not all kept
            span = sent_at - earlier
            if span >= BOUND_SECONDS:
                bound = min(bound or math.inf, (got + 1) / span * (1.0 + BOUND_MARGIN))
        refused.append(sent_at)
        return bound

    def _keep_under(self, bound: float, now: float) -> None:
        """Search under `bound` (see `_bound`): the rate goes above it only to probe."""
        if bound >= self.ceiling:
            return
        self.ceiling = bound
        self.floor = min(self.floor, bound / CLOSE)
        if t.cast("float", self.rate) > bound:
            self._probing = False
            self._set_rate(self.floor or bound * DECREASE, now)

    def _resume_from_last_success(self, sent_at: float) -> None:
        """With a burst of 1, time the next request from the last 200, not from the 429.

        Such a bucket holds one token, taken by the last request it let through: the next
        is let through one interval (1/R) after that one, whatever was refused between.
        Timed from the 429, the next request would leave the bucket full and unused for
        as long as the refused request had waited already (most of an interval: a lone
        429 of arrival jitter cost a token, one in the search up to a second at 2/s).
        The 200's answer came after its request arrived, so an interval after the answer
        is never early. A request sent after the refused one (still unanswered) may take
        the token: then the pace goes on from it, as it would.
        """
        if self._last_start > sent_at or self._last_ok == -math.inf:
            return
        self._next_start = self._last_ok + 1.0 / t.cast("float", self.rate)
        self._wake()

    def _throttled(self, sent_at: float, now: float) -> None:
        """Move the rate for a 429 of a request let through at `sent_at`."""
        if self.rate is None:  # the first burst: start from what got through
            first = now if self._first_sent is None else self._first_sent
            elapsed = max(PERIOD_SECONDS, now - first)
            self._first_429 = now
            self._throttles.append((now, self._successes, self._sent))
            self._set_rate(max(START_RATE, self._successes / elapsed), now)
            return
        limit = self._measured(now)  # the bucket is empty now, whatever the rate was
        if sent_at < self._changed:
            return  # sent at an earlier rate, still in flight when it changed
        rate = self.rate
        if self._probing:
            self._probe_failed(rate, limit, now)
        elif self.floor >= rate:
            if not self._floor_refused(rate, limit, now):
                return
        elif limit is not None and limit * CLOSE < rate:
            self._pace_at(limit, rate, now)
        else:
            cut = DECREASE if self.floor > 0 else FIRST_DECREASE
            if self.floor == 0 and self._burst > 1:  # not under what got through since
                cut = max(cut, self._since_429 * (1.0 - ESTIMATE_MARGIN) / rate)
            self.ceiling = rate
            if limit is not None:
                self.floor = max(self.floor, limit)
            below = rate * cut
            if self.floor > 0:  # half-way down to the floor, if that is further
                below = min(below, _between(self.floor, rate))
            self._set_rate(max(self.floor, below), now)
        LOGGER.info(
            "Rate limited at %.1f requests/s; pacing at %.1f/s", rate, self.floor or self.rate
        )

    def _probe_failed(self, rate: float, limit: float | None, now: float) -> None:
        """A probe above the old ceiling drew a 429: back to the floor, and wait longer."""
        # Soon after the limit went down, or after probes that gained much (it may still
        # be going up), probe again soon; otherwise wait twice as long as last time.
        moving = now - self._dropped_at < DROPPED_SECONDS and not self._came_back()
        moving = moving or self.floor >= self._probe_base * PROBE_MOVED
        wait = PROBE_WAIT_DROPPED if moving else min(PROBE_WAIT_MAX, self._probe_wait * 2)
        self._probe_wait = wait
        self._probing = False
        self._probe_step = PROBE_STEP
        small = SMALL_BURST_PERIODS * self._burst <= PERIOD_REQUESTS
        below = max(self._probe_base, self._held_before)  # the step below the last held
        if self._burst > 1 and self.floor < self._probe_base * PROBE_MOVED:
            # With a burst, a few periods a little over the limit run clean on it: a
            # small gain that ends in a 429 is no gain. With a small burst, a period holds
            # more requests than it can store: the step below the last one held is kept
            # (else a limit a step or two above the floor is never reached: each round of
            # probes fails at the same step and goes back to the same floor).
            self.floor = below if small else self._probe_base
        elif self._burst > 1 and not small:
            # Probes that gained much (the limit went up), with a burst a period can
            # store: the last one held came after a while under the limit, the bucket
            # full, and its step was the longest: it is the likeliest to have run on the
            # burst. The step below it is kept (the next probes, soon, go on from there),
            # not a floor that 429s in a row must cut down.
            self.floor = below
        if limit is not None:
            self.floor = min(self.floor, limit)
        self.ceiling = min(rate, self.floor * CLOSE)  # the floor holds: the search is done
        self._set_rate(self.floor, now)

    def _floor_refused(self, rate: float, limit: float | None, now: float) -> bool:
        """The floor drew a 429: jitter, or the limit went down. Whether the rate changed."""
        floor_429s = self._floor_429s
        since = self._sent - floor_429s[-1] if floor_429s else math.inf
        floor_429s.append(self._sent)
        if since > STRIKE_STREAK:  # not one right after another: cut gently again
            self._strikes = 0
            self._struck_from = self.floor
        under = rate
        tolerated, within = (
            (TOLERATED_NO_BURST, TOLERATE_REQUESTS_NO_BURST)
            if self._burst <= 1
            else (TOLERATED, TOLERATE_REQUESTS)
        )
        if sum(self._sent - sent <= within for sent in floor_429s) > tolerated:
            # More than jitter: each in a row cuts twice as deep.
            self._strikes += 1
            under = rate * max(1.0 - STRIKE_MAX, 1.0 - STRIKE * 2.0 ** (self._strikes - 1))
        if limit is not None and limit < under and limit * CLOSE < rate:
            self._pace_at(limit, rate, now)
            return True
        self.ceiling = rate
        if under == rate:
            return False  # one now and then is jitter: the pace holds
        self.floor = under
        if self._burst > 1:  # clean periods over the limit prove little: hold, then probe
            self.ceiling = under * CLOSE
        if under < STRUCK_DROP * self._struck_from:  # the limit went down: may come back
            self._went_down(self._struck_from, now)
        self._set_rate(under, now)
        return True

    def _pace_at(self, limit: float, rate: float, now: float) -> None:
        """Over the limit for a while (a burst hid it, or it went down): pace at what refilled.

        With a burst, clean periods over the limit prove little (they run on the burst):
        hold there, and probe from there. Without one, search between it and `rate`.
        """
        # The limit went down (measured at once, or after 429s in a row cut the floor): it
        # may come back.
        if limit < DROP * max(self.floor, self._struck_from):
            self._went_down(max(self.floor, self._struck_from), now)
        self.floor = limit
        self.ceiling = limit * CLOSE if self._burst > 1 else rate
        self._set_rate(limit, now)

    def _went_down(self, held: float, now: float) -> None:
        """The limit went down from `held`: probe often for a while, as it may come back."""
        recent = now - self._dropped_at < DROPPED_SECONDS  # still down from the last time
        self._dropped_from = max(held, self._dropped_from) if recent else held
        self._probe_wait = PROBE_WAIT_DROPPED
        self._dropped_at = now

    def _came_back(self) -> bool:
        """Whether the floor is back where it was before the limit last went down.

        Then the limit is where it was: probes that fail go back to waiting longer (each
        costs a 429).
        """
        return self.floor * CLOSE >= self._dropped_from

    def _measured(self, now: float) -> float | None:
        """The limit as measured since the last 429 (a lower bound), if measured long enough.

        Tokens refill at the limit; at a 429 the bucket is empty, so between two 429s what
        succeeded is what refilled (less only if the bucket overflowed: a lower bound).
        """
        estimate = None
        self._since_429 = 0.0
        if self._throttles:  # roughly, from the last 429 alone (for the first descent)
            then, successes, _ = self._throttles[-1]
            self._since_429 = (self._successes - successes) / max(PERIOD_SECONDS, now - then)
        needed = ESTIMATE_REFUSED if self._burst > 1 else ESTIMATE_REFUSED_NO_BURST
        later = (now, self._successes, self._sent)
        for earlier in reversed(self._throttles):
            # Each span between two 429s short enough in requests that the pace was over the
            # limit all along, not under it for a while (what got through is then the pace).
            if (later[2] - earlier[2]) * needed > 1:
                break
            got, span = self._successes - earlier[1], now - earlier[0]
            if got >= ESTIMATE_SUCCESSES and span >= ESTIMATE_SECONDS:
                # ...and only if requests went out at the pace all along (no stall).
                if self._sent - earlier[2] >= ESTIMATE_PACED * t.cast("float", self.rate) * span:
                    estimate = got / span * (1.0 - ESTIMATE_MARGIN)
                break
            later = earlier
        self._throttles.append((now, self._successes, self._sent))
        return estimate

    def _period(self) -> float:
        rate = t.cast("float", self.rate)
        if self.ceiling == math.inf:
            return max(0.2, START_PERIOD_REQUESTS / rate)
        requests = 2.0 if self._burst <= 1 else PERIOD_REQUESTS
        return max(PERIOD_SECONDS, requests / rate)

    def _after_clean(self, now: float) -> None:
        """Move the rate up once it ran a clean period while holding requests back."""
        rate = t.cast("float", self.rate)
        elapsed = now - self._changed
        if elapsed < self._period():
            return
        if self._successes - self._successes_then < BINDING_SHARE * rate * elapsed:
            self._changed, self._successes_then = now, self._successes  # idle: start again
            return
        if self._burst > 1 and self.ceiling == math.inf:
            # Before any ceiling, a clean period may have run on the burst: of what got
            # through, at most the first burst's worth came from the bucket's store.
            got = self._successes - self._successes_then - self._burst
            self.floor = max(self.floor, min(rate, got / elapsed))
        else:
            self._held_before = self.floor  # the step below, should this one prove nothing
            self.floor = max(self.floor, rate)
        if self._probing and not self._ending:  # a probe above the ceiling held: it went up
            self._probe_wait = PROBE_WAIT_FIRST
            self._probe_step *= PROBE_GROWTH  # try further at once, a longer step
            self._set_rate(rate * (1.0 + self._probe_step), now)
        elif self.ceiling == math.inf:
            self._set_rate(rate * START_GROWTH, now)
        elif self.ceiling > max(self.floor * CLOSE, self.floor + CLOSE_RPS):
            self._set_rate(_between(self.floor, self.ceiling), now)
        elif self._sent - self._held_since >= self._probe_wait and not self._ending:
            self._probing = True
            self._probe_base = self.floor
            self._set_rate(max(self.floor, self.ceiling) * (1.0 + self._probe_step), now)
        else:
            self._changed, self._successes_then = now, self._successes

    def _set_rate(self, rate: float, now: float) -> None:
        faster = self.rate is not None and rate > self.rate
        self.rate = max(1.0 / SLOWEST_INTERVAL, rate)
        if faster:  # the next request need not wait out the old, longer interval
            self._next_start = max(now, self._last_start + 1.0 / self.rate)
        else:
            # The next request waits a whole interval of the new rate: sending at once would
            # test the new rate with the spacing of the old one.
            self._next_start = max(self._next_start, now + 1.0 / self.rate)
        self._changed = now
        self._successes_then = self._successes
        self._held_since = self._sent  # a probe comes `_probe_wait` requests after a change
        self._wake()


class _Turn(t.NamedTuple):
    """A request waiting for its turn; turns sort in the order they go."""

    #: Retries after a 429 first (False): each has waited out its `Retry-After` already,
    #: and it is the oldest page, likely the one at the head of the line.
    fresh: bool
    #: Then in the order their pages are read (`request_order`; () outside a read)...
    order: Order | tuple[()]
    #: ...then in the order they asked.
    asked: int
    #: Notified when the turn may have come.
    ready: threading.Condition


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
