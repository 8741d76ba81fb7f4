"""The rate governor (tap side) and the sandbox's token bucket, on injected clocks."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import threading
import typing as t

import pytest

from tap_udemy_business import rate_limit
from tap_udemy_business.concurrency import reading
from tap_udemy_business.rate_limit import RateGovernor, governor_for
from tap_udemy_business.sandbox import faults
from tap_udemy_business.sandbox.faults import FaultInjector, FaultParams, parse_schedule
from tap_udemy_business.settings import base_url

from .conftest import catalog_selecting, run_tap

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def send(governor: RateGovernor, clock: Clock, *, refused: bool) -> None:
    """One request through the governor, answered 200 or 429 a millisecond later.

    The clock moves on to the request's paced time first (it would wait for it forever).
    """
    clock.now = max(clock.now, governor._next_start)
    with governor.slot():
        clock.advance(0.001)
    if refused:
        governor.on_throttle(1.0)
    else:
        governor.on_success()


def throttled(burst: int) -> tuple[RateGovernor, Clock]:
    """A governor whose first `burst` requests got through (the limit's burst), then a 429."""
    clock = Clock()
    governor = RateGovernor(8, clock)
    for _ in range(burst):
        send(governor, clock, refused=False)
    send(governor, clock, refused=True)
    return governor, clock


def clean_period(governor: RateGovernor, clock: Clock) -> None:
    """Requests at the paced rate, all answered 200, until the rate changes (or 10 s)."""
    rate = governor.rate
    deadline = clock.now + 10
    while governor.rate == rate and clock.now < deadline:
        send(governor, clock, refused=False)


def paced_rate(governor: RateGovernor) -> float:
    """The governor's rate, which a 429 has set."""
    assert governor.rate is not None
    return governor.rate


def test_an_unthrottled_governor_does_not_pace() -> None:
    clock = Clock()
    governor = RateGovernor(4, clock)
    for _ in range(100):
        send(governor, clock, refused=False)
    assert governor.rate is None
    assert governor.read_ahead(8) == (8, 8, False)  # not paced


def test_the_first_429_paces_at_what_got_through() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    for _ in range(10):  # a burst of 10 in 10 ms...
        send(governor, clock, refused=False)
    send(governor, clock, refused=True)  # ... then the limit
    assert governor.rate == pytest.approx(10 / rate_limit.PERIOD_SECONDS)


def opened(governor: RateGovernor, clock: Clock) -> RateGovernor:
    """A governor past its opening: two requests answered 200, one at a time."""
    for _ in range(rate_limit.OPENING_ANSWERS):
        send(governor, clock, refused=False)
    return governor


def test_429s_of_requests_sent_at_an_earlier_rate_are_ignored() -> None:
    clock = Clock()
    governor = opened(RateGovernor(8, clock), clock)
    with governor.slot():  # sent unpaced, answered after the first 429 set a rate
        clock.advance(0.01)
        send(governor, clock, refused=True)
        paced = governor.rate
        clock.advance(0.01)
    governor.on_throttle(1.0)
    assert governor.rate == paced
    assert governor.ceiling == float("inf")


def test_clean_periods_and_429s_bracket_the_limit() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=True)
    start = paced_rate(governor)
    clean_period(governor, clock)
    assert governor.rate == pytest.approx(start * rate_limit.START_GROWTH)  # no ceiling yet
    assert governor.floor == start
    high = paced_rate(governor)
    send(governor, clock, refused=True)  # too fast: a ceiling, and back down
    assert governor.ceiling == high
    down = min(high * rate_limit.DECREASE, math.sqrt(start * high))  # half-way, geometrically
    assert governor.rate == pytest.approx(down)
    clean_period(governor, clock)  # clean: half-way back up
    assert governor.floor == pytest.approx(down)
    assert governor.floor < paced_rate(governor) < high


