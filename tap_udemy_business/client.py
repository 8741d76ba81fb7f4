"""What every Udemy Business stream does to read its endpoint: URLs, pages, retries.

Streams (see `streams.py`) only declare an endpoint, keys and a schema file; the reading
lives here, once. Around it: what the streams of a tap share (`api_session.py`), what an
answer means (`responses.py`), how long a retry waits (`retries.py`), the concurrent page
reader (`concurrency.py`) and how records become messages (`fast_path.py`).
"""

from __future__ import annotations

import itertools
import sys
import threading
import typing as t
from collections import deque
from functools import cached_property
from urllib.parse import urlencode, urlsplit

import backoff
from singer_sdk import RESTStream, StreamSchema
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_udemy_business.concurrency import (
    LinkLeavesListError,
    ListChangedError,
    PageReader,
    PagingError,
    Query,
)
from tap_udemy_business.data_errors import InvalidBody, UnusableData
from tap_udemy_business.errors import (
    EndpointUnavailableError,
    InvalidBodyError,
    SyncAbortedError,
    UdemyFatalError,
    UnsafeLinkError,
)
from tap_udemy_business.fast_path import PagedStream, PreparedPage
from tap_udemy_business.pages import parse_page
from tap_udemy_business.progress import Progress
from tap_udemy_business.records import UNDOCUMENTED, Record, RecordChecker
from tap_udemy_business.remote_pages import HeldPage, WorkerDiedError
from tap_udemy_business.responses import check_response
from tap_udemy_business.retries import (
    RETRIABLE_ERRORS,
    asked_wait,
    backoff_seconds,
    retry_after_seconds,
    retry_reason,
)
from tap_udemy_business.schema_files import SCHEMAS
from tap_udemy_business.transport import release_body
from tap_udemy_business.urls import describe_url

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    import requests
    from backoff.types import Details
    from singer_sdk.helpers.types import Context

    from tap_udemy_business.api_session import ApiSession
    from tap_udemy_business.list_page import Page
    from tap_udemy_business.remote_pages import PageWorker

_T = t.TypeVar("_T")


