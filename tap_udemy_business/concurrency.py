"""Concurrent page reading: an adaptive cap on requests in flight, and an ordered reader.

singer-sdk reads one page at a time. At 100 ms a page that is ~1,000 records/s, hours for
a large organization. Here, once a query's first page tells `count`, its other pages are
requested concurrently, and the first pages of later queries (date windows) are requested
ahead too; records still come out strictly in query and page order, so a bookmark never
passes a page that has not been emitted, and memory holds at most a few pages per slot.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import typing as t
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from tap_udemy_business.auth import origin_of
from tap_udemy_business.errors import SyncAbortedError, UdemyFatalError, UnsafeLinkError
from tap_udemy_business.pages import NextLinkPaginator, Page, with_page_number

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

GROW_AFTER_SUCCESSES = 20
#: How often a request waiting for its turn checks whether its read was cancelled.
CANCEL_POLL_SECONDS = 0.25
#: Per success, the spacing between paced requests shrinks by this factor.
PACE_SPEEDUP = 0.999


class AdaptiveLimiter:
    """Caps requests in flight and paces them; backs off on 429 and recovers slowly.

    One limiter is shared by every stream of a tap, because Udemy's rate limit is per
    credential, not per endpoint. A 429's `Retry-After` pauses every request, not only
    the one that was refused, and halves the requests allowed in flight. From the second
    429 on, requests are also spaced at the rate the API accepted between the two
    (requests sent / time between the 429s), so the tap settles just under the limit
    instead of bursting into it and sitting out `Retry-After` again; the spacing shrinks
    by 0.1 % per success, probing back up towards whatever the API allows.
    """

    def __init__(self, maximum: int) -> None:
        """Start at the configured maximum, unpaced."""
        self.maximum = maximum
        self.limit = maximum
        self.interval = 0.0
        self._in_flight = 0
        self._successes = 0
        self._paused_until = 0.0
        self._next_start = 0.0
        self._sent_since_throttle = 0
        self._last_throttle: float | None = None
        self._cond = threading.Condition()

    @contextmanager
    def slot(self, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold one of the `limit` places, at the paced time, for one request.

        Raises:
            SyncAbortedError: `cancel` was set while waiting: the read has failed.
        """
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    raise SyncAbortedError
                now = time.monotonic()
                wait = max(self._paused_until, self._next_start) - now
                if wait <= 0 and self._in_flight < self.limit:
                    break
                if cancel is not None:  # look at `cancel` now and then while waiting
                    wait = min(wait, CANCEL_POLL_SECONDS) if wait > 0 else CANCEL_POLL_SECONDS
                self._cond.wait(timeout=wait if wait > 0 else None)
            self._in_flight += 1
            self._sent_since_throttle += 1
            if self.interval:
                self._next_start = max(now, self._next_start) + self.interval
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def on_success(self) -> None:
        """Count a success: speed the pace up a little; in time, allow one more in flight."""
        with self._cond:
            self._successes += 1
            self.interval *= PACE_SPEEDUP
            if self.limit < self.maximum and self._successes >= GROW_AFTER_SUCCESSES * self.limit:
                self.limit += 1
                self._successes = 0
                self._cond.notify_all()

    def on_throttle(self, retry_after: float) -> None:
        """Halve the cap, pace at the accepted rate, and pause everyone `retry_after` s.

        The 429s of requests already in flight during a pause are one event, not several:
        they neither halve the cap again nor measure anything. The accepted rate is
        measured from the end of the last pause, when sending could resume, to this 429.
        """
        with self._cond:
            now = time.monotonic()
            if now < self._paused_until:
                return
            if self._last_throttle is not None and self._sent_since_throttle:
                sending_since = max(self._last_throttle, self._paused_until)
                if now > sending_since:
                    self.interval = (now - sending_since) / self._sent_since_throttle
            self._last_throttle = now
            self._sent_since_throttle = 0
            self.limit = max(1, self.limit // 2)
            self._successes = 0
            self._paused_until = now + retry_after
            self._cond.notify_all()


@dataclass(slots=True)
class Query:
    """One list query: its first page's URL, and what to hand back with its pages."""

    url: str
    tag: t.Any = None
    #: How many units of work (days) are done once this query is read; for progress.
    units: int = 0
    #: Its first page, when already read (to learn something before reading on).
    page: Page | None = None


class _Slot:
    __slots__ = ("expanded", "future", "is_first", "paginator", "query", "url")

    def __init__(self, query: Query, url: str, *, is_first: bool) -> None:
        self.query = query
        self.url = url
        self.is_first = is_first
        self.expanded = False
        self.future: Future[Page] | None = None
        self.paginator: NextLinkPaginator | None = None


class PageReader:
    """Reads queries' pages, concurrently when allowed, yielding them strictly in order.

    With `concurrency` 1 it follows each page's `next` link, exactly as the API hands them
    out. With more, it derives pages 2..n from the first page's `next` link and `count`,
    and keeps up to `2 * concurrency` pages requested ahead of the consumer.
    """

    def __init__(
        self,
        fetch: Callable[[str], Page],
        concurrency: int,
        cancel: threading.Event | None = None,
    ) -> None:
        """Use `fetch(url)` (with its own retries) to read one page.

        Args:
            fetch: reads one page, retrying what is transient.
            concurrency: requests at most in flight (1: follow `next` links one by one).
            cancel: set when the read fails or is closed, for `fetch` to give up on pages
                still in flight or retrying instead of delaying the error.
        """
        self._fetch = fetch
        self._cancel = cancel
        self._concurrency = concurrency
        self._ahead = 1 if concurrency == 1 else 2 * concurrency

    def read(self, queries: Iterable[Query]) -> Iterator[tuple[Query, Page]]:
        """Yield `(query, page)` for every page of every query, in order."""
        pending = iter(queries)
        slots: deque[_Slot] = deque()
        executor = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="page")
        try:
            while True:
                self._fill(slots, pending, executor)
                if not slots:
                    return
                slot = slots.popleft()
                if slot.future is None:  # pragma: no cover - _fill submits the head first
                    slot.future = executor.submit(self._fetch, slot.url)
                page = slot.future.result()
                try:
                    slots.extendleft(reversed(self._followers(slot, page)))
                except UdemyFatalError:
                    yield slot.query, page  # the page itself is good: emit it, then stop
                    raise
                yield slot.query, page
        except BaseException:
            if self._cancel is not None:
                self._cancel.set()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def _fill(
        self,
        slots: deque[_Slot],
        pending: Iterator[Query],
        executor: ThreadPoolExecutor,
    ) -> None:
        if self._concurrency > 1:
            self._expand_arrived(slots)
        self._submit(slots, executor)
        while len(slots) < self._ahead:
            # Drawing a query may block (a stream waiting to learn the API's date): what
            # is queued so far is already in flight, so it cannot wait on itself.
            query = next(pending, None)
            if query is None:
                break
            slots.append(_Slot(query, query.url, is_first=True))
            self._submit(slots, executor)

    def _submit(self, slots: deque[_Slot], executor: ThreadPoolExecutor) -> None:
        for slot in itertools.islice(slots, self._ahead):
            if slot.future is None and slot.is_first and slot.query.page is not None:
                slot.future = Future()
                slot.future.set_result(slot.query.page)
            elif slot.future is None:
                slot.future = executor.submit(self._fetch, slot.url)

    def _expand_arrived(self, slots: deque[_Slot]) -> None:
        """Queue the other pages of first pages that have arrived, ahead of the consumer.

        Without this, a query's pages 2..n would wait until the consumer reached its
        first page, and the pipeline would drain at every query (every day) boundary.
        """
        index = 0
        while index < min(len(slots), self._ahead):
            slot = slots[index]
            future = slot.future
            if (
                slot.is_first
                and not slot.expanded
                and future is not None
                and future.done()
                and future.exception() is None
            ):
                slot.expanded = True
                for offset, follower in enumerate(self._derived(slot, future.result()), start=1):
                    slots.insert(index + offset, follower)
            index += 1

    def _followers(self, slot: _Slot, page: Page) -> list[_Slot]:
        """Check the page's `next` link; return the slots still to queue after it."""
        if page.next_url is None:
            return []
        if origin_of(page.next_url) != origin_of(slot.url):
            msg = (
                f"The 'next' link of {slot.url} points to another host "
                f"({urlsplit(page.next_url).netloc}); refusing to follow it."
            )
            raise UnsafeLinkError(msg)
        if self._concurrency == 1 or slot.paginator is not None:
            # Sequential reads follow links; so does the last derived page (it has a
            # paginator), in case the list grew while it was read.
            return self._next_link(slot, page)
        if not slot.is_first or slot.expanded:
            return []  # derived pages are already queued
        slot.expanded = True
        return self._derived(slot, page)

    @staticmethod
    def _next_link(slot: _Slot, page: Page) -> list[_Slot]:
        """The page its `next` link names, to be read after it (links followed one by one)."""
        paginator = slot.paginator or NextLinkPaginator(first_url=slot.url)
        paginator.advance_page(page)
        if paginator.finished or paginator.current_value is None:
            return []
        follower = _Slot(slot.query, paginator.current_value.geturl(), is_first=False)
        follower.paginator = paginator
        return [follower]

    @staticmethod
    def _derived(slot: _Slot, page: Page) -> list[_Slot]:
        """Pages 2..n of a query, from its first page's `next` link and `count`."""
        if page.next_url is None:
            return []
        per_page = len(page.records)
        if per_page == 0:  # an empty first page that links on: no page size to derive from
            return PageReader._next_link(slot, page)
        pages = math.ceil(page.count / per_page)
        derived = [
            _Slot(slot.query, with_page_number(page.next_url, number), is_first=False)
            for number in range(2, pages + 1)
        ]
        if derived:
            last = derived[-1]
            # Should the list have grown, the last page's link is followed from there on;
            # a link back into pages already read is a loop.
            last.paginator = NextLinkPaginator(
                first_url=slot.url, also_read=(d.url for d in derived)
            )
        return derived