def test_with_a_burst_a_clean_period_proves_only_what_refilled() -> None:
    # Before any ceiling, a period that ran clean may have run on the burst's store: of
    # what got through, the first burst's worth proves nothing about the rate.
    governor, clock = throttled(5)
    start = paced_rate(governor)
    clean_period(governor, clock)  # about a burst's worth got through: nothing proven
    assert governor.rate == pytest.approx(start * rate_limit.START_GROWTH)  # it still grows
    assert governor.floor < start
    fast = paced_rate(governor)
    began, successes = clock.now, governor._successes
    clean_period(governor, clock)
    proven = (governor._successes - successes - 5) / (clock.now - began)
    assert 0 < governor.floor <= proven < fast


def test_the_next_request_after_a_cut_waits_a_whole_interval() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=True)
    rate = paced_rate(governor)
    assert governor._next_start >= clock.now + 1 / rate - 1e-9


def held_at(governor: RateGovernor, clock: Clock, floor: float) -> float:
    """Hold a governor at a floor (search done, no probe due): when its last 200 came."""
    governor.rate = governor.floor = floor
    governor.ceiling = floor * 1.01
    governor._probe_wait = 1000
    for _ in range(rate_limit.TOLERATE_REQUESTS + 1):
        send(governor, clock, refused=False)
    return clock.now


@pytest.mark.parametrize(("burst", "tolerated"), [(1, rate_limit.TOLERATED_NO_BURST), (5, 1)])
def test_429s_now_and_then_at_the_floor_are_jitter_and_more_cut_it_deeper_each_time(
    burst: int, tolerated: int
) -> None:
    # With a burst of 1 a pace over the limit is refused at every other request, so a few
    # 429s at the floor are jitter; with a bigger burst, only a lone one.
    governor, clock = throttled(burst)
    floor = 10.0
    held_at(governor, clock, floor)
    for _ in range(tolerated):  # now and then: the pace holds
        send(governor, clock, refused=True)
        send(governor, clock, refused=False)
    assert governor.rate == floor
    send(governor, clock, refused=True)  # one more soon after: the floor was too high
    first = paced_rate(governor)
    send(governor, clock, refused=True)
    second = paced_rate(governor)
    assert first == pytest.approx(floor * (1 - rate_limit.STRIKE))
    assert second == pytest.approx(first * (1 - 2 * rate_limit.STRIKE))


def test_with_a_burst_of_one_jitter_that_comes_in_pairs_holds_the_pace() -> None:
    # Arrival jitter refuses a request now and then at a pace just under the limit, at
    # random: two close together, then none for long. That never adds up to a cut.
    governor, clock = throttled(1)
    held_at(governor, clock, 10.0)
    for _ in range(10):
        for clean in (5, rate_limit.TOLERATE_REQUESTS_NO_BURST):
            send(governor, clock, refused=True)
            for _ in range(clean):
                send(governor, clock, refused=False)
    assert governor.rate == 10.0


@pytest.mark.parametrize(("burst", "kept"), [(2, 1), (5, 0)])
def test_probes_that_gained_little_keep_the_step_below_the_last_with_a_small_burst(
    burst: int, kept: int
) -> None:
    # Probes held at two steps above the floor, then drew a 429. With a burst, the last
    # step held may have run on the bucket's store; with a small one (a period holds more
    # requests than it can store) the step below it is kept, else the floor stays.
    governor, clock = throttled(burst)
    governor.rate = governor.floor = 10.0
    governor.ceiling = 10.2
    governor._probe_wait = 0  # probe at the next clean period
    held = [10.0]
    for _ in range(3):  # the floor holds, then two steps above it
        clean_period(governor, clock)
        held.append(paced_rate(governor))
    send(governor, clock, refused=True)  # the third step above draws a 429
    assert held[1] < held[2] < held[3]
    assert governor.floor == pytest.approx(held[kept])
    assert governor.rate == pytest.approx(held[kept])


def simulate(
    rate: float,
    burst: int,
    seconds: float,
    schedule: tuple[tuple[float, float], ...] = (),
    *,
    jitter: float = 0.0,
    first_answer: float = 0.002,
) -> list[tuple[float, bool]]:
    """The requests of `simulated`: when each was sent, and whether it got through."""
    return simulated(rate, burst, seconds, schedule, jitter=jitter, first_answer=first_answer)[0]


