"""The portal's one cache: query selections and rendered pages, in one LRU bounded by bytes.

There used to be three caches that overlapped: the model memoized 32 selections, the portal 64
more of the same, and rendered pages lived in a third, byte-bounded LRU, each with a key of its
own (and prerendering filled only the third). Now one cache holds both kinds of entry, under
one budget and one key:

* a `Query` (the model's normalized query: endpoint, period with the clock's yesterday,
  course, e-mail) keys its `Selection`, the index that renders any page of the answer;
* a `PageKey` (that `Query`, plus the fields, page size and page number) keys a `Page`,
  the rendered JSON of its results and the counts its envelope needs.

A page is answered from its entry alone, without its selection, so the hot path of a cached
page is one lookup. A selection is what makes a page not yet rendered cheap, so it is kept
under the same least-recently-used rule as the pages; the budget counts both, so no kind of
entry can grow past it. The clock is part of every key, so an entry never answers for another
day; `clear` (on `advance`) only gives the memory back early.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from tap_udemy_business.sandbox.model_selection import Query, Selection

#: Bytes an entry costs besides its payload (key, tuple, dict slot), for the budget.
_ENTRY_OVERHEAD = 256


class Page(NamedTuple):
    """A page before its envelope is written: the links depend on the host the client used."""

    total: int
    page: int
    pages: int
    results: bytes


class PageKey(NamedTuple):
    """What one rendered page depends on: the query, the fields, the page size and number."""

    query: Query
    fields: tuple[str, ...] | None
    size: int
    number: int


class CacheStats(NamedTuple):
    """How full the cache is, for tests and benchmarks."""

    selections: int
    pages: int
    bytes: int


class PageCache:
    """Selections and rendered pages, least recently used evicted first, within a byte budget.

    Thread-safe: handler threads read and fill it concurrently. A `Query` (its first item is
    an endpoint name) never equals a `PageKey` (its first item is a `Query`), so the two kinds
    of key share one dictionary without colliding.
    """

    def __init__(self, budget: int) -> None:
        """Hold at most `budget` bytes of entries (the most recent entry is always kept)."""
        self._budget = budget
        self._size = 0
        self._entries: OrderedDict[Query | PageKey, tuple[Selection | Page, int]] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, key: PageKey) -> Page | None:
        """The rendered page, if cached (and mark it recently used)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        value = entry[0]
        return value if isinstance(value, Page) else None

    def selection(self, query: Query) -> Selection | None:
        """The query's selection, if cached (and mark it recently used)."""
        with self._lock:
            entry = self._entries.get(query)
            if entry is None:
                return None
            self._entries.move_to_end(query)
        value = entry[0]
        return None if isinstance(value, Page) else value

    def add_page(self, key: PageKey, page: Page) -> None:
        """Keep a rendered page, evicting the least recently used entries past the budget."""
        self._add(key, page, len(page.results) + _ENTRY_OVERHEAD)

    def add_selection(self, query: Query, selection: Selection) -> None:
        """Keep a query's selection, evicting the least recently used entries past the budget."""
        self._add(query, selection, selection.nbytes + _ENTRY_OVERHEAD)

    def clear(self) -> None:
        """Forget every entry (the portal's clock moved: none will be asked for again)."""
        with self._lock:
            self._entries.clear()
            self._size = 0

    def stats(self) -> CacheStats:
        """The number of selections and pages held, and the bytes they are counted as."""
        with self._lock:
            pages = sum(isinstance(value, Page) for value, _ in self._entries.values())
            return CacheStats(len(self._entries) - pages, pages, self._size)

    def __len__(self) -> int:
        """The number of entries, selections and pages together."""
        with self._lock:
            return len(self._entries)

    def _add(self, key: Query | PageKey, value: Selection | Page, cost: int) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._entries[key] = (value, cost)
            self._size += cost
            while self._size > self._budget and len(self._entries) > 1:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._size -= evicted
