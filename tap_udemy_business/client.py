"""The shared HTTP behaviour of every Udemy Business stream: auth, paging, retries, errors.

Streams (see `streams.py`) only declare an endpoint, keys and a schema file; everything
about talking to the API lives here, once.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import math
import random
import threading
import time
import typing as t
from collections import deque
from functools import cached_property
from http import HTTPStatus
from importlib.metadata import version
from urllib.parse import parse_qs, urlencode, urlsplit

import backoff
import requests
from singer_sdk import RESTStream, StreamSchema
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_udemy_business.auth import PinnedBasicAuth
from tap_udemy_business.concurrency import PageReader, Query
from tap_udemy_business.errors import (
    EndpointUnavailableError,
    ProxyConfigError,
    SyncAbortedError,
    TransportError,
    UdemyFatalError,
)
from tap_udemy_business.fast_path import PagedStream
from tap_udemy_business.pages import Page, parse_page
from tap_udemy_business.progress import Progress
from tap_udemy_business.rate_limit import governor_for
from tap_udemy_business.records import UNDOCUMENTED, Record, RecordChecker
from tap_udemy_business.schema_files import SCHEMAS
from tap_udemy_business.settings import (
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_RESPONSE_MB,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_SECONDS,
    DEFAULT_PAGE_SIZE,
    DEFAULT_REQUEST_TIMEOUT,
    base_url,
    is_loopback_host,
)
from tap_udemy_business.transport import Transport, describe_url

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from backoff.types import Details
    from singer_sdk.helpers.types import Context

USER_AGENT = f"tap-udemy-business/{version('tap-udemy-business')}"
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0
DEFAULT_RETRY_AFTER_SECONDS = 5.0
#: What a `Retry-After` that means nothing usable (negative, NaN, a date already past) is
#: taken for: a short wait, never none, so retries cannot burn their budget in a burst.
SHORT_RETRY_AFTER_SECONDS = 1.0
#: Statuses whose `Retry-After` is honoured: the rate limit, and "come back later".
RETRY_AFTER_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
#: A `Date` further than this from the local clock is a stale cache or a wrong clock.
MAX_CLOCK_SKEW = dt.timedelta(days=1)
#: The header by which a portal on loopback says its `Date` is a simulated calendar.
SIMULATED_CLOCK_HEADER = "X-Sandbox-Clock"
#: How much of an error body a message quotes (after redaction).
ERROR_EXCERPT_CHARS = 200
LOGGER = logging.getLogger("tap-udemy-business")


def utc_now() -> dt.datetime:
    """This machine's clock, in UTC (the default `UdemyConnection.clock`)."""
    return dt.datetime.now(dt.UTC)