def simulated(
    rate: float,
    burst: int,
    seconds: float,
    schedule: tuple[tuple[float, float], ...] = (),
    *,
    jitter: float = 0.0,
    first_answer: float = 0.002,
) -> tuple[list[tuple[float, bool]], RateGovernor]:
    """The governor against the sandbox's token bucket, on one injected clock.

    One request at a time, each answered 2 ms after it is sent (200, or 429 with a
    whole-second `Retry-After`), the first after `first_answer` s (a read's first page,
    45 ms over loopback), as fast as the governor lets them go. With `jitter`, each
    request reaches the bucket 0.5 ms after it is sent, plus a random delay of 0.25 ms on
    average and, for one in 30, 1 ms to `jitter` ms (5: what was measured over loopback
    HTTP with pages prerendered; 12: with a busy portal rendering pages on the fly).
    Returns, for every request, when it was sent (seconds from the first) and whether it
    got through; and the governor.
    """
    clock = Clock()
    governor = RateGovernor(8, clock)
    params = FaultParams(rate_limit_rps=rate, rate_limit_burst=burst, rate_limit_schedule=schedule)
    bucket = FaultInjector(params, clock)
    draw = random.Random(7)  # noqa: S311 - seeded jitter, not crypto
    start = clock.now
    sent: list[tuple[float, bool]] = []
    while clock.now - start < seconds:
        clock.now = max(clock.now, governor._next_start)
        with governor.slot():
            delay = 0.0
            if jitter:
                delay = 0.0005 + draw.expovariate(4000.0)
                late = draw.random() < 1 / 30
                delay += draw.uniform(0.001, jitter / 1000) if late else 0.0
            clock.advance(delay)
            retry_after = bucket.admit("key")
            clock.advance(-delay)
            sent.append((clock.now - start, retry_after is None))
            clock.advance(first_answer if len(sent) == 1 else 0.002)
        if retry_after is None:
            governor.on_success()
        else:
            governor.on_throttle(float(retry_after))
    return sent, governor


def after_settling(sent: list[tuple[float, bool]], settle: float = 5.0) -> tuple[int, float]:
    """Requests that got through after the first `settle` s, and the share refused then."""
    late = [granted for at, granted in sent if at >= settle]
    return sum(late), late.count(False) / len(late)


@pytest.mark.parametrize("rate", [2.0, 5.0, 8.0, 20.0, 50.0])
@pytest.mark.parametrize("burst", [1, 2, 5, 0])
def test_the_governor_finds_any_token_bucket(rate: float, burst: int) -> None:
    burst = burst or int(rate)  # 0: a burst of R
    granted, refused = after_settling(simulate(rate, burst, 30.0))
    # After the first 5 s: at least 95 % of the limit, with under 5 % of requests refused.
    assert granted >= 0.95 * rate * 25.0
    assert refused < 0.05


@pytest.mark.parametrize("rate", [8.0, 20.0, 50.0])
def test_with_arrival_jitter_a_burst_of_one_still_gets_most_of_the_limit(rate: float) -> None:
    # A request that arrives early by a fraction of a ms is refused: the pace keeps a margin.
    granted, refused = after_settling(simulate(rate, 1, 30.0, jitter=5.0))
    assert granted >= 0.88 * rate * 25.0
    assert refused < 0.05


def test_with_a_burst_the_limit_is_measured_between_429s() -> None:
    # Paced 20 % over a limit of 5 with a burst of 5, the first periods run clean on the
    # burst; then 429s come every few requests, and what got through between them is
    # the limit: the pace comes down to it, not under.
    clock = Clock()
    governor = RateGovernor(8, clock)
    bucket = FaultInjector(FaultParams(rate_limit_rps=5, rate_limit_burst=5), clock)
    for _ in range(6):  # the first burst: 5 got through, then a 429
        send(governor, clock, refused=bucket.admit("key") is not None)
    governor.rate = governor.floor = 6.0
    governor.ceiling = 6.1
    governor._probe_wait = 1000  # no probe above it in this test
    start = clock.now
    while clock.now - start < 20.0:
        clock.now = max(clock.now, governor._next_start)
        send(governor, clock, refused=bucket.admit("key") is not None)
    assert 0.9 * 5.0 <= paced_rate(governor) <= 5.0


