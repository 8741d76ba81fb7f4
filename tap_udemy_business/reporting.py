"""Reporting streams: learner activity read in windows of days, incrementally.

Udemy's analytics endpoints filter by `from_date`/`to_date`. The aggregate endpoints
(user activity, user course activity, user path activity) sum activity over exactly that
period, so the period is part of what a row means: the tap asks for one window per
request (`aggregate_span`: a UTC day by default, an ISO week or a calendar month) and
stamps each record with the window it was asked for (`from_date`, `to_date`). Windows are
aligned to the calendar, so re-reading one (the lookback) yields the same keys, which an
upserting target merges, and the bookmark (`from_date`) moves forward a window at a time.
user_progress has a row per learner and item whatever the period, so it is read in blocks
of 31 days: fewer, fuller pages, with the block as its window.

Each read is planned before the rest of its pages are requested (`ReportingStream.plan`):
its first window's first page comes alone and tells the API's date (where reporting ends)
and the records' `_class`, then one one-record probe per group of windows skips empty
stretches of history, and the windows left are a fixed, ordered `WindowPlan` handed to the
page reader whole, that first page included (it is not asked for again).
"""

from __future__ import annotations

import datetime as dt
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

from typing_extensions import override

from tap_udemy_business.client import UdemyStream
from tap_udemy_business.concurrency import Query
from tap_udemy_business.errors import UdemyFatalError
from tap_udemy_business.keys import LEARNER_KEY, LearnerKeys, stamp_window
from tap_udemy_business.settings import parse_day

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from singer_sdk.helpers.types import Context

    from tap_udemy_business.fast_path import PreparedPage
    from tap_udemy_business.list_page import Page
    from tap_udemy_business.records import Record

#: A window: its first and last day, both included.
Window = tuple[dt.date, dt.date]

#: Udemy for Business started in 2015: "the whole history" starts no earlier.
HISTORY_START = dt.date(2015, 1, 1)
#: Days per query of the endpoints with a row per item (user_progress).
BLOCK_DAYS = 31
#: Windows per one-record probe that skips an empty stretch of history: about a month of
#: days, a quarter of weeks, a year of months or of blocks.
PROBE_GROUPS = {"day": 31, "week": 13, "month": 12, "block": 12}


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """What one read of a reporting stream covers, settled before its first page is read."""

    #: The first day of the read (a window start: the bookmark minus the lookback).
    first: dt.date
    #: The last day: yesterday by the API's date (from the read's first answer), or
    #: `end_date` if earlier.
    last: dt.date
    #: The windows to read, in order: every window from `first` to `last` save those
    #: in stretches a probe found empty.
    windows: tuple[Window, ...]
    #: A window whose first page was read while planning, and that page: read on from.
    opening: tuple[Window, Page] | None = None