class UdemyStream(PagedStream, RESTStream[t.Any]):
    """A list endpoint of the Udemy Business API (`{count, next, previous, results}`).

    Pages are read here; how their records become messages is `PagedStream`'s (see
    `fast_path.py`).
    """

    #: The stream's file in `schemas/` (named after the stream), the single source of truth
    #: for its fields, loaded the SDK's way.
    schema = StreamSchema(SCHEMAS)
    #: The records' `_class`, which names the `fields[...]` request parameter.
    record_class: t.ClassVar[str]
    #: Organizations without the feature answer 403/404: skip instead of failing.
    optional: t.ClassVar[bool] = False
    #: Records are checked against the schema per page instead (see `records.py`).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Set up the stream and its progress counter."""
        super().__init__(*args, **kwargs)
        self.progress = Progress(self.name, self.logger)
        #: Set when the current read fails: its other requests give up (see PageReader).
        self._cancel = threading.Event()
        #: The records' type, which keys `fields[...]`: a guess until a page tells it.
        self.fields_type = self.record_class
        #: Every answer (retried ones too) not yet logged as `http_request_duration`.
        self._answered: deque[requests.Response] = deque()
        #: The page worker the current read's pages are parsed by; None: parsed here.
        self._worker: PageWorker | None = None
        #: Queries read so far (a page worker tells `learner_key`s apart within one).
        self._queries = itertools.count()

    @property
    def api_session(self) -> ApiSession:
        """What the tap's streams share: transport, credentials, rate governor, clocks."""
        return t.cast("ApiSession", self._tap.api_session)  # type: ignore[attr-defined]

    @property
    @override
    def url_base(self) -> str:
        """Root of the organization's API."""
        return (
            f"{self.api_session.base_url}/api-2.0/organizations/{self.api_session.organization_id}/"
        )

    @property
    def request_timeout(self) -> float:
        """Seconds to wait for one response (`request_timeout`, fractions allowed)."""
        return float(self.config["request_timeout"])

    @cached_property
    def page_size(self) -> int:
        """Records per page (`page_size`, at most the API's 100)."""
        return int(self.config["page_size"])

    @cached_property
    def fields_param(self) -> str:
        """`@all`, or the selected fields when the catalog deselects some (pushdown)."""
        properties = self.schema["properties"]
        added = self.tap_added_fields
        api_fields = [name for name in properties if name not in added]
        selected = [name for name in api_fields if self.mask.get(("properties", name), True)]
        if len(selected) == len(api_fields):
            return "@all"
        wanted = set(selected) | set(self.primary_keys) | self.key_sources | {"_class"}
        return ",".join(name for name in api_fields if name in wanted)

    @property
    def key_sources(self) -> frozenset[str]:
        """Fields the key is computed from, beyond the key itself (see `ReportingStream`)."""
        return frozenset()

    def learn_record_class(self, page: Page) -> None:
        """Take the records' own `_class` as the `fields[...]` key from now on.

        Only two types are documented (`course`, `aggregate_organization_user_activity`);
        the API ignores a `fields[...]` key naming another type and answers its smaller
        default field set, so a wrong guess would silently lose fields. Each stream's
        first page is requested alone, and its records tell the right name.
        """
        classes = page.record_classes()
        if len(classes) != 1:
            return
        (found,) = classes
        if isinstance(found, str) and found and found != self.fields_type:
            self.logger.info(
                "Stream '%s': the API's records are of type '%s', not '%s': asking for fields[%s]",
                self.name,
                found,
                self.fields_type,
                found,
            )
            self.fields_type = found

    #: Counts and logs the running sync's progress (replaced at each read).
    progress: Progress

    #: Fields the tap adds to records (not requested from the API).
    tap_added_fields: t.ClassVar[frozenset[str]] = frozenset({UNDOCUMENTED})

    def query_url(self, **params: str) -> str:
        """Build a first-page URL: the endpoint, page size, fields and `params`.

        The URL carries its whole query string, so later pages (the API's absolute `next`
        links) are requested as they are, without the first page's parameters again.
        """
        query = {
            "page": "1",
            "page_size": str(self.page_size),
            f"fields[{self.fields_type}]": self.fields_param,
            **params,
        }
        return f"{self.get_url(None)}?{urlencode(query, safe='@,[]')}"

    # Reading pages

    @cached_property
    def _fetch_with_retries(self) -> Callable[[str], Page]:
        return t.cast("Callable[[str], Page]", self.request_decorator(self._fetch_once))

    def fetch_page(self, url: str) -> Page:
        """Read one page, with retries on transient failures and invalid JSON."""
        return self._fetch_with_retries(url)

    def _fetch_once(self, url: str) -> Page:
        if self._cancel.is_set():
            raise SyncAbortedError
        with self.api_session.governor.slot(self._cancel):
            response = self.api_session.transport.get(url, self.request_timeout)
        self._answered.append(response)
        self.api_session.note_server_date(response)
        self.validate_response(response)
        worker = self._worker
        if worker is not None:
            page = worker.parse(response.content, describe_url(url), self.name)
        else:
            page = _as_udemy_errors(parse_page, response.content, describe_url(url))
        release_body(response)
        page.response = response
        self.api_session.governor.on_success()
        return page

    def read_queries(
        self, queries: Sequence[Query], total_units: int = 0
    ) -> Iterator[tuple[Query, Page]]:
        """Read every page of every query, in order, as concurrently as allowed.

        Args:
            queries: the queries, all decided beforehand, in the order their records must
                be emitted.
            total_units: how many units of work (windows) the queries' `units` count up
                to, for the progress line's percentage; 0 to use the announced counts.

        Raises:
            UnsafeLinkError: a `next` link leaves its query's list (after its page).
            UdemyFatalError: the list changed under the read, or its links loop; or a
                request failed for good.
        """
        self._cancel = threading.Event()
        reader = PageReader(
            self.fetch_page,
            self.api_session.concurrency,
            self._cancel,
            logger=self.logger,
            pacing=self.api_session.governor,
        )
        self.progress = Progress(self.name, self.logger, units_total=total_units)
        previous: Query | None = None
        with self.get_http_request_counter() as request_counter:
            for query, page in _udemy_errors(reader.read(queries)):
                if query is not previous:
                    previous = query
                    self.progress.expect(page.count)
                    self.progress.units_done = query.units
                request_counter.increment()
                self.log_request_durations()
                self.progress.page(page.size)
                yield query, page

    def log_request_durations(self) -> None:
        """Log singer-sdk's `http_request_duration` metric for each answer since last time.

        The metric Meltano users read, from the SDK's own helper (its tags, its logger),
        for every request that got an answer, retried ones included. Requests run in
        worker threads, which only queue their answers: a log line written from eight
        threads at once costs each of them the GIL at every write, about 8 % of the
        tap's records/s at 0 ms latency; the thread that emits the records logs them.
        """
        answered = self._answered
        while answered:
            response = answered.popleft()
            self._write_request_duration_log(
                endpoint=self.path,
                response=response,
                context=None,
                extra_tags={"url": _path_of(response.url)}
                if self._LOG_REQUEST_METRIC_URLS
                else None,
            )

    @override
    def pages(self, context: Context | None) -> Iterator[list[Record] | PreparedPage]:
        """`read_pages`, where a missing optional endpoint is no error: a warning and no pages.

        Also where a read ends, however it ends: the last request durations are logged
        and the records set aside are reported.
        """
        emitted = False
        self._worker = self._page_worker()
        try:
            for records in self.read_pages(context):
                emitted = True
                yield records
        except EndpointUnavailableError as exc:
            if not self.optional or emitted:
                raise  # a 403/404 mid-read is no missing feature: expired credentials?
            self.logger.warning(
                "Skipping stream '%s': the organization has no access to it (%s)", self.name, exc
            )
        finally:
            worker, self._worker = self._worker, None
            if worker is not None:
                self._take_counts(worker, failing=sys.exc_info()[0] is not None)
            self.log_request_durations()
            self._checker.report(self.name, self.logger)

    def _take_counts(self, worker: PageWorker, *, failing: bool) -> None:
        """End the read in the worker; add what it set aside to the stream's report.

        Raises:
            WorkerDiedError: the worker died, and no other error ends the read already.
        """
        try:
            set_aside, undated = worker.forget(self.name)
        except WorkerDiedError:
            if failing:
                return  # the read's own error says what happened
            raise
        for name, kind, count in set_aside:
            self._checker.set_aside[name, kind] += count
        for name, count in undated:
            self._checker.undated[name] += count

    def _page_worker(self) -> PageWorker | None:
        """The page worker for this read, told about the stream; None to parse here.

        Only the page loop writes what it prepares, and only pages whose records share
        one bookmark value (or a stream without one) can be written from it, with every
        property selected.
        """
        if not self.page_loop or self.deselects():
            return None
        if self.replication_key and not self.one_bookmark_value_per_page:
            return None
        worker = self.api_session.page_worker
        if worker is not None:
            worker.open_stream(self.name, self.schema, self.primary_keys, self.learner_spec())
        return worker

    def learner_spec(self) -> dict[str, list[str]] | None:
        """What a page worker needs to give records their `learner_key`; None: no key."""
        return None

    def read_pages(
        self,
        context: Context | None,  # noqa: ARG002 - one read for the whole list
    ) -> Iterator[list[Record] | PreparedPage]:
        """Read the endpoint's whole list (the catalog endpoints are small).

        The first page comes first, alone, to learn the records' `_class`: read on from
        when the guess was right, asked for again with the right `fields[...]` key if not.
        """
        first, url = self.first_page(self.query_url)
        query = Query(url, page=first) if url else Query(self.query_url())
        for _query, page in self.read_queries([query]):
            yield self.checked(page)

    def held(
        self, page: Page, window: tuple[str, str] | None, query: int, *, starts_query: bool
    ) -> HeldPage:
        """A page the worker holds, to be written from its lines (see `PreparedPage`)."""
        assert self._worker is not None  # noqa: S101 - only held while a worker reads
        key = self.replication_key
        bookmark = {} if not key or window is None else {key: window[0]}
        return HeldPage(self._worker, page, self.name, window, query, bookmark, starts_query)

    def first_page(self, url_of: Callable[[], str]) -> tuple[Page, str | None]:
        """Request a query's first page on its own, to learn the records' `_class` from it.

        A rate-limited API counts requests, so the page is not thrown away when its
        `fields[...]` key was the right one: the query reads on from it.

        Args:
            url_of: the query's first URL, by the `fields[...]` key known when called.

        Returns:
            The page, and the URL it answers; None instead when it was asked for with
            the wrong key (the query must start again, at `url_of()`).
        """
        url = url_of()
        page = self.fetch_page(url)
        self.learn_record_class(page)
        return page, url if url_of() == url else None

    @cached_property
    def _checker(self) -> RecordChecker:
        return RecordChecker(self.schema, key_fields=self.primary_keys)

    def checked(self, page: Page) -> list[Record] | HeldPage:
        """The page's records, fit for the stream's schema (see `records.py`).

        A page the worker holds is checked there, as it is written.

        Raises:
            UdemyFatalError: a record cannot be loaded (it lacks a key field).
        """
        if page.held is not None:
            return self.held(page, None, 0, starts_query=False)
        return _as_udemy_errors(self._checker.check, page.records, page.url)

    # Errors and retries

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Sort a response into fine, retriable (429, 5xx) or fatal (see `responses.py`)."""
        check_response(response, self.api_session)

    @override
    def request_decorator(self, func: Callable[..., t.Any]) -> Callable[..., t.Any]:
        """Retry transient failures, bounded by `max_retries` and `max_retry_seconds`."""
        decorated: Callable[..., t.Any] = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_ERRORS,
            max_tries=self.backoff_max_tries,
            max_time=float(self.config["max_retry_seconds"]),
            on_backoff=self.backoff_handler,
            jitter=None,
            logger=None,
        )(func)
        return decorated

    @override
    def backoff_max_tries(self) -> int:
        """One try plus `max_retries` retries."""
        return 1 + int(self.config["max_retries"])

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait `Retry-After` on 429 (and slow down); otherwise exponential with jitter."""
        attempt = 0
        exception = yield 0.0
        while True:
            attempt += 1
            exception = yield self.retry_wait(exception, attempt)

    def retry_wait(self, exception: BaseException | None, attempt: int) -> float:
        """Seconds before retry `attempt` of a request that failed with `exception`.

        A `Retry-After` the answer asks for is honoured (never past the retry budget) and
        tells the rate governor; otherwise the wait backs off exponentially (`retries.py`).
        """
        if self._cancel.is_set():
            return 0.0  # the read already failed: the next try gives up at once
        asked = asked_wait(exception)
        if asked is None:
            return backoff_seconds(attempt)
        now = self.api_session.clock  # an HTTP-date `Retry-After` is read by the session's clock
        wait = min(
            retry_after_seconds(asked, lambda: now().timestamp()),
            float(self.config["max_retry_seconds"]),
        )
        self.api_session.governor.on_throttle(wait)
        return wait

    @override
    def backoff_handler(self, details: Details) -> None:
        """Log one line per retry: what failed, where, and how long until the next try."""
        exception = details.get("exception")
        args = details.get("args") or ()
        url = describe_url(str(args[0])) if args else self.path
        self.progress.retry()
        self.logger.warning(
            "Retrying %s after %s (try %d), waiting %.1f s",
            url,
            retry_reason(exception),
            details.get("tries", 0),
            details.get("wait", 0.0),
        )


def _as_udemy_errors(function: Callable[..., _T], *args: t.Any) -> _T:
    """`function(*args)`, what it finds wrong with a page raised as the SDK's errors.

    Raises:
        InvalidBodyError: the body is not JSON (retried).
        UdemyFatalError: a page or record no target could load.
    """
    try:
        return function(*args)
    except InvalidBody as exc:
        raise InvalidBodyError(str(exc)) from None
    except UnusableData as exc:
        raise UdemyFatalError(str(exc)) from None


def _path_of(url: str) -> str:
    """The path and query of a URL: what the SDK's metric tags as `url`."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _udemy_errors(pages: Iterator[tuple[Query, Page]]) -> Iterator[tuple[Query, Page]]:
    """The reader's pages, its paging errors raised as the tap's fatal errors.

    The reader is generic; here its refusals become what the CLI reports in one line.
    """
    try:
        yield from pages
    except LinkLeavesListError as exc:
        raise UnsafeLinkError(str(exc)) from exc
    except ListChangedError as exc:
        msg = f"{exc}; run the sync again."
        raise UdemyFatalError(msg) from exc
    except PagingError as exc:
        raise UdemyFatalError(str(exc)) from exc