def test_two_429s_with_few_successes_between_them_bound_the_limit() -> None:
    # Clean periods a little over a limit of 2 ran on a burst of 5 and raised the floor to
    # 2.6; two 429s 0.92 s apart with one success between say the limit is under 2 / 0.92.
    governor, clock = throttled(5)
    governor.rate = governor.floor = 2.6
    governor.ceiling = 2.7
    send(governor, clock, refused=True)
    clock.advance(0.46)
    send(governor, clock, refused=False)
    clock.advance(0.46)
    send(governor, clock, refused=True)
    bound = 2 / 0.92 * (1 + rate_limit.BOUND_MARGIN)  # from the two; the first burst's
    assert 2.0 < governor.ceiling <= bound  # 429, a little earlier, gives a little less
    assert paced_rate(governor) < bound
    assert governor.floor * rate_limit.CLOSE <= governor.ceiling


@pytest.mark.parametrize("between", [2, 3])
def test_429s_with_half_the_burst_between_them_bound_nothing(between: int) -> None:
    # After 2 successes of a burst of 5 the bucket may have filled: nothing sure is learnt.
    governor, clock = throttled(5)
    governor.rate = governor.floor = 2.6
    governor.ceiling = 2.7
    send(governor, clock, refused=True)
    for _ in range(between):
        clock.advance(0.5)
        send(governor, clock, refused=False)
    clock.advance(0.5)
    send(governor, clock, refused=True)  # (between + 1) / 0.5 (between + 1) s would be 2.06
    assert governor.ceiling > 2.5


@pytest.mark.parametrize("rate", [2.0, 5.0, 20.0, 50.0])
@pytest.mark.parametrize("burst", [1, 2, 5, 0])
@pytest.mark.parametrize("jitter", [0.0, 12.0])
def test_the_bound_from_429s_is_never_under_the_limit(
    monkeypatch: pytest.MonkeyPatch, rate: float, burst: int, jitter: float
) -> None:
    bounds: list[float] = []
    bound_of = RateGovernor._bound

    def recorded(governor: RateGovernor, sent_at: float) -> float | None:
        bound = bound_of(governor, sent_at)
        if bound is not None:
            bounds.append(bound)
        return bound

    monkeypatch.setattr(RateGovernor, "_bound", recorded)
    simulate(rate, burst or int(rate), 20.0, jitter=jitter)
    assert all(bound >= rate for bound in bounds), min(bounds)


@pytest.mark.parametrize(
    ("rate", "burst", "first_answer", "share"),
    [(20.0, 5, 0.002, 0.8), (50.0, 1, 0.002, 0.8), (20.0, 5, 0.045, 0.85), (50.0, 1, 0.045, 0.85)],
)
def test_a_limit_that_halves_and_returns_is_followed(
    rate: float, burst: int, first_answer: float, share: float
) -> None:
    # As the benchmark: halved from a third of 20 s to two thirds, the first answer (a
    # read's first page) in 45 ms as over loopback, where the 0.85 holds.
    third = 20.0 / 3
    sent = simulate(
        rate,
        burst,
        25.0,
        ((third, rate / 2), (2 * third, rate)),
        jitter=5.0,
        first_answer=first_answer,
    )
    ideal = rate * third + rate / 2 * third + rate * (25.0 - 2 * third)
    assert sum(granted for _, granted in sent) >= share * ideal
    assert after_settling(sent)[1] < 0.05


@pytest.mark.parametrize(("rate", "burst"), [(50.0, 1), (50.0, 2), (5.0, 2), (20.0, 5)])
def test_the_openings_requests_show_a_burst_only_where_the_limit_could_not_refill_between(
    rate: float, burst: int
) -> None:
    # The opening sends one request at a time, the second after the first answer (45 ms).
    # At 50/s a bucket of one refilled between them: both got through, and that is no
    # burst (searched as one, the limit was paced 10 % under). At 5/s, or with a burst of
    # 2 (a request sent with the second's answer got through too), they are one.
    _, governor = simulated(rate, burst, 10.0, first_answer=0.045)
    assert governor._burst == burst or (burst > 2 and governor._burst >= burst)


