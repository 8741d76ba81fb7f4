"""Reporting streams: learner activity read in windows of days, incrementally.

Udemy's analytics endpoints filter by `from_date`/`to_date`. The aggregate endpoints
(user activity, user course activity, user path activity) sum activity over exactly that
period, so the period is part of what a row means: the tap asks for one day per request
and stamps each record with the day it was asked for (`from_date`, `to_date`). A day is
then a stable unit: re-reading it (the lookback) yields the same keys, which an upserting
target merges, and the bookmark (`from_date`) can move forward one day at a time.
user_progress has a row per learner and item whatever the period, so it is read in blocks
of 31 days: fewer, fuller pages, with the block as its window.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_udemy_business.client import UdemyStream
from tap_udemy_business.concurrency import Query
from tap_udemy_business.errors import UdemyFatalError
from tap_udemy_business.settings import DEFAULT_LOOKBACK_DAYS

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

    from tap_udemy_business.records import Record

#: Udemy for Business started in 2015: "the whole history" starts no earlier.
HISTORY_START = dt.date(2015, 1, 1)
#: Empty stretches of history are skipped a block at a time, with a one-record probe;
#: block-window streams read one block per query.
BLOCK_DAYS = 31


class ReportingStream(UdemyStream):
    """An analytics endpoint, synced window by window with a `from_date` bookmark."""

    replication_key = "from_date"
    #: Days are read in order, so the bookmark can follow every record: a killed run
    #: resumes from the day it was in. The lookback re-reads days before the bookmark,
    #: which the SDK's sort check would take for disorder, hence `check_sorted` off.
    is_sorted = True
    check_sorted = False
    tap_added_fields = UdemyStream.tap_added_fields | {"from_date", "to_date"}

    #: Days per query. The aggregate endpoints sum activity over the requested period,
    #: so they are read one day at a time (the day is part of their key). Endpoints with a
    #: row per item (user_progress) are read a whole block at a time: fewer, fuller pages.
    window_days: t.ClassVar[int] = 1

    def iter_pages(self, context: Context | None) -> Iterator[list[Record]]:
        """Yield the pages of every window from the starting day to yesterday, in order."""
        first = self.first_day(context)
        total_days = (self.last_day() - first).days + 1
        queries = self._day_queries(first) if self.window_days == 1 else self._block_queries(first)
        previous = None
        for query, page in self.read_queries(queries, total_days):
            window_start, window_end = t.cast("tuple[str, str]", query.tag)
            if previous not in (None, window_start):
                # Every record of the previous window has been emitted and counted in the
                # bookmark: say so now, so a killed run resumes from this very window.
                self._write_state_message()
            previous = window_start
            for record in page.records:
                record["from_date"] = window_start
                record["to_date"] = window_end
            yield self.checked(page)

    def first_day(self, context: Context | None) -> dt.date:
        """The bookmark minus `lookback_days`, not before `start_date`; else `start_date`."""
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
            return start
        lookback = self.config.get("lookback_days")
        days = DEFAULT_LOOKBACK_DAYS if lookback is None else int(lookback)
        return max(start, bookmark - dt.timedelta(days=days))

    def last_day(self) -> dt.date:
        """Yesterday by the API's clock (the daily refresh), or `end_date` if earlier."""
        today = self.connection.server_date or dt.datetime.now(dt.timezone.utc).date()
        yesterday = today - dt.timedelta(days=1)
        end = _day(self.config.get("end_date"))
        return min(end, yesterday) if end else yesterday

    def _count(self, first: dt.date, last: dt.date) -> int:
        """How many rows a period holds, from a one-record page."""
        url = self.query_url(from_date=first.isoformat(), to_date=last.isoformat(), page_size="1")
        return self.fetch_page(url).count

    def _query(self, start: dt.date, end: dt.date, first: dt.date) -> Query:
        bounds = (start.isoformat(), end.isoformat())
        url = self.query_url(from_date=bounds[0], to_date=bounds[1])
        return Query(url, tag=bounds, units=(end - first).days + 1)

    def _day_queries(self, first: dt.date) -> Iterator[Query]:
        """One query per day with data; empty blocks of days are skipped after one probe."""
        # The first probe also tells the API's date, hence where reporting data ends.
        provisional_last = self.last_day()
        if first > provisional_last or self._count(first, provisional_last) == 0:
            return
        last = self.last_day()
        for block_start, block_end in _blocks(first, last):
            whole_range = block_start == first and block_end == last
            if whole_range or self._count(block_start, block_end) > 0:
                for offset in range((block_end - block_start).days + 1):
                    day = block_start + dt.timedelta(days=offset)
                    yield self._query(day, day, first)

    def _block_queries(self, first: dt.date) -> Iterator[Query]:
        """One query per block of days, up to yesterday by the API's clock.

        The blocks up to yesterday by this machine's clock are queued at once (so they
        are read concurrently); once a response has told the API's date, the days it is
        ahead by, if any (a client clock behind UTC, or a sandbox moved on), follow.
        """
        last = self.last_day()
        yield from (self._query(a, b, first) for a, b in _blocks(first, last, self.window_days))
        self.connection.dated.wait(timeout=self.request_timeout)
        if self.last_day() > max(last, first - dt.timedelta(days=1)):
            after = max(last, first - dt.timedelta(days=1)) + dt.timedelta(days=1)
            for a, b in _blocks(after, self.last_day(), self.window_days):
                yield self._query(a, b, first)


def _blocks(
    first: dt.date, last: dt.date, size: int = BLOCK_DAYS
) -> Iterator[tuple[dt.date, dt.date]]:
    """Consecutive (start, end) blocks of `size` days covering first..last."""
    start = first
    while start <= last:
        end = min(start + dt.timedelta(days=size - 1), last)
        yield start, end
        start = end + dt.timedelta(days=1)


def _day(value: t.Any) -> dt.date | None:
    if value in (None, ""):
        return None
    return dt.date.fromisoformat(str(value)[:10])
