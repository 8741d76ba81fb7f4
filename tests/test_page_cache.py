"""The sandbox's one page cache: selections and rendered pages under one key and one budget."""

from __future__ import annotations

from tap_udemy_business.sandbox.model import Dataset, DatasetParams, Filters
from tap_udemy_business.sandbox.page_cache import Page, PageCache, PageKey

DS = Dataset(DatasetParams(learners=30, history_days=20))
QUERY = DS.query("user_progress", Filters())
OTHER = DS.query("user_activity", Filters())


def page(number: int, size: int = 1000) -> tuple[PageKey, Page]:
    """A page of `size` bytes of results, keyed as page `number` of QUERY."""
    return PageKey(QUERY, None, 100, number), Page(10_000, number, 100, b"x" * size)


def test_a_page_and_its_selection_are_found_by_their_keys() -> None:
    cache = PageCache(budget=10**6)
    key, value = page(1)
    selection = DS.selection(QUERY)
    cache.add_page(key, value)
    cache.add_selection(QUERY, selection)
    assert cache.page(key) is value
    assert cache.selection(QUERY) is selection
    assert cache.page(key._replace(number=2)) is None
    assert cache.page(key._replace(fields=("user_email",))) is None
    assert cache.selection(OTHER) is None
    # A key of one kind never answers for the other.
    assert cache.page(PageKey(OTHER, None, 100, 1)) is None
    assert cache.stats() == (1, 1, cache.stats().bytes)


def test_the_budget_bounds_pages_and_selections_together() -> None:
    selection = DS.selection(QUERY)
    assert selection.nbytes > 0
    budget = 10 * 1256
    cache = PageCache(budget=budget)
    cache.add_selection(QUERY, selection)
    for number in range(1, 40):
        cache.add_page(*page(number))
        assert cache.stats().bytes <= budget
    stats = cache.stats()
    assert stats.pages == 10  # 1,000-byte pages (plus 256 of overhead each) within the budget
    assert stats.selections == 0  # the oldest entry went first, whatever its kind
    assert cache.page(page(39)[0]) is not None
    assert cache.page(page(29)[0]) is None


def test_the_least_recently_used_entry_is_evicted_first() -> None:
    cache = PageCache(budget=3 * 1256)
    for number in (1, 2, 3):
        cache.add_page(*page(number))
    assert cache.page(page(1)[0]) is not None  # page 1 is now the most recently used
    cache.add_page(*page(4))
    assert cache.page(page(2)[0]) is None
    assert all(cache.page(page(number)[0]) is not None for number in (1, 3, 4))


def test_an_entry_larger_than_the_budget_is_kept_alone() -> None:
    cache = PageCache(budget=100)
    cache.add_page(*page(1))
    cache.add_page(*page(2))
    assert len(cache) == 1
    assert cache.page(page(2)[0]) is not None


def test_replacing_an_entry_counts_it_once_and_clear_empties_the_cache() -> None:
    cache = PageCache(budget=10**6)
    cache.add_page(*page(1, size=500))
    once = cache.stats().bytes
    cache.add_page(*page(1, size=500))
    assert cache.stats().bytes == once
    cache.clear()
    assert cache.stats() == (0, 0, 0)
    assert len(cache) == 0