def probing(governor: RateGovernor, floor: float) -> None:
    """A governor probing above a floor that held (its search done)."""
    governor.floor = floor
    governor.ceiling = floor * 1.01
    governor.rate = floor * 1.03
    governor._probing = True
    governor._probe_base = floor


def test_once_the_floor_is_back_where_it_was_before_the_limit_went_down_probes_wait_longer() -> (
    None
):
    # After the limit went down, probes come every few requests: it may come back. Once
    # the floor is where it was before, it did: each failed probe costs a 429, and the
    # wait between them doubles again.
    governor, clock = throttled(5)
    held_at(governor, clock, 20.0)
    for _ in range(4):  # 429s in a row: the limit went down
        send(governor, clock, refused=True)
    low = paced_rate(governor)
    probing(governor, low)
    send(governor, clock, refused=True)  # still down: probe again soon
    assert governor._probe_wait == rate_limit.PROBE_WAIT_DROPPED
    probing(governor, 20.0)
    send(governor, clock, refused=True)  # back: wait twice as long as last time
    assert governor._probe_wait == 2 * rate_limit.PROBE_WAIT_DROPPED


@pytest.mark.parametrize(("burst", "kept"), [(2, 4), (5, 3)])
def test_probes_that_gained_much_keep_the_step_below_the_last_with_a_burst_a_period_can_store(
    burst: int, kept: int
) -> None:
    # The limit went up: probes held at growing steps, then one drew a 429. With a burst
    # a period can store, the last step held (the longest, after a while under the
    # limit, the bucket full) may have run on it: the step below it is kept. With a
    # small one, the last held.
    governor, clock = throttled(burst)
    governor.rate = governor.floor = 10.0
    governor.ceiling = 10.2
    governor._probe_wait = 0  # probe at the next clean period
    held = [10.0]
    for _ in range(5):  # the floor holds, then four growing steps above it
        clean_period(governor, clock)
        held.append(paced_rate(governor))
    assert held[4] >= 10.0 * rate_limit.PROBE_MOVED  # gained much
    send(governor, clock, refused=True)
    assert governor.floor == pytest.approx(held[kept])
    assert governor._probe_wait == rate_limit.PROBE_WAIT_DROPPED  # it may still go up


def test_an_idle_rate_does_not_grow() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=True)
    probing = governor.rate
    for _ in range(5):  # one request every 2 s: the rate is not what holds requests back
        clock.advance(2.0)
        send(governor, clock, refused=False)
    assert governor.rate == probing


def test_a_paced_governor_reads_further_ahead() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=True)  # Retry-After 1 s
    governor.rate, governor.ceiling = 10.0, 11.0
    # The head of the line waits out its Retry-After: read ahead 1 s more than that.
    ahead = (10 * (rate_limit.AHEAD_SECONDS + 1), rate_limit.MAX_AHEAD, True)  # paced
    assert governor.read_ahead(16) == ahead
    governor.ceiling = math.inf  # still growing: for the rate to come
    growing = 10 * rate_limit.START_GROWTH * (rate_limit.AHEAD_SECONDS + 1)
    assert governor.read_ahead(16).requests == growing
    governor.rate = 1000.0
    assert governor.read_ahead(16) == (rate_limit.MAX_AHEAD, rate_limit.MAX_AHEAD, True)


def test_requests_are_spaced_at_the_paced_rate() -> None:
    """Real threads wait their turn; the times compared are the governor's own (its clock)."""
    ticks = itertools.count()
    lock = threading.Lock()

    def clock() -> float:  # moves 1 ms per reading: waits end, in fake time
        with lock:
            return 100.0 + next(ticks) * 0.001

    governor = RateGovernor(8, clock)
    governor.rate = 50.0  # 20 ms apart
    starts: list[float] = []

    def work() -> None:
        with governor.slot(), lock:
            starts.append(governor._sending.at)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    starts.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(gaps) == 5
    assert min(gaps) >= 0.02 - 1e-9


