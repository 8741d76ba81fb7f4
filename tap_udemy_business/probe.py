"""`tap-udemy-business-probe`: a first look at a portal, before any sync.

The tap was written from sources that disagree about what the API sends (see
`api-evidence.md` in the shared reference): which `_class` names the `fields[...]`
parameter, whether learner rows carry an id, how values are typed, whether the date
bounds are inclusive. This reads one page of each endpoint, with the tap's own
session (its auth, https-only check, pinned credentials, retries and errors), in at
most `MAX_REQUESTS` requests, and says which of the tap's assumptions this portal meets.
It prints names, JSON types and counts only (see `probe_report.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import email.utils
import json
import logging
import re
import sys
import typing as t
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from typing_extensions import override

from tap_udemy_business.errors import EndpointUnavailableError, UdemyFatalError, UnsafeLinkError
from tap_udemy_business.probe_report import (
    Bounds,
    EndpointReport,
    Report,
    RequestInfo,
    analyse,
    assess,
    judge_bounds,
    render_json,
    render_text,
)
from tap_udemy_business.reporting import ReportingStream
from tap_udemy_business.streams import STREAM_TYPES
from tap_udemy_business.tap import TapUdemyBusiness
from tap_udemy_business.transport import Transport

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from tap_udemy_business.client import UdemyStream
    from tap_udemy_business.list_page import Page

MAX_REQUESTS = 30
WINDOW_DAYS = 30
BOUNDS_STREAMS = ("user_progress", "user_course_activity")
_RATE_LIMIT_HEADER = re.compile(r"retry-after|x-ratelimit-.*|ratelimit-.*", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")


class ProbeError(Exception):
    """Ends the probe with one line: the config is unusable or the API cannot be reached."""


class BudgetSpentError(UdemyFatalError):
    """A request beyond the probe's budget; fatal, so the tap's retries stop at once."""


@dataclass(frozen=True)
class Answer:
    """What the probe keeps of an answer: no body, no header value (the date as an offset)."""

    status: int
    header_names: tuple[str, ...]
    clock_offset_hours: float | None


class RecordingTransport(Transport):
    """The tap's transport, counted and watched: every answer's status and header names.

    It wraps the tap's own pool (so no `super().__init__()`, which would open another),
    and sees the answers the tap retries, such as a 429's `Retry-After`.
    """

    def __init__(self, inner: Transport, budget: int) -> None:
        """Wrap `inner`; refuse any request past `budget`."""
        self._inner = inner
        self._budget = budget
        self.answers: list[Answer] = []
        self.sent = 0

    @override
    def get(self, url: str, timeout: float) -> requests.Response:
        """GET through the tap's transport, within the budget, noting the answer."""
        if self.sent >= self._budget:
            msg = f"not sent: the probe's budget of {self._budget} requests is spent"
            raise BudgetSpentError(msg)
        self.sent += 1
        response = self._inner.get(url, timeout)
        self.answers.append(_answer(response))
        return response


def _answer(response: requests.Response) -> Answer:
    offset = None
    header = response.headers.get("Date")
    if header:
        try:
            api_time = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            api_time = None
        if api_time is not None and api_time.tzinfo is not None:
            now = dt.datetime.now(dt.UTC)
            offset = round((api_time - now).total_seconds() / 3600, 1)
    return Answer(response.status_code, tuple(response.headers), offset)


def scrub(text: str) -> str:
    """`text` with every URL's query reduced to its parameter names (values may be data)."""

    def names_only(match: re.Match[str]) -> str:
        url = match.group(0)
        tail = url[len(url.rstrip(":.,;)")) :]
        parts = urlsplit(url.removesuffix(tail) if tail else url)
        names = "&".join(name for name, _ in parse_qsl(parts.query, keep_blank_values=True))
        host = parts.netloc.rpartition("@")[2]  # never user info
        base = f"{parts.scheme}://{host}{parts.path}"
        return (f"{base}?{names}" if names else base) + tail

    return _URL.sub(names_only, text)


