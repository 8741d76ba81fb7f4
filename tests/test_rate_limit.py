"""The rate governor (tap side) and the sandbox's token bucket, on injected clocks."""

from __future__ import annotations

import itertools
import math
import threading
import time
import typing as t

import pytest

from tap_udemy_business import rate_limit
from tap_udemy_business.rate_limit import RateGovernor, governor_for
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
    assert governor.read_ahead(8) == 8


def test_the_first_429_paces_at_what_got_through() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    for _ in range(10):  # a burst of 10 in 10 ms...
        send(governor, clock, refused=False)
    send(governor, clock, refused=True)  # ... then the limit
    assert governor.rate == pytest.approx(10 / rate_limit.PERIOD_SECONDS)


def test_429s_of_requests_sent_at_an_earlier_rate_are_ignored() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
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
    assert governor.rate == pytest.approx(max(start, high * rate_limit.DECREASE))
    clean_period(governor, clock)  # clean: half-way back up
    assert governor.floor == pytest.approx(high * rate_limit.DECREASE)
    assert governor.floor < paced_rate(governor) < high


def test_the_next_request_after_a_cut_waits_a_whole_interval() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=True)
    rate = paced_rate(governor)
    assert governor._next_start >= clock.now + 1 / rate - 1e-9


def test_429s_at_the_floor_cut_it_deeper_each_time() -> None:
    clock = Clock()
    governor = RateGovernor(8, clock)
    send(governor, clock, refused=True)
    clean_period(governor, clock)
    while governor.rate != governor.floor:  # 15 % down at each 429, to the floor
        send(governor, clock, refused=True)
    floor = paced_rate(governor)
    send(governor, clock, refused=True)
    first = paced_rate(governor)
    send(governor, clock, refused=True)
    second = paced_rate(governor)
    assert first == pytest.approx(floor * (1 - rate_limit.STRIKE))
    assert second == pytest.approx(first * (1 - 2 * rate_limit.STRIKE))


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
    governor.rate = 40.0
    assert governor.read_ahead(16) == math.ceil(40 * rate_limit.AHEAD_SECONDS)
    governor.rate = 1000.0
    assert governor.read_ahead(16) == rate_limit.MAX_AHEAD


def test_requests_are_spaced_at_the_paced_rate() -> None:
    governor = RateGovernor(8)
    governor.rate = 50.0  # 20 ms apart
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        with governor.slot(), lock:
            starts.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    starts.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(gaps) == 5
    assert min(gaps) >= 0.02 - 1e-3


def test_the_cap_on_requests_in_flight_holds() -> None:
    governor = RateGovernor(3)
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