def test_the_cap_on_requests_in_flight_holds() -> None:
    clock = Clock()
    governor = opened(RateGovernor(3, clock), clock)
    inside = threading.Semaphore(0)
    release = threading.Event()

    def work() -> None:
        with governor.slot():
            inside.release()
            release.wait(timeout=10)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        assert inside.acquire(timeout=10)
    assert not inside.acquire(timeout=0.2)  # a fourth cannot enter while three hold places
    release.set()
    for thread in threads:
        thread.join(timeout=10)


def test_no_probe_above_the_limit_in_a_reads_last_seconds() -> None:
    # In the last Retry-After and second at the pace, a probe gains a few requests, and
    # a 429 may leave the read's last page waiting it out with nothing else to send.
    governor, clock = throttled(1)
    held_at(governor, clock, 10.0)
    governor._probe_wait = 0  # a probe is due at the next clean period
    governor.remaining(25)  # more than 2 s at 10/s: probes go on
    clean_period(governor, clock)
    assert paced_rate(governor) > 10.0
    governor.remaining(15)  # the read's last 2 s: no probe, nor more of one that held
    held_at(governor, clock, 10.0)
    governor._probe_wait = 0
    for _ in range(50):
        send(governor, clock, refused=False)
    assert paced_rate(governor) == 10.0
    governor.remaining(None)  # the next read, its pages not known yet: probes again
    clean_period(governor, clock)
    assert paced_rate(governor) > 10.0


def test_429s_in_a_row_that_cut_the_floor_by_a_third_mean_the_limit_went_down() -> None:
    # The limit halved: with a burst, a lone 429 at the floor is jitter, and three more
    # in a row cut it to 0.68 of where it was. It may come back: probes come every few
    # requests for a while.
    governor, clock = throttled(5)
    held_at(governor, clock, 20.0)
    for _ in range(4):
        send(governor, clock, refused=True)
    assert paced_rate(governor) == pytest.approx(20.0 * 0.95 * 0.9 * 0.8)
    assert governor._probe_wait == rate_limit.PROBE_WAIT_DROPPED


def test_waiting_requests_go_in_the_order_their_pages_are_read() -> None:
    # A later query's pages asked first (while the head query's first page waited), then
    # the head query's pages: once a place is free, the head query's go first.
    clock = Clock()
    governor = opened(RateGovernor(1, clock), clock)
    went: list[str] = []

    def ask(name: str, order: tuple[int, int, int]) -> None:
        with reading(order), governor.slot():
            went.append(name)

    asked = [("later query", (0, 1, 5)), ("head query", (0, 0, 2)), ("head query too", (0, 0, 3))]
    threads = [threading.Thread(target=ask, args=item) for item in asked]
    with governor.slot():  # the one place in flight is taken: every request waits
        for count, thread in enumerate(threads, start=1):
            thread.start()
            wait_until_waiting(governor, count)
    for thread in threads:
        thread.join(timeout=10)
    assert went == ["head query", "head query too", "later query"]


def wait_until_waiting(governor: RateGovernor, count: int) -> None:
    """Wait (10 s at most) until `count` requests wait for their turn at `governor`."""
    pause = threading.Event()
    for _ in range(10_000):
        if len(governor._waiting) == count:
            return
        pause.wait(0.001)
    pytest.fail(f"{count} requests never came to wait their turn")


def test_until_a_second_answer_one_request_goes_at_a_time() -> None:
    """The first 200 says nothing of a burst: the second request goes alone, and decides."""
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=False)  # the first answer (a read's probe)
    entered = threading.Event()

    def later() -> None:  # another query's first page, wanting to go at once
        with governor.slot():
            entered.set()

    thread = threading.Thread(target=later)
    with governor.slot():  # the second request, in flight
        thread.start()
        assert not entered.wait(timeout=0.2)  # held while the second is unanswered
        governor.on_success()  # a 200: the burst holds more than one; the cap opens
        assert entered.wait(timeout=10)
    thread.join(timeout=10)


def test_a_429_at_the_second_request_paces_the_requests_not_yet_sent() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=False)
    probe_answered = clock.now
    send(governor, clock, refused=True)  # a burst of 1: the probe took the only token
    rate = paced_rate(governor)
    # The next request goes an interval after the probe, which took the bucket's token.
    assert governor._next_start == pytest.approx(probe_answered + 1.0 / rate)
    assert governor._cap() == 8  # paced now: the cap on requests in flight is the usual


