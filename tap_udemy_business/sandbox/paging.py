"""Pages of query answers: validated, rendered once with ``orjson``, then served from the cache.

A page's results are rendered to bytes once and kept in the portal's page cache
(`page_cache.py`); what differs between two requests for the same page (the host in the
``next``/``previous`` links) is written per request around those bytes (`envelope`). Page-number
paging follows Django REST framework, as the real API does.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import orjson

from tap_udemy_business.sandbox.model_selection import Filters
from tap_udemy_business.sandbox.page_cache import Page, PageCache, PageKey
from tap_udemy_business.sandbox.routes import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ApiError,
    applicable,
    check_endpoint,
    coerce_date,
    parse_filters,
    parse_int,
    requested_fields,
)

if TYPE_CHECKING:
    from datetime import date

    from tap_udemy_business.sandbox.model import Dataset
    from tap_udemy_business.sandbox.model_selection import Query, Selection


class QueryPages:
    """The dataset's answers to queries, page by page, through one bounded page cache."""

    def __init__(self, dataset: Dataset, cache_bytes: int) -> None:
        """Answer from `dataset`, keeping up to `cache_bytes` of selections and pages."""
        self.dataset = dataset
        self.cache = PageCache(cache_bytes)
        #: Serializes the model's work (scans, rendering) and the clock: one query is indexed
        #: once even when many connections ask for it at the same moment.
        self._model_lock = threading.RLock()

    def advance(self, days: int) -> None:
        """Move the clock, revealing new activity, and drop the entries of the old day."""
        with self._model_lock:
            self.dataset.advance(days=days)
        self.cache.clear()

    def page(self, endpoint: str, params: dict[str, str]) -> Page:
        """Validate a request's query string and return its page, from the cache when there.

        Raises:
            ApiError: a 400 for a parameter the API refuses, a 404 for a page past the end.
        """
        number = parse_int(params, "page", 1, 1)
        size = min(parse_int(params, "page_size", DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
        filters = parse_filters(endpoint, params)
        fields = requested_fields(self.dataset, endpoint, params)
        query = self.dataset.query(endpoint, filters)
        key = PageKey(query, fields, size, number)
        page = self.cache.page(key)
        if page is not None:
            return page
        selection = self.selection(query)
        count = selection.count
        pages = max(1, math.ceil(count / size))
        if number > pages:
            raise ApiError(404, "Invalid page.")
        with self._model_lock:
            rows = selection.rows((number - 1) * size, min(number * size, count))
        if fields is not None:
            wanted = {"_class", "id", *fields}
            rows = [{k: v for k, v in row.items() if k in wanted} for row in rows]
        page = Page(count, number, pages, orjson.dumps(rows))
        self.cache.add_page(key, page)
        return page

    def selection(self, query: Query) -> Selection:
        """The query's selection, from the cache, or indexed once and cached."""
        selection = self.cache.selection(query)
        if selection is None:
            with self._model_lock:
                selection = self.cache.selection(query)  # another thread may have made it
                if selection is None:
                    selection = self.dataset.selection(query)
                    self.cache.add_selection(query, selection)
        return selection

    def ground_truth(self, endpoint: str, filters: Filters) -> list[dict[str, Any]]:
        """Every record (``@all``) of a query, the filters not applying to it ignored."""
        check_endpoint(endpoint)
        selection = self.selection(self.dataset.query(endpoint, applicable(endpoint, filters)))
        with self._model_lock:
            return selection.rows(0, selection.count)

    def prerender(self, endpoint: str, page_size: int, fields: str, filters: dict[str, Any]) -> int:
        """Render every page of a query into the cache; return how many pages it has."""
        check_endpoint(endpoint)
        params = {key: str(value) for key, value in filters.items() if value is not None}
        params["page_size"] = str(page_size)
        params[f"fields[{self.dataset.class_name(endpoint)}]"] = fields
        first = self.page(endpoint, params)
        for number in range(2, first.pages + 1):
            params["page"] = str(number)
            self.page(endpoint, params)
        return first.pages


def filters_of(
    from_date: date | str | None,
    to_date: date | str | None,
    course_id: int | None,
    user_email: str | None,
) -> Filters:
    """`Filters` from values or the strings the API takes (dates refused as the API would)."""
    return Filters(
        from_date=coerce_date(from_date, "from_date"),
        to_date=coerce_date(to_date, "to_date"),
        course_id=course_id,
        user_email=user_email,
    )


def link(host: str, path: str, raw_query: str, page: int) -> str:
    """A link to ``page``, the way Django REST framework builds ``next`` and ``previous``.

    The other parameters are kept, re-encoded and sorted (``fields%5Bcourse%5D=%40all``, as in
    the API guide's samples), and page 1 carries no ``page`` parameter.
    """
    params = parse_qs(raw_query, keep_blank_values=True)
    if page == 1:
        params.pop("page", None)
    else:
        params["page"] = [str(page)]
    query = urlencode(sorted(params.items()), doseq=True)
    return f"http://{host}{path}?{query}" if query else f"http://{host}{path}"


def envelope(page: Page, host: str, path: str, raw_query: str, next_host: str = "") -> bytes:
    """The page's JSON: links are written per request, the cached results spliced in as bytes."""
    nxt = None
    if page.page < page.pages:
        nxt = link(next_host or host, path, raw_query, page.page + 1)
    prev = link(host, path, raw_query, page.page - 1) if page.page > 1 else None
    head = orjson.dumps({"count": page.total, "next": nxt, "previous": prev})
    return head[:-1] + b',"results":' + page.results + b"}"