@dataclass
class Fetched:
    """One request's outcome: a page, or the error and the status that ended it."""

    info: RequestInfo
    page: Page | None = None
    error: Exception | None = None


class Prober:
    """Reads one page of each endpoint with the tap's streams, and the bound counts."""

    def __init__(self, tap: TapUdemyBusiness) -> None:
        """Route the tap's session through a counting, watching transport."""
        session = tap.api_session
        self._session = session
        self._transport = RecordingTransport(session.transport, MAX_REQUESTS)
        session.transport = self._transport
        order: dict[type, int] = {stream_type: n for n, stream_type in enumerate(STREAM_TYPES)}
        streams = sorted(tap.streams.values(), key=lambda stream: order[type(stream)])
        self._streams = {stream.name: t.cast("UdemyStream", stream) for stream in streams}

    def run(self) -> Report:
        """Probe every endpoint, then the bounds; raise `ProbeError` if none could be read."""
        streams = list(self._streams.values())
        endpoints = [self.endpoint(s) for s in streams if not isinstance(s, ReportingStream)]
        yesterday = self._today() - dt.timedelta(days=1)
        window = {
            "from_date": (yesterday - dt.timedelta(days=WINDOW_DAYS - 1)).isoformat(),
            "to_date": yesterday.isoformat(),
        }
        endpoints += [self.endpoint(s, window) for s in streams if isinstance(s, ReportingStream)]
        if not any(e.outcome == "read" for e in endpoints):
            msg = f"no endpoint could be read: {endpoints[0].error}"
            raise ProbeError(msg)
        answers = self._transport.answers
        report = Report(
            requests_made=0,
            max_requests=MAX_REQUESTS,
            endpoints=endpoints,
            bounds=self.bounds(endpoints),
            clock_offset_hours=next(
                (a.clock_offset_hours for a in answers if a.clock_offset_hours is not None), None
            ),
            rate_limit_headers=sorted(
                {n for a in answers for n in a.header_names if _RATE_LIMIT_HEADER.fullmatch(n)}
            ),
        )
        report.requests_made = self._transport.sent
        report.assumptions = assess(report)
        return report

    def _today(self) -> dt.date:
        """The API's date (its `Date` header), else this machine's: where reports end."""
        return self._session.server_date or dt.datetime.now(dt.UTC).date()

    def endpoint(self, stream: UdemyStream, window: dict[str, str] | None = None) -> EndpointReport:
        """Page 1 with `fields[<guess>]`, then with `fields[<_class>]` if the guess was off."""
        guess = stream.record_class
        stream.fields_type = guess
        params = {"page_size": "100", **(window or {})}
        report = EndpointReport(stream.name, stream.path, guess)
        first = self.fetch(stream, stream.query_url(**params))
        report.requests.append(first.info)
        report.status = first.info.status
        if first.page is None:
            _failed(report, first)
            return report
        report.envelope_ok = True
        report.count, report.has_next = first.page.count, first.page.next_url is not None
        pages = [first.page.records]
        stream.learn_record_class(first.page)
        if stream.fields_type != guess:
            second = self.fetch(stream, stream.query_url(**params))
            report.requests.append(second.info)
            if second.page is not None:
                pages.append(second.page.records)
            else:
                report.error = f"the second request failed: {_one_line(second.error)}"
        analyse(report, stream, pages)
        return report

    def bounds(self, endpoints: list[EndpointReport]) -> Bounds:
        """Counts of [D, D], [D+1, D+1] and [D, D+1] for D the day before yesterday."""
        read = {e.stream for e in endpoints if e.outcome == "read"}
        name = next((n for n in BOUNDS_STREAMS if n in read), None)
        if name is None:
            return Bounds(None, reason="neither user_progress nor user_course_activity was read")
        stream = self._streams[name]
        day = self._today() - dt.timedelta(days=2)
        counts = []
        for first, last in ((0, 0), (1, 1), (0, 1)):
            start, end = day + dt.timedelta(days=first), day + dt.timedelta(days=last)
            url = stream.query_url(
                page_size="1", from_date=start.isoformat(), to_date=end.isoformat()
            )
            fetched = self.fetch(stream, url)
            if fetched.page is None:
                return Bounds(name, reason=f"a request failed: {_one_line(fetched.error)}")
            counts.append(fetched.page.count)
        return judge_bounds(name, *counts)

    def fetch(self, stream: UdemyStream, url: str) -> Fetched:
        """One page through the tap's own `fetch_page`; what cannot reach the API ends all."""
        info = RequestInfo([name for name, _ in parse_qsl(urlsplit(url).query)], None)
        before = len(self._transport.answers)
        try:
            page = stream.fetch_page(url)
        except UnsafeLinkError as exc:
            raise ProbeError(_one_line(exc)) from None
        except (FatalAPIError, RetriableAPIError, requests.RequestException) as exc:
            if isinstance(exc, requests.RequestException) and not self._transport.answers:
                raise ProbeError(_one_line(exc)) from None  # the API never answered
            answers = self._transport.answers[before:]
            info.status = answers[-1].status if answers else None
            if info.status == HTTPStatus.UNAUTHORIZED or (
                info.status is not None and 300 <= info.status < 400  # noqa: PLR2004
            ):
                raise ProbeError(_one_line(exc)) from None
            return Fetched(info, error=exc)
        info.status = page.response.status_code if page.response is not None else None
        return Fetched(info, page)


