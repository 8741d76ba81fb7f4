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
"""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property

from tap_udemy_business.client import UdemyStream
from tap_udemy_business.concurrency import Query
from tap_udemy_business.errors import UdemyFatalError
from tap_udemy_business.keys import LEARNER_KEY, LearnerKeys
from tap_udemy_business.settings import DEFAULT_LOOKBACK_DAYS

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

    from tap_udemy_business.pages import Page
    from tap_udemy_business.records import Record

#: Udemy for Business started in 2015: "the whole history" starts no earlier.
HISTORY_START = dt.date(2015, 1, 1)
#: Days per query of the endpoints with a row per item (user_progress).
BLOCK_DAYS = 31
#: Windows per one-record probe that skips an empty stretch of history: about a month of
#: days, a quarter of weeks, a year of months or of blocks.
PROBE_GROUPS = {"day": 31, "week": 13, "month": 12, "block": 12}


class ReportingStream(UdemyStream):
    """An analytics endpoint, synced window by window with a `from_date` bookmark."""

    replication_key = "from_date"
    #: Windows are read in order, so the bookmark can follow every record: a killed run
    #: resumes from the window it was in. The lookback re-reads windows before the
    #: bookmark, which the SDK's sort check would take for disorder, hence `check_sorted` off.
    is_sorted = True
    check_sorted = False
    tap_added_fields = UdemyStream.tap_added_fields | {"from_date", "to_date", LEARNER_KEY}
    #: Fields that tell anonymized learners apart when no learner id is sent (see `keys.py`).
    learner_facts: t.ClassVar[tuple[str, ...]] = ("user_external_id", "lms_user_id")
    #: Whether the endpoint sums activity over the requested period (then the period is
    #: part of what a row means, set by `aggregate_span`); else it has a row per item
    #: whatever the period, and is read in blocks of `BLOCK_DAYS` days.
    aggregate: t.ClassVar[bool] = True

    @property
    def key_sources(self) -> frozenset[str]:
        """What `learner_key` is built from: always requested, whatever the catalog says."""
        return frozenset({"user_email", "user_id", *self.learner_facts})

    @cached_property
    def span(self) -> str:
        """`day`, `week` or `month` for the aggregate endpoints; `block` for the others."""
        return str(self.config.get("aggregate_span") or "day") if self.aggregate else "block"

    @cached_property
    def _learner_keys(self) -> LearnerKeys:
        others = [k for k in self.primary_keys if k not in self.tap_added_fields]
        return LearnerKeys(others, self.learner_facts)

    def iter_pages(self, context: Context | None) -> Iterator[list[Record]]:
        """Yield the pages of every window from the starting day to yesterday, in order."""
        first = self.first_day(context)
        total_days = (self.last_day() - first).days + 1
        previous = None
        seen: dict[tuple[t.Any, ...], int] = {}
        for query, page in self.read_queries(self._queries(first), total_days):
            window_start, window_end = t.cast("tuple[str, str]", query.tag)
            if query is not previous:
                if previous is not None:
                    # Every record of the previous window has been emitted and counted in
                    # the bookmark: say so now, so a killed run resumes from this window.
                    self._write_state_message()
                previous = query
                seen = {}
            self.stamp(page, (window_start, window_end), seen)
            yield self.checked(page)

    def stamp(
        self, page: Page, window: tuple[str, str], seen: dict[tuple[t.Any, ...], int]
    ) -> None:
        """Add what the tap derives to a page's records: their window and `learner_key`.

        Args:
            page: a page of the window's request.
            window: the request's `from_date` and `to_date`.
            seen: the keys given so far in this request (shared by its pages).
        """
        for record in page.records:
            record["from_date"], record["to_date"] = window
        self._learner_keys.stamp(page.records, seen, window[0])

    def first_day(self, context: Context | None) -> dt.date:
        """The bookmark minus `lookback_days`, not before `start_date`; else `start_date`.

        Rounded down to the start of its window, so a window is always read whole and
        keeps its `from_date` (its key) whichever run reads it.
        """
        start = _day(self.config.get("start_date")) or HISTORY_START
        value = self.get_starting_replication_key_value(context)
        try:
            bookmark = _day(value)
        except ValueError:
            msg = (
                f"The state's bookmark for '{self.name}' is not a date ({value!r}): "
                "correct it or drop this stream from the state."
            )
            raise UdemyFatalError(msg) from None
        if bookmark is None:
            return window_start(start, self.span)
        last = self.last_day()
        if bookmark > last and not getattr(self, "_warned_future_bookmark", False):
            # The tap never writes a bookmark past the last day it read, so this one was
            # edited or came from a clock gone wrong; left alone, every run reads nothing.
            self._warned_future_bookmark = True
            self.logger.warning(
                "Stream '%s': the bookmark %s is after the last day this run can read (%s, "
                "yesterday by the API's clock or end_date): nothing is read until then. "
                "Correct the bookmark, or drop this stream from the state, if it is wrong.",
                self.name,
                bookmark.isoformat(),
                last.isoformat(),
            )
        lookback = self.config.get("lookback_days")
        days = DEFAULT_LOOKBACK_DAYS if lookback is None else int(lookback)
        return window_start(max(start, bookmark - dt.timedelta(days=days)), self.span)

    def last_day(self) -> dt.date:
        """Yesterday by the API's clock (the daily refresh), or `end_date` if earlier."""
        today = self.connection.server_date or dt.datetime.now(dt.timezone.utc).date()
        yesterday = today - dt.timedelta(days=1)
        end = _day(self.config.get("end_date"))
        return min(end, yesterday) if end else yesterday

    def _count(self, first: dt.date, last: dt.date) -> int:
        """How many rows a period holds, from a one-record page.

        The page also tells the API's date and the records' `_class`.
        """
        url = self.query_url(from_date=first.isoformat(), to_date=last.isoformat(), page_size="1")
        page = self.fetch_page(url)
        self.learn_record_class(page)
        return page.count

    def _query(self, start: dt.date, end: dt.date, first: dt.date) -> Query:
        bounds = (start.isoformat(), end.isoformat())
        url = self.query_url(from_date=bounds[0], to_date=bounds[1])
        return Query(url, tag=bounds, units=(end - first).days + 1)

    def _queries(self, first: dt.date) -> Iterator[Query]:
        """One query per window with data, up to yesterday by the API's clock.

        The first request, a one-record probe of the whole range, tells the API's date
        (hence where reporting data ends), the records' `_class` (hence the `fields[...]`
        key) and whether there is anything to read at all. Empty stretches of history
        (before the organization's first learner) are then skipped a group of windows at a
        time, one probe a group.
        """
        provisional_last = self.last_day()
        if first > provisional_last:
            return
        empty = self._count(first, provisional_last) == 0
        last = self.last_day()
        if empty and last <= provisional_last:
            return
        spans = list(windows(first, last, self.span))
        size = PROBE_GROUPS[self.span]
        for i in range(0, len(spans), size):
            group = spans[i : i + size]
            if len(group) == len(spans) or self._count(group[0][0], group[-1][1]) > 0:
                yield from (self._query(start, end, first) for start, end in group)


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


def _day(value: t.Any) -> dt.date | None:
    if value in (None, ""):
        return None
    return dt.date.fromisoformat(str(value)[:10])
