"""The concurrent read path: the same records, in the same order, with the same state."""

from __future__ import annotations

import re
import threading
import typing as t

import pytest
from singer_sdk.exceptions import RetriableAPIError

from tap_udemy_business import retries
from tap_udemy_business.concurrency import PageReader, Query, ReadAhead, request_order
from tap_udemy_business.errors import UdemyFatalError
from tap_udemy_business.list_page import Page
from tap_udemy_business.sandbox import FaultParams

from .conftest import catalog_selecting, run_tap

#: The tap's line for a retry (client.py's `backoff_handler`): which URL, and the wait.
RETRY_LINE = re.compile(
    r"Retrying (?P<url>\S+) after .+ \(try \d+\), waiting (?P<seconds>[\d.]+) s"
)

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal


@pytest.mark.slow
@pytest.mark.parametrize(
    "faults",
    [
        FaultParams(),
        FaultParams(
            seed=9, error_rate=0.15, drop_rate=0.05, truncated_json_rate=0.05, max_faults_per_url=2
        ),
    ],
    ids=["clean", "faulty"],
)
def test_concurrent_and_sequential_syncs_agree_exactly(
    fresh_dialect_portal: SandboxPortal, faults: FaultParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh_portal = fresh_dialect_portal
    monkeypatch.setattr(retries, "RETRY_BASE_SECONDS", 0.005)
    fresh_portal.faults = faults
    base = {**fresh_portal.tap_config(), "page_size": 3}
    sequential = run_tap({**base, "max_concurrent_requests": 1})
    fresh_portal.faults = faults  # same faults again, counted afresh
    concurrent = run_tap({**base, "max_concurrent_requests": 8})
    assert sequential.records == concurrent.records
    assert sequential.final_state == concurrent.final_state
    assert sum(len(v) for v in concurrent.records.values()) > 300


def test_field_pushdown_requests_only_selected_fields(portal: SandboxPortal) -> None:
    from tap_udemy_business.tap import TapUdemyBusiness

    config = portal.tap_config()
    catalog = TapUdemyBusiness(config=config, parse_env_config=False).catalog_dict
    keep = {"learner_key", "course_id", "item_id", "item_completion_ratio"}
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            breadcrumb = metadata["breadcrumb"]
            if breadcrumb == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] == "user_progress"
            elif entry["tap_stream_id"] == "user_progress" and breadcrumb[1] not in keep | {
                "from_date",
                "to_date",
            }:
                metadata["metadata"]["selected"] = False
    portal.clear_requests()
    result = run_tap(config, catalog=catalog)
    sent = {r.query["fields[user_progress]"] for r in portal.requests}
    # What learner_key is built from is asked for too, and dropped from the output.
    assert sent == {
        (
            "_class,user_id,lms_user_id,user_email,user_external_id,course_id,item_id,"
            "item_start_time,item_completion_ratio"
        )
    }
    records = result.records["user_progress"]
    assert records
    assert all(set(r) <= keep | {"_class", "from_date", "to_date"} for r in records)
    full = run_tap(config, catalog=catalog_selecting(config, ("user_progress",)))
    assert [r["learner_key"] for r in records] == [
        r["learner_key"] for r in full.records["user_progress"]
    ]


def test_a_block_stream_alone_reads_every_row_when_the_api_clock_is_ahead(
    fresh_portal: SandboxPortal,
) -> None:
    """The first stream of a sync learns the API's date from its own probe, before reading.

    (tests/test_window_plan.py checks the plan itself: probes first, then its windows.)
    """
    fresh_portal.advance(days=2)  # the API's clock is ahead of this machine's
    config = fresh_portal.tap_config()
    result = run_tap(config, catalog=catalog_selecting(config, ("user_progress",)))
    got = {(r["user_id"], r["course_id"], r["item_id"]) for r in result.records["user_progress"]}
    truth = fresh_portal.ground_truth("user_progress")
    assert got == {(r["user_id"], r["course_id"], r["item_id"]) for r in truth}