@pytest.mark.parametrize("burst", [1, 5])
def test_with_a_burst_of_one_a_429_is_timed_from_the_last_request_let_through(
    burst: int,
) -> None:
    # A bucket of one token: the last request let through took it, so the next may go an
    # interval after that one (after its answer: never early), not an interval after the
    # 429 that came between. A bigger bucket's state is not known from its last success:
    # there the pace goes on.
    governor, clock = throttled(burst)
    last_ok = held_at(governor, clock, 10.0)
    refused_at = governor._next_start
    send(governor, clock, refused=True)  # a lone 429 at the floor: jitter, the pace holds
    assert governor.rate == 10.0
    resumed = last_ok + 0.1 if burst == 1 else refused_at + 0.1
    assert governor._next_start == pytest.approx(resumed)


def test_with_a_burst_of_one_a_request_in_flight_times_the_next_after_a_429() -> None:
    # Sent after the refused one, it may take the token: the pace goes on from it (timed
    # from the last 200 instead, the next request would go too early).
    governor, clock = throttled(1)
    held_at(governor, clock, 10.0)
    entered, refused = threading.Event(), threading.Event()
    clock.now = governor._next_start
    with governor.slot():  # sent first: it will be refused...
        clock.now = later_sent = governor._next_start

        def in_flight() -> None:  # ...while one sent after it is still unanswered
            with governor.slot():
                entered.set()
                refused.wait(timeout=10)

        thread = threading.Thread(target=in_flight)
        thread.start()
        assert entered.wait(timeout=10)
        governor.on_throttle(1.0)
        refused.set()
    thread.join(timeout=10)
    assert governor._next_start == pytest.approx(later_sent + 0.1)


@pytest.mark.slow
def test_with_a_burst_of_one_the_read_goes_on_while_its_first_429s_wait(
    fresh_portal: SandboxPortal,
) -> None:
    """The windows' first pages are not all sent at once after the first one, to be refused
    together (a burst of 1) and leave the read a whole Retry-After with nothing to send."""
    # Ten day windows of the sandbox's history: the first one's first page, which has rows
    # (so no probe of empty history follows), then the other nine first pages.
    start = fresh_portal.dataset.today - dt.timedelta(days=10)
    config = {**fresh_portal.tap_config(), "start_date": start.isoformat()}
    catalog = catalog_selecting(config, ("user_activity",))
    fresh_portal.faults = FaultParams(rate_limit_rps=40, rate_limit_burst=1)
    fresh_portal.clear_requests()
    run_tap(config, catalog=catalog)
    answered = [(record.raw_query, record.status) for record in fresh_portal.requests]
    assert all("page_size=1&" not in query for query, _ in answered)
    first_429 = next(i for i, (_, status) in enumerate(answered) if status == 429)
    refused_url = answered[first_429][0]
    retried = next(
        i for i, (query, _) in enumerate(answered) if i > first_429 and query == refused_url
    )
    # Another page got through before the refused one's Retry-After ended.
    assert any(status == 200 for _, status in answered[first_429 + 1 : retried])


def test_one_governor_per_credential_and_api() -> None:
    first = governor_for("https://acme.udemy.com", "id-1", 8)
    assert governor_for("https://acme.udemy.com", "id-1", 8) is first
    assert governor_for("https://acme.udemy.com", "id-2", 8) is not first
    assert governor_for("https://other.udemy.com", "id-1", 8) is not first


# -- the sandbox's limiter ---------------------------------------------------------------------


def test_the_bucket_lets_a_burst_through_then_refuses_with_whole_seconds() -> None:
    clock = Clock()
    injector = FaultInjector(FaultParams(rate_limit_rps=20, rate_limit_burst=5), clock)
    assert [injector.admit("key") for _ in range(5)] == [None] * 5
    assert injector.admit("key") == "1"  # 50 ms to the next token, announced as 1 s
    clock.advance(0.051)
    assert injector.admit("key") is None
    assert injector.admit("other") is None  # one bucket per credential