class ReportingStream(UdemyStream):
    """An analytics endpoint, synced window by window with a `from_date` bookmark."""

    replication_key = "from_date"
    #: Windows are read in order, so the bookmark can follow every record: a killed run
    #: resumes from the window it was in. The SDK's sort check (`check_sorted`, on by
    #: default) refuses any record below the bookmark; the windows a lookback reads again
    #: leave the bookmark alone (see `PagedStream._increment_stream_state`), so it never
    #: moves backwards and the check stays on.
    is_sorted = True
    #: `stamp` gives every record of a page its request's `from_date`: a page is one window.
    one_bookmark_value_per_page = True
    tap_added_fields = UdemyStream.tap_added_fields | {"from_date", "to_date", LEARNER_KEY}
    #: Fields that tell anonymized learners apart when no learner id is sent (see `keys.py`).
    learner_facts: t.ClassVar[tuple[str, ...]] = ("user_external_id", "lms_user_id")
    #: Whether the endpoint sums activity over the requested period (then the period is
    #: part of what a row means, set by `aggregate_span`); else it has a row per item
    #: whatever the period, and is read in blocks of `BLOCK_DAYS` days.
    aggregate: t.ClassVar[bool] = True

    @property
    @override
    def key_sources(self) -> frozenset[str]:
        """What `learner_key` is built from: always requested, whatever the catalog says."""
        return frozenset({"user_email", "user_id", *self.learner_facts})

    @cached_property
    def span(self) -> str:
        """`day`, `week` or `month` for the aggregate endpoints; `block` for the others."""
        return str(self.config["aggregate_span"]) if self.aggregate else "block"

    @cached_property
    def _learner_keys(self) -> LearnerKeys:
        spec = t.cast("dict[str, list[str]]", self.learner_spec())
        return LearnerKeys(spec["keys"], spec["facts"])

    @override
    def read_pages(self, context: Context | None) -> Iterator[list[Record] | PreparedPage]:
        """Yield the pages of every window of the read's plan, in order."""
        queries = self.queries(self.plan(context))
        previous = None
        seen: dict[tuple[t.Any, ...], int] = {}
        number = 0
        for query, page in self.read_queries(queries, total_units=len(queries)):
            starts_query = query is not previous and previous is not None
            if query is not previous:
                previous = query
                seen = {}
                number = next(self._queries)
            window = t.cast("tuple[str, str]", query.window)
            if page.held is not None:  # stamped and checked by the worker, as it is written
                yield self.held(page, window, number, starts_query=starts_query)
                continue
            if starts_query:
                # Every record of the previous window has been emitted and counted in the
                # bookmark: say so now, so a killed run resumes from this window.
                self._write_state_message()
            self.stamp(page, window, seen)
            yield self.checked(page)

    @override
    def learner_spec(self) -> dict[str, list[str]] | None:
        """The key fields besides the learner's, and the facts telling anonymized ones apart."""
        others = [k for k in self.primary_keys if k not in self.tap_added_fields]
        return {"keys": others, "facts": list(self.learner_facts)}

    def stamp(
        self, page: Page, window: tuple[str, str], seen: dict[tuple[t.Any, ...], int]
    ) -> None:
        """Add what the tap derives to a page's records: their window and `learner_key`.

        Args:
            page: a page of the window's request.
            window: the request's `from_date` and `to_date`.
            seen: the keys given so far in this request (shared by its pages).
        """
        stamp_window(page.records, window, seen, self._learner_keys)

    def plan(self, context: Context | None) -> WindowPlan:
        """Decide every window of this read before the rest of its pages are requested.

        The first request is the first window's first page (by this machine's clock; a
        one-record probe of yesterday if the read starts later). Its answer tells the
        API's date (hence the last day of reporting data) and the records' `_class`
        (hence the `fields[...]` key), and the read goes on from it. Empty stretches of
        history (before the organization's first learner) are then skipped a group of
        windows at a time, one probe a group, the probes as concurrent as the reads; the
        first group needs none when its first window has rows. Nothing decided here
        changes while the plan is read.
        """
        self._cancel = threading.Event()  # this read's own: a failed earlier one is over
        bookmark = self.bookmark_day(context)
        first = self.first_day(bookmark)
        end = parse_day(self.config.get("end_date"))
        local_last = last_day(self.api_session.local_date(), end)
        guessed = next(windows(first, local_last, self.span), None)
        url: str | None = None
        if guessed is None:
            page = self._probe(local_last, local_last)
        else:
            page, url = self.first_page(lambda: self.window_url(guessed))
        api_today = None if page.response is None else self.api_session.api_date(page.response)
        last = last_day(api_today or self.api_session.local_date(), end)
        if bookmark is not None and bookmark > last:
            # The tap never writes a bookmark past the last day it read, so this one was
            # edited or came from a clock gone wrong; left alone, every run reads nothing.
            self.logger.warning(
                "Stream '%s': the bookmark %s is after the last day this run can read (%s, "
                "yesterday by the API's clock or end_date): nothing is read until then. "
                "Correct the bookmark, or drop this stream from the state, if it is wrong.",
                self.name,
                bookmark.isoformat(),
                last.isoformat(),
            )
        spans = list(windows(first, last, self.span))
        if not spans:
            return WindowPlan(first, last, ())
        opening = (spans[0], page) if url and spans[0] == guessed else None
        size = PROBE_GROUPS[self.span]
        groups = [(spans[i : i + size], True) for i in range(0, len(spans), size)]
        if opening is not None:
            # The opening window is read already: left out if empty, when the rest of its
            # group may be empty history too and is probed; else that rest is read as is.
            head, *rest = groups[0][0]
            empty = not page.size and page.next_url is None
            groups[:1] = [([] if empty else [head], False), *([(rest, empty)] if rest else [])]
            opening = None if empty else opening
        elif len(spans) == 1:
            groups = [(spans, False)]  # reading one window costs what probing it would
        probed = [group for group, probe in groups if probe]
        counts = iter(self._counts([(group[0][0], group[-1][1]) for group in probed]))
        kept = tuple(
            window for group, probe in groups if not probe or next(counts) for window in group
        )
        return WindowPlan(first, last, kept, opening)

    def bookmark_day(self, context: Context | None) -> dt.date | None:
        """The day the state's bookmark names (None without one).

        Raises:
            UdemyFatalError: the bookmark is no date.
        """
        value = self.get_starting_replication_key_value(context)
        try:
            return parse_day(value)
        except ValueError:
            msg = (
                f"The state's bookmark for '{self.name}' is not a date ({value!r}): "
                "correct it or drop this stream from the state."
            )
            raise UdemyFatalError(msg) from None

    def first_day(self, bookmark: dt.date | None) -> dt.date:
        """The bookmark minus `lookback_days`, not before `start_date`; else `start_date`.

        Rounded down to the start of its window, so a window is always read whole and
        keeps its `from_date` (its key) whichever run reads it.
        """
        start = parse_day(self.config.get("start_date")) or HISTORY_START
        if bookmark is None:
            return window_start(start, self.span)
        days = int(self.config["lookback_days"])
        return window_start(max(start, bookmark - dt.timedelta(days=days)), self.span)

    def queries(self, plan: WindowPlan) -> tuple[Query, ...]:
        """One query per window of the plan, in order, each knowing the windows before it.

        The window read while planning starts from the page read then.
        """
        opening, page = plan.opening or (None, None)
        return tuple(
            Query(
                self.window_url(window),
                window=(window[0].isoformat(), window[1].isoformat()),
                units=done,
                page=page if window == opening else None,
            )
            for done, window in enumerate(plan.windows)
        )

    def window_url(self, window: Window) -> str:
        """The first-page URL of a window: `from_date` and `to_date` its first and last day."""
        return self.query_url(from_date=window[0].isoformat(), to_date=window[1].isoformat())

    def _probe(self, first: dt.date, last: dt.date) -> Page:
        """A one-record page of a period: its `count`, the records' `_class`, a `Date`."""
        url = self.query_url(from_date=first.isoformat(), to_date=last.isoformat(), page_size="1")
        page = self.fetch_page(url)
        self.learn_record_class(page)
        return page

    def _counts(self, periods: Sequence[Window]) -> list[int]:
        """How many rows each period holds, by one-record probes sent concurrently.

        Raises:
            Exception: the first probe that failed (after its retries); the others give
                up at once.
        """
        with ThreadPoolExecutor(
            max_workers=self.api_session.concurrency, thread_name_prefix="probe"
        ) as pool:
            futures = [pool.submit(self._probe, first, last) for first, last in periods]
            try:
                return [future.result().count for future in futures]
            except BaseException:
                self._cancel.set()
                for future in futures:
                    future.cancel()
                raise


def window_start(day: dt.date, span: str) -> dt.date:
    """The first day of the window of `span` that holds `day`."""
    if span == "week":
        return day - dt.timedelta(days=day.weekday())
    if span == "month":
        return day.replace(day=1)
    return day


def window_end(start: dt.date, span: str) -> dt.date:
    """The last day of the window of `span` that starts on `start`."""
    if span == "week":
        return start + dt.timedelta(days=6)
    if span == "month":
        following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)
    if span == "block":
        return start + dt.timedelta(days=BLOCK_DAYS - 1)
    return start


def windows(first: dt.date, last: dt.date, span: str) -> Iterator[tuple[dt.date, dt.date]]:
    """Consecutive windows of `span` from `first` (a window start) to `last`, the last cut."""
    start = first
    while start <= last:
        end = min(window_end(start, span), last)
        yield start, end
        start = end + dt.timedelta(days=1)


def last_day(today: dt.date, end_date: dt.date | None) -> dt.date:
    """The last day a read can hold: the day before `today`, or `end_date` if earlier.

    The API's daily refresh holds whole days up to yesterday, by the API's own date.
    """
    yesterday = today - dt.timedelta(days=1)
    return min(end_date, yesterday) if end_date else yesterday