def test_a_page_read_ahead_keeps_its_answers_headers_not_its_body(portal: SandboxPortal) -> None:
    # Up to 80 pages wait in the read-ahead while the limit paces the reads: each keeps
    # its records, and of its answer only what is read later (status, Date, duration).
    from tap_udemy_business.client import UdemyStream
    from tap_udemy_business.tap import TapUdemyBusiness

    tap = TapUdemyBusiness(config=portal.tap_config(), parse_env_config=False)
    stream = tap.streams["courses"]
    assert isinstance(stream, UdemyStream)
    page = stream.fetch_page(stream.query_url())
    assert page.records
    assert page.response is not None
    assert page.response.status_code == 200
    assert page.response.headers["Date"]
    assert page.response.content == b""


def test_a_failed_read_cancels_what_is_still_in_flight() -> None:
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1&page="
    cancel = threading.Event()

    def fetch(url: str) -> Page:
        number = int(url.rsplit("=", 1)[1])
        if number == 2:
            message = "page 2 is bad"
            raise UdemyFatalError(message)
        return Page(url=url, count=6, next_url=base + "2", records=[{"id": number}])

    with pytest.raises(UdemyFatalError, match="page 2"):
        list(PageReader(fetch, concurrency=4, cancel=cancel).read([Query(base + "1")]))
    assert cancel.is_set()


def test_a_later_query_is_read_on_while_the_first_page_of_the_head_query_waits() -> None:
    # The head query's first page waits (out a Retry-After, say): its other pages cannot be
    # planned yet, but the next query's first page is in, so its pages are requested now.
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=2"
    second_query_read_on = threading.Event()
    head_waited_alone = []

    def fetch(url: str) -> Page:
        query, _, number = url.rpartition("&page=")
        window, page = query.rsplit("=", 1)[1], int(number)
        if (window, page) == ("a", 1):
            # Answered only once the other query's page 2 has been asked for (or after 10 s,
            # which fails the test: the reader waited on this page alone).
            head_waited_alone.append(not second_query_read_on.wait(timeout=10))
        if (window, page) == ("b", 2):
            second_query_read_on.set()
        more = f"{query}&page={page + 1}" if page < 3 else None
        return Page(url=url, count=6, next_url=more, records=[{"id": f"{window}{page}"}] * 2)

    queries = [Query(f"{base}&window={window}&page=1") for window in ("a", "b")]
    pages = list(PageReader(fetch, concurrency=2).read(queries))
    assert head_waited_alone == [False]
    assert [page.records[0]["id"] for _, page in pages] == ["a1", "a2", "a3", "b1", "b2", "b3"]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_the_pages_a_page_leads_to_are_requested_before_the_consumer_takes_it(
    concurrency: int,
) -> None:
    # Page 1 gives the plan (or, one at a time, its link is followed): the next request goes
    # out while the consumer works on page 1, not once it is done with it. A reader that
    # waited for the consumer would leave each wait below to time out.
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1"
    started = {number: threading.Event() for number in range(1, 5)}

    def fetch(url: str) -> Page:
        number = int(url.rsplit("=", 1)[1])
        started[number].set()
        more = f"{base}&page={number + 1}" if number < len(started) else None
        return Page(url=url, count=len(started), next_url=more, records=[{"id": number}])

    requested_meanwhile = []
    for _, page in PageReader(fetch, concurrency).read([Query(f"{base}&page=1")]):
        number = page.records[0]["id"]
        if number < len(started):
            requested_meanwhile.append(started[number + 1].wait(timeout=5))
    assert requested_meanwhile == [True, True, True]


