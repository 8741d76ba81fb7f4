"""Concurrent page reading: the pages of queries decided beforehand, yielded in order.

singer-sdk reads one page at a time. At 100 ms a page that is ~1,000 records/s, hours for
a long list. Here, once a query's first page tells `count`, its other pages are
requested concurrently, and the first pages of later queries (date windows) are requested
ahead too; records still come out strictly in query and page order, so a bookmark never
passes a page that has not been emitted, and memory holds at most a few pages per slot.

`count` is only a hint for planning those reads; the `next` links are the truth of what a
query holds, and they may not leave the query's own list (see `PageReader`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import typing as t
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from tap_udemy_business.in_flight import InFlightLimit
from tap_udemy_business.list_page import Page, with_page_number
from tap_udemy_business.urls import describe_url, origin_of

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

#: Page threads per request allowed in flight (see `PageReader.read`).
RETRY_HEADROOM = 3
#: Where the reader's warnings go unless it is given a logger.
LOGGER = logging.getLogger(__name__)
#: Reads started so far: the first part of a page's place in the order of reading.
_READS = itertools.count()
_ORDER = threading.local()

#: A page's place in the order its records are emitted: (read, query, page).
Order = tuple[int, int, int]


def request_order() -> Order | None:
    """Where the page this thread is fetching comes in its read (None outside a read).

    Requests that wait their turn (the rate governor's queue) go in this order, not in the
    order they asked: a query's pages, planned once its first page came in, go before a
    later query's pages already queued while that first page waited out a `Retry-After`.
    """
    order: Order | None = getattr(_ORDER, "key", None)
    return order


@contextmanager
def reading(order: Order) -> Iterator[None]:
    """Within this block, `request_order` (on this thread) says `order`."""
    _ORDER.key = order
    try:
        yield
    finally:
        _ORDER.key = None


class PagingError(Exception):
    """A list whose pages cannot be read whole: it changed under the read, or its links loop."""


class ListChangedError(PagingError):
    """A `count` that dropped between two pages: rows deleted, the pages after shifted."""


class LinkLeavesListError(PagingError):
    """A `next` link to another scheme, host, port or path than its query's list."""


class ReadAhead(t.NamedTuple):
    """How far a read goes ahead of its consumer."""

    #: Pages requested (or to be) and not yet in, at most.
    requests: int
    #: Pages held at most, in or not (memory): pages that came in out of order (a later
    #: query's, read while an earlier first page waited) take no place of a request.
    pages: int
    #: Whether the requests are paced (the rate governor's read-ahead then holds as it
    #: is); unpaced, the reader keeps fewer requests ahead while its consumer needs fewer.
    paced: bool = False


class Pacing(t.Protocol):
    """What paces a read's requests (the rate governor), as the reader sees it."""

    def read_ahead(self, base: int) -> ReadAhead:
        """Given the usual window (twice the concurrency), how far to read ahead now.

        Widened while paced, so that a page waiting out a `Retry-After` at the head of
        the line does not stall the others.
        """
        ...

    def remaining(self, pages: int | None) -> None:
        """Hear how many pages the read has left, once each query's pages are known.

        None until then (a query not planned yet, or one whose links are followed one
        by one). Near its end, a 429 leaves a read with nothing else to do for a whole
        `Retry-After`: the rate governor does not probe above the limit then.
        """
        ...


@dataclass(frozen=True, slots=True)
class Query:
    """One list query, decided before the read starts: its first page's URL, and more.

    Immutable, and handed to the reader as a whole list: what a read covers is settled
    before its first request, never while it runs.
    """

    url: str
    #: What the query covers (a date window, say), handed back with its pages.
    window: t.Any = None
    #: Units of work (windows) wholly read before this query starts; for progress.
    units: int = 0
    #: Its first page, when that was read before the read began: the stream's first
    #: request, which also taught it the records' `_class` and the API's date. It is
    #: read on from, not asked for again.
    page: Page | None = None


class _Read:
    """One query while it is read: what its pages have said so far, to check the next by.

    `count` is the latest count a page of the query told; `rows` and `pages` are what
    its `next` links have led to so far.
    """

    __slots__ = (
        "count",
        "followed",
        "index",
        "origin",
        "pages",
        "path",
        "plan",
        "planned",
        "query",
        "rows",
        "warned",
    )

    def __init__(self, query: Query, index: int, *, planned: bool) -> None:
        self.query = query
        #: Where the query comes in the read (its place in the order of requests).
        self.index = index
        self.origin = origin_of(query.url)
        self.path = urlsplit(query.url).path
        self.count: int | None = None
        self.rows = 0
        self.pages = 0
        #: Whether the pages after the first are decided (derived, or to be followed).
        self.planned = planned
        self.plan: _Plan | None = None
        #: The pages read by following links (and the first), to refuse a link back.
        self.followed = {_page_key(query.url)}
        #: Whether the query's one warning about its count has been logged.
        self.warned = False


class _Slot:
    """One page to read: its URL, its request once sent, and whether to follow its link."""

    __slots__ = ("first", "follow", "future", "number", "read", "url")

    def __init__(
        self, read: _Read, url: str, number: int, *, first: bool = False, follow: bool = False
    ) -> None:
        self.read = read
        self.url = url
        #: The page's number in its query (for the order of requests).
        self.number = number
        self.first = first
        #: Whether this page's `next` link is the page to read after it.
        self.follow = follow
        self.future: Future[Page] | None = None


class _Plan:
    """Pages `number..last` of a query, derived from its first page's `next` and `count`.

    They become slots only as the read-ahead window reaches them, so whatever `count`
    says (10**9), a plan costs a few numbers, and at most the window is ever requested
    past the page where the `next` links end.
    """

    __slots__ = ("last", "number", "read", "rest", "template", "where")

    def __init__(self, read: _Read, template: str, last: int) -> None:
        self.read = read
        self.template = template
        self.number = 2
        self.last = last
        parts = urlsplit(template)
        self.where = (parts.scheme.lower(), parts.netloc.lower(), parts.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        self.rest = sorted(pair for pair in pairs if pair[0] != "page")

    @property
    def exhausted(self) -> bool:
        """Whether every page of the plan has become a slot."""
        return self.number > self.last

    def take(self) -> _Slot:
        """The plan's next page as a slot; the last one's `next` link will be followed."""
        number = self.number
        self.number += 1
        url = with_page_number(self.template, number)
        return _Slot(self.read, url, number, follow=number == self.last)

    def covers(self, url: str) -> bool:
        """Whether `url` names one of pages 1..last of the plan: a link back into them loops."""
        parts = urlsplit(url)
        if (parts.scheme.lower(), parts.netloc.lower(), parts.path) != self.where:
            return False
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        numbers = [value for name, value in pairs if name == "page"]
        if sorted(pair for pair in pairs if pair[0] != "page") != self.rest:
            return False
        if not numbers:
            return True  # page 1, as Django REST framework links to it
        return len(numbers) == 1 and numbers[0].isdigit() and 1 <= int(numbers[0]) <= self.last


def _pages_left(slots: deque[_Slot | _Plan]) -> int | None:
    """Pages left to read in `slots`, or None if a query's links lead to pages not known."""
    left = 0
    for item in slots:
        if isinstance(item, _Plan):
            left += item.last - item.number + 1
            continue
        plan = item.read.plan
        ends_plan = plan is not None and item.number == plan.last
        if (item.first and not item.read.planned) or (item.follow and not ends_plan):
            return None  # how many pages its query holds, or its links lead to, is not known
        left += 1
    return left


def _answer_seconds(page: Page) -> float | None:
    """How long the request for `page` took to be answered, if known."""
    response = page.response
    return None if response is None else response.elapsed.total_seconds()


def _page_key(url: str) -> str:
    """A URL as the page it names, however it is spelled.

    Scheme and host in any case, parameters in any order and encoding, and no `page` as
    `page=1` (Django REST framework's link to the first page has none): a link back to a
    page already read is a loop whichever way the API writes it.
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name == "page" for name, _ in pairs):
        pairs.append(("page", "1"))
    query = urlencode(sorted(pairs))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}?{query}"


class PageReader:
    """Reads queries' pages, concurrently when allowed, yielding them strictly in order.

    A query's `next` links are the truth of what it holds; `count` only plans what to
    request ahead. With `concurrency` 1 each page's `next` link is followed, exactly as the
    API hands them out. With more, pages 2..n are derived from the first page's `next` link
    and `count` (lazily: at most `2 * concurrency` pages are requested ahead of the
    consumer), and the last one's link is followed on. Whatever `count` says, a page whose
    `next` is null ends its query (pages derived past it are dropped unread), a first page
    that links on although its `count` says it is all is followed link by link, and a
    `count` that disagrees with what the links led to is one warning per query.

    Offset pages shift when rows are deleted between two reads: a `count` that drops
    between two pages of a query stops the read before that page is emitted, rather than
    let a window through short. One that grows is read to the end of its links (no row is
    skipped when rows are only added), with a warning that a row may come twice.

    Every `next` link must keep its query's scheme, host, port and path (for an API, the
    account and the endpoint): anything else is refused before a request is made to it.
    """

    def __init__(  # noqa: PLR0913 - the last three are keywords, for the stream and tests
        self,
        fetch: Callable[[str], Page],
        concurrency: int,
        cancel: threading.Event | None = None,
        *,
        logger: logging.Logger | None = None,
        pacing: Pacing | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Use `fetch(url)` (with its own retries) to read one page.

        Args:
            fetch: reads one page, retrying what is transient.
            concurrency: requests at most in flight (1: follow `next` links one by one).
            cancel: set when the read fails or is closed, for `fetch` to give up on pages
                still in flight or retrying instead of delaying the error.
            logger: where warnings about a query's `count` go (this module's if unset).
            pacing: what paces the requests (the rate governor), told how far the read
                may go ahead and how many pages it has left (see `Pacing`).
            clock: seconds, for the time the consumer spends on a page (`InFlightLimit`).
        """
        self._fetch = fetch
        self._cancel = cancel
        self._concurrency = concurrency
        self._base_ahead = 1 if concurrency == 1 else 2 * concurrency
        self._in_flight = InFlightLimit(self._base_ahead)
        self._clock = clock
        self._pacing = pacing
        self._handed_out = False  # whether every query of the read has become a slot
        self._logger = logger or LOGGER
        self._serial = next(_READS)

    @property
    def _ahead(self) -> ReadAhead:
        """How far ahead of the consumer: twice the concurrency, more when paced.

        Unpaced, requests are kept to what the consumer needs (`InFlightLimit`).
        """
        if self._pacing is None or self._concurrency == 1:
            ahead = ReadAhead(self._base_ahead, self._base_ahead)
        else:
            ahead = self._pacing.read_ahead(self._base_ahead)
        if ahead.paced:
            return ahead
        return ahead._replace(requests=min(ahead.requests, self._in_flight.limit))

    def read(self, queries: Sequence[Query]) -> Iterator[tuple[Query, Page]]:
        """Yield `(query, page)` for every page of every query, in order.

        Args:
            queries: every query of the read, decided beforehand: taking the next one
                never waits on anything (a request, a clock), so the reader never blocks
                on its own input.

        Raises:
            PagingError: a `count` dropped between two pages of a query (before that
                page is yielded), or a `next` link leaves the list or loops (after its
                page). `fetch`'s own errors propagate as they are.
        """
        pending = enumerate(queries)
        self._handed_out = False
        if self._pacing is not None:
            self._pacing.remaining(None)
        slots: deque[_Slot | _Plan] = deque()
        # Threads beyond `concurrency` let pages waiting out a retry's back-off sleep
        # without holding up the others: requests in flight are capped by the governor.
        workers = self._concurrency * RETRY_HEADROOM
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="page")
        consumer: float | None = None  # seconds the consumer spent on the page before
        try:
            while True:
                self._fill(slots, pending, executor)
                if not slots:
                    return
                self._await_head(slots, pending, executor)
                slot = self._head(slots)
                page = t.cast("Future[Page]", slot.future).result()
                if consumer is not None:
                    self._in_flight.took(_answer_seconds(page), consumer)
                self._check_count(slot, page)
                try:
                    queued = self._advance(slot, page, slots)
                except PagingError:
                    yield slot.read.query, page  # the page itself is good: emit it, then stop
                    raise
                if queued:  # the pages it leads to go out before the consumer takes it
                    self._fill(slots, pending, executor)
                handed = self._clock()
                yield slot.read.query, page
                consumer = self._clock() - handed
        except BaseException:
            if self._cancel is not None:
                self._cancel.set()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    def _await_head(
        self,
        slots: deque[_Slot | _Plan],
        pending: Iterator[tuple[int, Query]],
        executor: ThreadPoolExecutor,
    ) -> None:
        """Wait for the head page, planning later queries' first pages as they arrive.

        A head page may wait out a `Retry-After` (a second, while the limit refills in
        milliseconds). Its query's other pages cannot be planned before it comes, but a
        later query's can, as soon as its first page is in: waiting on the head alone
        would leave the rest of the read-ahead window unused for that second.
        """
        head = t.cast("Future[Page]", t.cast("_Slot", slots[0]).future)
        while not head.done():
            self._fill(slots, pending, executor)  # plans the first pages that are in
            firsts = [
                slot.future
                for slot in itertools.islice(slots, 1, self._ahead.pages)
                if isinstance(slot, _Slot)
                and slot.first
                and not slot.read.planned
                and slot.future is not None
                and not slot.future.done()
            ]
            if not firsts:
                return  # nothing to plan meanwhile: the consumer waits on the head
            wait([head, *firsts], return_when=FIRST_COMPLETED)

    @staticmethod
    def _head(slots: deque[_Slot | _Plan]) -> _Slot:
        """Take the next page to yield: `_fill` has made it a slot and requested it."""
        return t.cast("_Slot", slots.popleft())

    def _fill(
        self,
        slots: deque[_Slot | _Plan],
        pending: Iterator[tuple[int, Query]],
        executor: ThreadPoolExecutor,
    ) -> None:
        ahead = self._ahead
        if self._concurrency > 1:
            self._plan_arrived(slots, ahead.pages)
        held, awaited = self._materialise(slots, ahead)
        self._submit(slots, executor, held)
        sequential = self._concurrency == 1
        while awaited < ahead.requests and held < ahead.pages:
            item = next(pending, None)
            if item is None:
                self._handed_out = True
                break
            read = _Read(item[1], item[0], planned=sequential)
            slot = _Slot(read, read.query.url, 1, first=True, follow=sequential)
            if read.query.page is not None:
                slot.future = Future()
                slot.future.set_result(read.query.page)
            slots.append(slot)
            held += 1
            awaited += slot.future is None
            self._submit(slots, executor, held)
        if self._handed_out and self._pacing is not None:
            self._pacing.remaining(_pages_left(slots))

    def _materialise(self, slots: deque[_Slot | _Plan], ahead: ReadAhead) -> tuple[int, int]:
        """Turn planned pages into slots until the read-ahead window is full.

        Returns:
            How many slots the window holds, and how many of them are not in yet (fewer
            than `ahead` allows: every slot is queued).
        """
        held = awaited = 0
        while held < len(slots) and awaited < ahead.requests and held < ahead.pages:
            item = slots[held]
            if isinstance(item, _Plan):
                if item.exhausted:
                    del slots[held]
                    continue
                item = item.take()
                slots.insert(held, item)
            held += 1
            awaited += item.future is None or not item.future.done()
        return held, awaited

    def _submit(
        self, slots: deque[_Slot | _Plan], executor: ThreadPoolExecutor, window: int
    ) -> None:
        for slot in itertools.islice(slots, window):
            if isinstance(slot, _Plan) or slot.future is not None:
                continue
            order = (self._serial, slot.read.index, slot.number)
            slot.future = executor.submit(self._fetch_in_order, order, slot.url)

    def _fetch_in_order(self, order: Order, url: str) -> Page:
        """`fetch(url)`, telling the rate governor where the page comes (`request_order`)."""
        with reading(order):
            return self._fetch(url)

    def _plan_arrived(self, slots: deque[_Slot | _Plan], window: int) -> None:
        """Plan the other pages of first pages that have arrived, ahead of the consumer.

        Without this, a query's pages 2..n would wait until the consumer reached its
        first page, and the pipeline would drain at every query (every day) boundary.
        A first page whose link is unsafe is left for the consumer to refuse.
        """
        index = 0
        while index < min(len(slots), window):
            slot = slots[index]
            index += 1
            if not isinstance(slot, _Slot) or not slot.first or slot.read.planned:
                continue
            future = slot.future
            if future is None or not future.done() or future.exception() is not None:
                continue
            page = future.result()
            if page.next_url is not None and self._link_problem(slot.read, page.next_url) is None:
                self._plan(slot, page, page.next_url, slots, index)

    def _plan(
        self, slot: _Slot, page: Page, next_url: str, slots: deque[_Slot | _Plan], index: int
    ) -> None:
        """Decide how a first page that links on is read on: derived pages, or its link.

        `count` is only trusted to say how many pages to request ahead: when it says this
        page is all (or the page is empty, so there is no page size to derive from), the
        link is followed instead, link by link.
        """
        read = slot.read
        read.planned = True
        per_page = page.size
        last = -(-page.count // per_page) if per_page else 0  # exact for any count
        if last < 2:  # noqa: PLR2004 - page 2 is the first one derived
            slot.follow = True
            return
        read.plan = _Plan(read, next_url, last)
        slots.insert(index, read.plan)

    def _check_count(self, slot: _Slot, page: Page) -> None:
        """Compare a page's `count` with the previous page's of its query.

        Raises:
            ListChangedError: the count dropped: rows were deleted between the two reads,
                so the offset pages after shifted and rows would be skipped unseen.
        """
        read = slot.read
        known = read.count
        read.count = page.count
        if known is None or page.count == known:
            return
        url = describe_url(slot.url)
        if page.count < known:
            msg = (
                f"{url}: the list changed while it was read (count {known} → {page.count}): "
                "rows were deleted between its pages, so the pages after shifted and rows "
                "would be missed"
            )
            raise ListChangedError(msg)
        self._warn(
            read,
            "%s: the list grew while it was read (count %d → %d): it is read to the end of "
            "its 'next' links, so no row is missed, but a row pushed onto the next page "
            "may be sent twice",
            url,
            known,
            page.count,
        )

    def _advance(self, slot: _Slot, page: Page, slots: deque[_Slot | _Plan]) -> bool:
        """Check a page's `next` link and queue what it leads to.

        Returns:
            Whether pages were queued (its query's plan, or its link to follow): they
            are to be requested now, not once the consumer is done with this page (a
            round trip and the page's processing one after the other, not at once).

        Raises:
            LinkLeavesListError: the link leaves the query's scheme, host, port or path.
            PagingError: the link leads back to a page already read (a loop).
        """
        read = slot.read
        read.rows += page.size
        read.pages += 1
        next_url = page.next_url
        if next_url is None:
            self._end(slot, page, slots)
            return False
        problem = self._link_problem(read, next_url)
        if problem is not None:
            msg = (
                f"The 'next' link of {describe_url(slot.url)} points to {problem}; "
                "refusing to follow it."
            )
            raise LinkLeavesListError(msg)
        queued = False
        if slot.first and not read.planned:
            self._plan(slot, page, next_url, slots, 0)
            queued = True
        if slot.follow:
            slots.appendleft(self._follower(read, next_url, slot.number + 1))
            queued = True
        return queued

    def _end(self, slot: _Slot, page: Page, slots: deque[_Slot | _Plan]) -> None:
        """End a query at a null `next`: drop pages derived past it; say if `count` was off."""
        read = slot.read
        while slots and slots[0].read is read:
            dropped = slots.popleft()
            if isinstance(dropped, _Slot) and dropped.future is not None:
                dropped.future.cancel()  # if still waiting; an answer in flight is ignored
        if read.rows != page.count:
            self._warn(
                read,
                "%s: the list's 'count' (%d) differs from what its 'next' links led to "
                "(%d rows in %d pages); the links decide: every page they led to was read",
                describe_url(slot.url),
                page.count,
                read.rows,
                read.pages,
            )

    def _warn(self, read: _Read, message: str, *args: t.Any) -> None:
        """Log one warning per query about its count; the first one found says it."""
        if not read.warned:
            read.warned = True
            self._logger.warning(message, *args)

    @staticmethod
    def _link_problem(read: _Read, url: str) -> str | None:
        """What is wrong with a `next` link of the query, or None when it stays on it.

        A query's pages are one list, so a link may only lead to that list: its scheme,
        host and port (its origin), and its path (for an API, its account and endpoint).
        The first difference found is the one named.
        """
        scheme, host, port = read.origin
        try:
            link_scheme, link_host, link_port = origin_of(url)
        except ValueError:  # a port that is not a number
            return f"an invalid port ({urlsplit(url).hostname}:…)"
        if link_scheme != scheme:
            return f"another scheme ({link_scheme}, not {scheme})"
        if link_host != host:
            return f"another host ({link_host}:{link_port})"
        if link_port != port:
            return f"another port ({link_port}, not {port})"
        path = urlsplit(url).path
        if path != read.path:
            return f"another path ({path}, not {read.path}): another list"
        return None

    @staticmethod
    def _follower(read: _Read, url: str, number: int) -> _Slot:
        """The page a link names, to be read after the page holding it (links one by one).

        Raises:
            PagingError: the link names a page already read: the links loop.
        """
        key = _page_key(url)
        if key in read.followed or (read.plan is not None and read.plan.covers(url)):
            msg = f"The list's 'next' links loop: {describe_url(url)} was already read."
            raise PagingError(msg)
        read.followed.add(key)
        return _Slot(read, url, number, follow=True)