class UdemyConnection:
    """What every stream of one tap shares: the transport, the credentials, the rate cap.

    Udemy's rate limit is per credential, so the cap on requests in flight is one object
    for all streams; one connection pool keeps connections alive across them.
    """

    def __init__(
        self, config: Mapping[str, t.Any], clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        """Build the transport and the pinned credentials from the (validated) config.

        Args:
            config: the tap's settings.
            clock: this machine's clock, which checks the API's (replaceable for tests).
        """
        self.base_url = base_url(config)
        self.organization_id = int(config["organization_id"])
        self.auth = PinnedBasicAuth(config["client_id"], config["client_secret"], self.base_url)
        self.concurrency = int(
            config.get("max_concurrent_requests") or DEFAULT_MAX_CONCURRENT_REQUESTS
        )
        self.limiter = governor_for(self.base_url, config["client_id"], self.concurrency)
        max_response_mb = int(config.get("max_response_mb") or DEFAULT_MAX_RESPONSE_MB)
        self.transport = Transport(
            self.base_url,
            self.auth,
            pool_size=max(10, self.concurrency * 2),
            user_agent=USER_AGENT,
            max_response_bytes=max_response_mb * 2**20,
        )
        self.server_date: dt.date | None = None
        self.clock = clock
        #: Only an API on this machine may declare a simulated calendar (the sandbox
        #: portal's, which tests advance); anywhere else a far-off date is a skewed clock.
        self._may_simulate = is_loopback_host(urlsplit(self.base_url).hostname or "")
        self._skew_reported = threading.Lock()

    def note_server_date(self, response: requests.Response) -> None:
        """Keep the date the latest answer gave as `server_date` (the probe report reads it).

        Reporting streams do not read it: each plans its windows from its own first
        answer's date (see `api_date`), so the plan cannot change while it is read.
        """
        day = self.api_date(response)
        if day is not None:
            self.server_date = day

    def local_date(self) -> dt.date:
        """Today (UTC) by this machine's clock: where reports end when the API says nothing."""
        return self.clock().astimezone(dt.UTC).date()

    def api_date(self, response: requests.Response) -> dt.date | None:
        """The API's own date by an answer's `Date` header: reporting ends the day before.

        The API's date decides because reporting data is the API's: its "yesterday" is
        the last whole day it holds. A date more than a day from this machine's clock
        (a 2001 date, a cache serving a 3-day-old answer) would move "yesterday" so far
        that a sync reads nothing and succeeds; such a date is not trusted: one warning
        per run, and this machine's clock decides.

        Returns:
            The date, or None when the answer has no readable `Date` header.
        """
        header = response.headers.get("Date")
        if not header:
            return None
        try:
            served = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        if served.tzinfo is None:
            served = served.replace(tzinfo=dt.UTC)
        local = self.clock()
        simulated = self._may_simulate and SIMULATED_CLOCK_HEADER in response.headers
        if simulated or abs(served - local) <= MAX_CLOCK_SKEW:
            return served.astimezone(dt.UTC).date()
        day = local.astimezone(dt.UTC).date()
        if self._skew_reported.acquire(blocking=False):  # never released: once per run
            LOGGER.warning(
                "The API's Date header (%s) is %.1f days from this machine's clock (%s): "
                "not trusted (a stale cache or a wrong clock); reporting ends the day before "
                "%s, by this machine's clock.",
                header,
                abs((served - local).total_seconds()) / 86400,
                local.strftime("%Y-%m-%d %H:%M UTC"),
                day.isoformat(),
            )
        return day


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

    @property
    def connection(self) -> UdemyConnection:
        """The connection shared by the tap's streams."""
        return t.cast("UdemyConnection", self._tap.connection)  # type: ignore[attr-defined]

    @property
    @override
    def url_base(self) -> str:
        """Root of the organization's API."""
        return (
            f"{self.connection.base_url}/api-2.0/organizations/{self.connection.organization_id}/"
        )

    @property
    def request_timeout(self) -> float:
        """Seconds to wait for one response (`request_timeout`, fractions allowed)."""
        return float(self.config.get("request_timeout") or DEFAULT_REQUEST_TIMEOUT)

    @cached_property
    def page_size(self) -> int:
        """Records per page (`page_size`, at most the API's 100)."""
        return int(self.config.get("page_size") or DEFAULT_PAGE_SIZE)

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
        first request is a one-record probe, and its record tells the right name.
        """
        classes = {record.get("_class") for record in page.records}
        if len(classes) != 1:
            return
        found = classes.pop()
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
        with self.connection.limiter.slot(self._cancel):
            response = self.connection.transport.get(url, self.request_timeout)
        self._answered.append(response)
        self.connection.note_server_date(response)
        self.validate_response(response)
        page = parse_page(response.content, describe_url(url))
        page.response = response
        self.connection.limiter.on_success()
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
        """
        self._cancel = threading.Event()
        reader = PageReader(
            self.fetch_page,
            self.connection.concurrency,
            self._cancel,
            read_ahead=self.connection.limiter.read_ahead,
        )
        self.progress = Progress(self.name, self.logger, units_total=total_units)
        previous: Query | None = None
        with self.get_http_request_counter() as request_counter:
            for query, page in reader.read(queries):
                if query is not previous:
                    previous = query
                    self.progress.expect(page.count)
                    self.progress.units_done = query.units
                request_counter.increment()
                self.log_request_durations()
                self.progress.page(len(page.records))
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
    def pages(self, context: Context | None) -> Iterator[list[Record]]:
        """Yield the stream's records a page at a time; a missing optional endpoint: none."""
        emitted = False
        try:
            for records in self.iter_pages(context):
                emitted = True
                yield records
        except EndpointUnavailableError as exc:
            if not self.optional or emitted:
                raise  # a 403/404 mid-read is no missing feature: expired credentials?
            self.logger.warning(
                "Skipping stream '%s': the organization has no access to it (%s)", self.name, exc
            )
        finally:
            self.log_request_durations()
            self._checker.report(self.name, self.logger)

    def iter_pages(self, context: Context | None) -> Iterator[list[Record]]:  # noqa: ARG002
        """Read the endpoint's whole list (the catalog endpoints are small).

        A one-record probe comes first, to learn the records' `_class`.
        """
        self.learn_record_class(self.fetch_page(self.query_url(page_size="1")))
        for _query, page in self.read_queries([Query(self.query_url())]):
            yield self.checked(page)

    @cached_property
    def _checker(self) -> RecordChecker:
        return RecordChecker(self.schema, key_fields=self.primary_keys)

    def checked(self, page: Page) -> list[Record]:
        """The page's records, fit for the stream's schema (see `records.py`)."""
        return self._checker.check(page.records, page.url)

    # Errors and retries

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Sort a response into fine, retriable (429, 5xx) or fatal, with a clear message."""
        status = response.status_code
        if status < HTTPStatus.MULTIPLE_CHOICES:
            return
        url = describe_url(response.url)
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            msg = f"{status} {response.reason} from {url}"
            raise RetriableAPIError(msg, response)
        raise self._fatal_error(status, url, response)

    def _fatal_error(self, status: int, url: str, response: requests.Response) -> UdemyFatalError:
        if status < HTTPStatus.BAD_REQUEST:
            return UdemyFatalError(f"{status} redirect from {url} refused: check api_url.")
        known = self._known_failure(status, url)
        if known is not None:
            return known
        return UdemyFatalError(self._redacted(f"{status} {response.reason} from {url}: ", response))

    def _known_failure(self, status: int, url: str) -> UdemyFatalError | None:
        """The message for a status that says what to check; None for any other 4xx."""
        if status == HTTPStatus.UNAUTHORIZED:
            return UdemyFatalError(
                f"401 Unauthorized from {url}: check client_id and client_secret."
            )
        if status == HTTPStatus.FORBIDDEN:
            return EndpointUnavailableError(
                f"403 Forbidden from {url}: the API credentials have expired or lack the "
                "scope for this endpoint; regenerate them on the portal's LMS integration page."
            )
        if status == HTTPStatus.NOT_FOUND and _page_number(url) > 1:
            return UdemyFatalError(
                f"404 Not Found from {url}: the list shrank while it was read (fewer pages "
                "than its count said); run the sync again."
            )
        if status == HTTPStatus.NOT_FOUND:
            return EndpointUnavailableError(
                f"404 Not Found from {url}: check organization_id and portal_name (or api_url)."
            )
        if status == HTTPStatus.PROXY_AUTHENTICATION_REQUIRED:
            proxy = self.connection.transport.proxy
            named = f" {proxy.describe()}" if proxy else ""
            return ProxyConfigError(
                f"407 Proxy Authentication Required for {url} from the proxy{named}: give "
                "its user and password in the proxy URL (http://user:password@host:port)."
            )
        return None

    def _redacted(self, prefix: str, response: requests.Response) -> str:
        """`prefix` and the start of the body, with every shape of the credentials blanked.

        A server or proxy may echo the request, its Authorization header included; the
        text is redacted whole before it is cut, so no part of a secret survives the cut.
        """
        text = " ".join(f"{prefix}{response.text[: ERROR_EXCERPT_CHARS * 10]}".split())
        redacted = self.connection.auth.redact(text)
        return redacted[: len(prefix) + ERROR_EXCERPT_CHARS]

    @override
    def request_decorator(self, func: Callable[..., t.Any]) -> Callable[..., t.Any]:
        """Retry transient failures, bounded by `max_retries` and `max_retry_seconds`."""
        decorated: Callable[..., t.Any] = backoff.on_exception(
            self.backoff_wait_generator,
            (
                ConnectionResetError,
                RetriableAPIError,
                requests.exceptions.Timeout,
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ),
            max_tries=self.backoff_max_tries,
            max_time=float(self.config.get("max_retry_seconds") or DEFAULT_MAX_RETRY_SECONDS),
            on_backoff=self.backoff_handler,
            jitter=None,
            logger=None,
        )(func)
        return decorated

    @override
    def backoff_max_tries(self) -> int:
        """One try plus `max_retries` retries."""
        retries = self.config.get("max_retries")
        return 1 + int(DEFAULT_MAX_RETRIES if retries is None else retries)

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """Wait `Retry-After` on 429 (and slow down); otherwise exponential with jitter."""
        attempt = 0
        exception = yield 0.0
        while True:
            attempt += 1
            exception = yield self._retry_wait(exception, attempt)

    def _retry_wait(self, exception: BaseException | None, attempt: int) -> float:
        if self._cancel.is_set():
            return 0.0  # the read already failed: the next try gives up at once
        response = getattr(exception, "response", None)
        if response is not None and (
            response.status_code == HTTPStatus.TOO_MANY_REQUESTS
            or (
                response.status_code in RETRY_AFTER_STATUSES and response.headers.get("Retry-After")
            )
        ):
            # Never wait past the retry budget, whatever the API asks.
            budget = float(self.config.get("max_retry_seconds") or DEFAULT_MAX_RETRY_SECONDS)
            wait = min(retry_after_seconds(response.headers.get("Retry-After")), budget)
            self.connection.limiter.on_throttle(wait)
            return wait
        ceiling: float = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto

    @override
    def backoff_handler(self, details: Details) -> None:
        """Log one line per retry: what failed, where, and how long until the next try."""
        exception = details.get("exception")
        args = details.get("args") or ()
        url = describe_url(str(args[0])) if args else self.path
        if isinstance(exception, RetriableAPIError) and exception.response is not None:
            reason = f"{exception.response.status_code} {exception.response.reason}"
        elif isinstance(exception, TransportError):
            reason = exception.reason
        else:
            reason = type(exception).__name__ if exception else "error"
        self.progress.retry()
        self.logger.warning(
            "Retrying %s after %s (try %d), waiting %.1f s",
            url,
            reason,
            details.get("tries", 0),
            details.get("wait", 0.0),
        )


def _path_of(url: str) -> str:
    """The path and query of a URL: what the SDK's metric tags as `url`."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _page_number(url: str) -> int:
    """The `page` parameter of a URL (1 when absent or odd)."""
    values = parse_qs(urlsplit(url).query).get("page", ["1"])
    return int(values[0]) if values[0].isdigit() else 1


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float:
    """Parse `Retry-After`: seconds, or an HTTP date.

    Absent or unreadable: the default wait. Negative, NaN, infinite, or a date already
    past: a short wait, never zero (nine retries with no gap would fail a sync in a
    fraction of a second with most of the retry budget unused).

    Args:
        value: the header, as sent.
        now: the clock an HTTP date is measured from (injectable for tests).
    """
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER_SECONDS
        return seconds if seconds > 0 else SHORT_RETRY_AFTER_SECONDS
    return seconds if math.isfinite(seconds) and seconds >= 0 else SHORT_RETRY_AFTER_SECONDS


logging.getLogger("backoff").addHandler(logging.NullHandler())
