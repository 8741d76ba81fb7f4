"""Requests kept ahead of the consumer: as many as its pages and the answers' time ask for."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import typing as t

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tap_udemy_business.concurrency import PageReader, Query
from tap_udemy_business.in_flight import WINDOW, InFlightLimit
from tap_udemy_business.list_page import Page

BASE = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1"


def fed(limit: InFlightLimit, answers: t.Iterable[float], consumer: float) -> InFlightLimit:
    for answer in answers:
        limit.took(answer, consumer)
    return limit


def test_the_usual_window_holds_until_a_window_of_answers_is_known() -> None:
    limit = fed(InFlightLimit(16), [0.001] * (WINDOW - 1), consumer=0.001)
    assert limit.limit == 16
    limit.took(0.001, 0.001)
    assert limit.limit == 2


@pytest.mark.parametrize(
    ("answer", "consumer", "expected"),
    [
        (0.0005, 0.001, 2),  # the consumer is the bottleneck: the fewest
        (0.003, 0.001, 4),  # three pages' work per answer, and one more
        (0.1, 0.0006, 16),  # 100 ms a page: the whole window
    ],
)
def test_the_limit_is_the_answers_time_over_the_consumers_plus_one(
    answer: float, consumer: float, expected: int
) -> None:
    assert fed(InFlightLimit(16), [answer] * WINDOW, consumer).limit == expected


def test_answers_slowed_by_the_threads_waiting_for_the_gil_do_not_count() -> None:
    # Eight in flight make most answers slow while each waits its turn for the GIL: the
    # quickest tells what the API takes, else eight would look needed because eight are.
    answers = [0.02] * (WINDOW - 1) + [0.002]
    assert fed(InFlightLimit(16), answers, consumer=0.001).limit == 3


def test_an_api_that_slows_down_gets_the_whole_window_back_within_a_window_of_answers() -> None:
    limit = fed(InFlightLimit(16), [0.001] * WINDOW, consumer=0.001)
    assert limit.limit == 2
    assert fed(limit, [0.1] * WINDOW, consumer=0.001).limit == 16


def test_pages_known_without_an_answer_change_nothing_but_the_consumers_time() -> None:
    limit = fed(InFlightLimit(16), [0.004] * WINDOW, consumer=0.001)
    assert limit.limit == 5
    limit.took(None, 0.001)
    assert limit.limit == 5


@given(
    most=st.integers(1, 64),
    answers=st.lists(st.one_of(st.none(), st.floats(0, 10)), min_size=1, max_size=60),
    consumer=st.floats(0, 1),
)
def test_the_limit_stays_between_the_fewest_and_the_usual_window(
    most: int, answers: list[float | None], consumer: float
) -> None:
    limit = InFlightLimit(most)
    for answer in answers:
        limit.took(answer, consumer)
        assert min(2, most) <= limit.limit <= most


class _Clock:
    """Seconds that pass only when the test says: the consumer's work on each page."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _answered_in(seconds: float) -> requests.Response:
    response = requests.Response()
    response.elapsed = dt.timedelta(seconds=seconds)
    return response


@pytest.mark.parametrize(("answer", "most_in_flight"), [(0.0005, 2), (0.1, None)])
def test_a_reader_keeps_as_many_requests_in_flight_as_its_consumer_needs(
    answer: float, most_in_flight: int | None
) -> None:
    # The consumer spends 1 ms on a page. A page is answered at once while the consumer
    # is fewer than 8 pages behind it, else held back: a reader that keeps its whole
    # window of 16 requests ahead has 7 or 8 of them in flight at any time.
    pages, behind = 100, 8
    clock = _Clock()
    lock = threading.Condition()
    taken, in_flight, seen = [0], [0], [0]

    def fetch(url: str) -> Page:
        number = int(url.rsplit("=", 1)[1])
        with lock:
            in_flight[0] += 1
            if taken[0] > 2 * WINDOW:  # the limit has been learnt
                seen[0] = max(seen[0], in_flight[0])
            lock.notify_all()
            lock.wait_for(lambda: taken[0] >= number - behind, timeout=10)
            in_flight[0] -= 1
        more = f"{BASE}&page={number + 1}" if number < pages else None
        return Page(
            url=url,
            count=pages,
            next_url=more,
            records=[{"id": number}],
            response=_answered_in(answer),
        )

    reader = PageReader(fetch, concurrency=8, clock=clock)
    ids = []
    for _, page in reader.read([Query(f"{BASE}&page=1")]):
        ids.append(page.records[0]["id"])
        with lock:
            taken[0] += 1
            lock.notify_all()
            if most_in_flight is None and taken[0] == 3 * WINDOW:
                # A slow API: the whole window goes on being used (or this waits 10 s).
                assert lock.wait_for(lambda: in_flight[0] >= behind - 2, timeout=10)
        clock.now += 0.001
    assert ids == list(range(1, pages + 1))
    if most_in_flight is not None:
        assert 1 <= seen[0] <= most_in_flight


def test_one_request_at_a_time_stays_one_at_a_time() -> None:
    limit = InFlightLimit(1)
    for answer in itertools.repeat(0.1, 3 * WINDOW):
        limit.took(answer, 0.0001)
    assert limit.limit == 1