class Window:
    """Pacing that holds at most `pages` pages, and remembers what it heard of the rest."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.told: list[int | None] = []

    def read_ahead(self, base: int) -> ReadAhead:
        return ReadAhead(base, self.pages)

    def remaining(self, pages: int | None) -> None:
        self.told.append(pages)


def test_pages_in_out_of_order_take_no_place_of_requests_up_to_the_pages_held() -> None:
    # The head query's first page waits; the next query's first page comes in meanwhile.
    # Counted as a request, it would leave room for two more of its pages in the window of
    # four: here the head comes only once page 4 (a third) has been asked for.
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1"
    fourth_requested = threading.Event()
    head_waited_alone = []
    sizes = {"a": 3, "b": 8}
    lock = threading.Lock()
    requested, consumed, most_held = [0], [0], [0]

    def fetch(url: str) -> Page:
        query, _, number = url.rpartition("&page=")
        window, page = query.rsplit("=", 1)[1], int(number)
        with lock:
            requested[0] += 1
            most_held[0] = max(most_held[0], requested[0] - consumed[0])
        if (window, page) == ("a", 1):
            head_waited_alone.append(not fourth_requested.wait(timeout=10))
        if (window, page) == ("b", 4):
            fourth_requested.set()
        more = f"{query}&page={page + 1}" if page < sizes[window] else None
        return Page(url=url, count=sizes[window], next_url=more, records=[{"id": window}])

    queries = [Query(f"{base}&window={window}&page=1") for window in sizes]
    reader = PageReader(fetch, concurrency=2, pacing=Window(7))
    ids = []
    for _, page in reader.read(queries):
        with lock:
            consumed[0] += 1
        ids.append(page.records[0]["id"])
    assert head_waited_alone == [False]
    assert ids == ["a"] * 3 + ["b"] * 8
    assert most_held[0] <= 7  # the pages held at most


@pytest.mark.parametrize("concurrency", [1, 3])
def test_each_request_tells_where_its_page_comes_in_the_read(concurrency: int) -> None:
    # The rate governor lets waiting requests go in this order: (read, query, page).
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1"
    told: dict[tuple[str, int], tuple[int, int, int] | None] = {}

    def fetch(url: str) -> Page:
        query, _, number = url.rpartition("&page=")
        window, page = query.rsplit("=", 1)[1], int(number)
        told[window, page] = request_order()
        more = f"{query}&page={page + 1}" if page < 3 else None
        return Page(url=url, count=3, next_url=more, records=[{"id": window}])

    queries = [Query(f"{base}&window={window}&page=1") for window in "ab"]
    reader = PageReader(fetch, concurrency)
    assert len(list(reader.read(queries))) == 6
    assert request_order() is None  # outside a read
    (first,) = {order[0] for order in told.values() if order is not None}
    assert {key: order[1:] for key, order in told.items() if order is not None} == {
        (window, page): (index, page) for index, window in enumerate("ab") for page in (1, 2, 3)
    }
    later = PageReader(fetch, concurrency)
    assert len(list(later.read(queries))) == 6
    assert all(order is not None and order[0] > first for order in told.values())


@pytest.mark.parametrize("concurrency", [1, 2])
def test_the_pacing_hears_how_many_pages_are_left_once_they_are_known(concurrency: int) -> None:
    # Known once every query is handed out and planned; with links followed one by one
    # (concurrency 1) never: the links may lead anywhere.
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1"
    sizes = {"a": 3, "b": 8}

    def fetch(url: str) -> Page:
        query, _, number = url.rpartition("&page=")
        window, page = query.rsplit("=", 1)[1], int(number)
        more = f"{query}&page={page + 1}" if page < sizes[window] else None
        return Page(url=url, count=sizes[window], next_url=more, records=[{"id": window}])

    pacing = Window(4)
    queries = [Query(f"{base}&window={window}&page=1") for window in sizes]
    total = sum(sizes.values())
    heard = [
        (pacing.told[-1], total - done)
        for done, _ in enumerate(PageReader(fetch, concurrency, pacing=pacing).read(queries))
    ]
    assert pacing.told[0] is None  # as the read began
    known = [(told, left) for told, left in heard if told is not None]
    assert all(told == left for told, left in known)
    if concurrency == 1:
        assert not known
    else:
        assert len(known) >= sizes["b"]  # at least the last query's pages, counted down
        assert pacing.told[-1] == 0


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_empty_first_page_that_links_on_is_followed_link_by_link(concurrency: int) -> None:
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=2&page="
    pages = {
        1: Page(url="", count=4, next_url=base + "2", records=[]),
        2: Page(url="", count=4, next_url=base + "3", records=[{"id": 1}, {"id": 2}]),
        3: Page(url="", count=4, next_url=None, records=[{"id": 3}, {"id": 4}]),
    }

    def fetch(url: str) -> Page:
        return pages[int(url.rsplit("=", 1)[1])]

    read = PageReader(fetch, concurrency).read([Query(base + "1")])
    assert [r["id"] for _, page in read for r in page.records] == [1, 2, 3, 4]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_query_that_brings_its_first_page_is_read_on_from_it(concurrency: int) -> None:
    # The stream's first page, read while planning, is not asked for again: the read
    # goes on from its link (one request at a time) or its count (concurrently).
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1"
    asked: list[str] = []

    def page(window: str, number: int) -> Page:
        more = f"{base}&window={window}&page={number + 1}" if number < 3 else None
        return Page(url="", count=3, next_url=more, records=[{"id": f"{window}{number}"}])

    def fetch(url: str) -> Page:
        asked.append(url)
        query, _, number = url.rpartition("&page=")
        return page(query.rsplit("=", 1)[1], int(number))

    queries = [
        Query(f"{base}&window=a&page=1", page=page("a", 1)),
        Query(f"{base}&window=b&page=1"),
    ]
    read = PageReader(fetch, concurrency).read(queries)
    assert [p.records[0]["id"] for _, p in read] == ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert f"{base}&window=a&page=1" not in asked
    assert sorted(asked) == sorted(
        f"{base}&window={window}&page={number}" for window, number in ("a2", "a3", "b1", "b2", "b3")
    )


@pytest.mark.slow
def test_retry_after_never_outlasts_the_retry_budget(
    fresh_portal: SandboxPortal, caplog: pytest.LogCaptureFixture
) -> None:
    """A `Retry-After` longer than `max_retry_seconds` is waited only as long as the budget
    allows, then the sync fails: judged by the waits the tap announces, not by a stopwatch."""
    fresh_portal.faults = FaultParams(rate_limit_rps=0.02, rate_limit_burst=1)  # Retry-After ~50 s
    config = {**fresh_portal.tap_config(), "max_retry_seconds": 1, "max_retries": 3}
    with pytest.raises(RetriableAPIError):
        run_tap(config, catalog=catalog_selecting(config, ("courses", "user_activity")))
    throttled = [r for r in fresh_portal.requests if r.status == 429]
    waits: dict[str, list[float]] = {}
    for record in caplog.records:
        if match := RETRY_LINE.fullmatch(record.getMessage()):
            waits.setdefault(match["url"], []).append(float(match["seconds"]))
    assert throttled, "the portal must refuse for the test to mean anything"
    assert waits, "a 429 is retried at least once"
    # Each URL's waits add up to at most the budget (the line rounds to 0.1 s), however long
    # the API asked to wait, so the tap gives up after one wait rather than three.
    assert all(sum(seconds) <= 1.05 for seconds in waits.values()), waits
    assert all(len(seconds) == 1 for seconds in waits.values()), waits


def test_a_list_that_grew_during_a_concurrent_read_is_read_to_its_end() -> None:
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=2&page="

    def fetch(url: str) -> Page:
        number = int(url.rsplit("=", 1)[1])
        count = 4 if number == 1 else 6  # two more rows arrived after page 1 was read
        following = base + str(number + 1) if number < 3 else None
        return Page(
            url=url,
            count=count,
            next_url=following,
            records=[{"id": 2 * number - 1}, {"id": 2 * number}],
        )

    read = PageReader(fetch, concurrency=4).read([Query(base + "1")])
    assert [r["id"] for _, page in read for r in page.records] == [1, 2, 3, 4, 5, 6]