def _failed(report: EndpointReport, fetched: Fetched) -> None:
    """A 403/404 is a feature the portal lacks; a 2xx that did not parse, a bad envelope."""
    report.error = _one_line(fetched.error)
    status = fetched.info.status
    if isinstance(fetched.error, EndpointUnavailableError):
        report.outcome = "not available"
        return
    report.outcome = "failed"
    if status is not None and status < HTTPStatus.MULTIPLE_CHOICES:
        report.envelope_ok = False


def _one_line(exc: BaseException | None) -> str:
    if isinstance(exc, requests.RequestException):
        url = exc.request.url if exc.request is not None and exc.request.url else "the API"
        return scrub(f"could not get a response from {url} ({type(exc).__name__})")
    text = str(exc).splitlines()[0] if exc is not None and str(exc) else type(exc).__name__
    prefix = "gave up after retries: " if isinstance(exc, RetriableAPIError) else ""
    return scrub(prefix + text)


def load_tap(path: str) -> TapUdemyBusiness:
    """The tap, configured and validated exactly as a sync would be.

    Raises:
        ProbeError: the file cannot be read, is not a JSON object, or fails validation.
    """
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read the config file {path}: {exc.strerror or type(exc).__name__}"
        raise ProbeError(msg) from None
    except ValueError:
        msg = f"the config file {path} is not valid JSON"
        raise ProbeError(msg) from None
    if not isinstance(config, dict):
        msg = f"the config file {path} must hold a JSON object"
        raise ProbeError(msg)
    try:
        with _quiet(logging.getLogger(TapUdemyBusiness.name)):
            return TapUdemyBusiness(config=config, parse_env_config=True, validate_config=True)
    except ConfigValidationError as exc:
        msg = f"{exc}: {'; '.join(exc.errors)}"
        raise ProbeError(msg) from None


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Hold back the SDK's own "Config validation failed" line: the error says it all."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Probe the portal of `--config`; 0 if the API answered, 1 (one line) if not."""
    parser = argparse.ArgumentParser(
        prog="tap-udemy-business-probe",
        description="Check what a Udemy Business portal sends against the tap's assumptions.",
    )
    parser.add_argument("--config", required=True, help="the tap's config JSON file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        tap = load_tap(args.config)
    except ProbeError as exc:
        print(f"tap-udemy-business-probe: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    try:
        report = Prober(tap).run()
    except ProbeError as exc:
        print(f"tap-udemy-business-probe: {tap.redact(str(exc))}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        tap.stop_sandbox()
    print(tap.redact(render_json(report) if args.json else render_text(report)))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