def test_the_bucket_keeps_only_the_latest_admissions(monkeypatch: pytest.MonkeyPatch) -> None:
    # A long-lived portal with a limit on must not grow without bound.
    monkeypatch.setattr(faults, "MAX_ADMISSIONS", 10)
    clock = Clock()
    injector = FaultInjector(FaultParams(rate_limit_rps=1, rate_limit_burst=1), clock)
    answers = [injector.admit("key") for _ in range(25)]
    assert answers[0] is None
    assert all(answer is not None for answer in answers[1:])
    assert list(injector.admissions) == [(clock.now, False)] * 10


def test_the_bucket_can_announce_the_exact_wait() -> None:
    clock = Clock()
    params = FaultParams(rate_limit_rps=20, rate_limit_burst=1, rate_limit_retry_after="exact")
    injector = FaultInjector(params, clock)
    assert injector.admit("key") is None
    clock.advance(0.01)
    assert injector.admit("key") == "0.040"


def test_the_limit_follows_its_schedule() -> None:
    clock = Clock()
    params = FaultParams(
        rate_limit_rps=10, rate_limit_burst=1, rate_limit_schedule=((10.0, 5.0), (20.0, 10.0))
    )
    injector = FaultInjector(params, clock)

    def granted_in(seconds: float, step: float) -> int:
        count = 0
        for _ in range(round(seconds / step)):
            count += injector.admit("key") is None
            clock.advance(step)
        return count

    assert granted_in(10.0, 0.01) == pytest.approx(100, abs=2)
    assert granted_in(10.0, 0.01) == pytest.approx(50, abs=2)
    assert granted_in(10.0, 0.01) == pytest.approx(100, abs=2)


def test_a_schedule_is_written_seconds_colon_rate() -> None:
    assert parse_schedule("10:5, 20:10") == ((10.0, 5.0), (20.0, 10.0))
    with pytest.raises(ValueError, match="SECONDS:RPS"):
        parse_schedule("10-5")
    with pytest.raises(ValueError, match="time order"):
        FaultParams(rate_limit_rps=10, rate_limit_schedule=((20.0, 5.0), (10.0, 10.0)))


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_throttled_sync_reads_everything_and_paces_under_the_limit(
    fresh_portal: SandboxPortal,
) -> None:
    config = {**fresh_portal.tap_config(), "page_size": 4}
    catalog = catalog_selecting(config, ("user_progress",))
    expected = run_tap(config, catalog=catalog).records["user_progress"]
    fresh_portal.faults = FaultParams(rate_limit_rps=40, rate_limit_burst=2)
    fresh_portal.clear_requests()
    # Held here, the governor is the one the tap finds for its credential (and keeps).
    governor = governor_for(base_url(config), config["client_id"], 8)
    throttled = run_tap(config, catalog=catalog).records["user_progress"]
    assert throttled == expected
    assert len(fresh_portal.requests) > 40  # a few seconds at the limit
    assert governor.rate is not None  # it paced...
    assert governor.ceiling < 40 * 4  # ... below a ceiling it found by being refused
    refused = sum(record.status == 429 for record in fresh_portal.requests)
    # The first burst and the search cost some 429s; then it is paced, not hammering.
    assert 0 < refused < len(fresh_portal.requests) / 4


def test_a_refused_url_is_asked_again_only_once_its_retry_after_has_passed(
    fresh_portal: SandboxPortal,
) -> None:
    # The portal logs when it answered each request, and the Retry-After it gave.
    config = {**fresh_portal.tap_config(), "page_size": 4}
    catalog = catalog_selecting(config, ("user_progress",))
    fresh_portal.faults = FaultParams(rate_limit_rps=40, rate_limit_burst=2)
    run_tap(config, catalog=catalog)
    due: dict[tuple[str, str], float] = {}  # a refused URL: when its Retry-After is over
    after_due = []  # for each refused URL asked again: how long after that
    for record in fresh_portal.requests:
        url = (record.path, record.raw_query)
        if url in due:
            after_due.append(record.at - due.pop(url))
        if record.status == 429:
            assert record.retry_after is not None
            due[url] = record.at + float(record.retry_after)
    assert after_due, "no URL was refused and asked again: the test would prove nothing"
    assert min(after_due) >= 0
