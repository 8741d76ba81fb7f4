"""One page of an API list response: parsing, shape checks and links to other pages."""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from singer_sdk.pagination import BaseHATEOASPaginator

from tap_udemy_business.errors import InvalidBodyError, UdemyFatalError

if t.TYPE_CHECKING:
    import requests

    from tap_udemy_business.records import Record


@dataclass(slots=True)
class Page:
    """A parsed page: its records, the total `count` of the query, and the `next` link."""

    url: str
    count: int
    next_url: str | None
    records: list[Record]
    response: requests.Response | None = field(default=None, repr=False)
    #: When the page arrived (UTC): the `time_extracted` of its records.
    received_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


def parse_page(content: bytes, url: str) -> Page:
    """Parse a list response once and check it has the documented shape.

    Args:
        content: the raw body.
        url: the request URL, to name in errors.

    Returns:
        The page.

    Raises:
        InvalidBodyError: the body is not JSON (truncated or garbled); retried.
        UdemyFatalError: the JSON is not `{count, next, previous, results: [...]}`.
    """
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        msg = f"Invalid JSON in the response from {url} ({len(content)} bytes): {exc}"
        raise InvalidBodyError(msg) from None
    problem = _shape_problem(body)
    if problem:
        msg = f"Unexpected response from {url}: {problem}."
        raise UdemyFatalError(msg)
    return Page(url=url, count=body["count"], next_url=body.get("next"), records=body["results"])


def _shape_problem(body: t.Any) -> str | None:
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    results = body.get("results")
    if not isinstance(results, list):
        return "'results' is missing or not a list"
    if not all(isinstance(record, dict) for record in results):
        return "'results' holds an item that is not an object"
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return "'count' is missing or not a non-negative integer"
    next_url = body.get("next")
    if next_url is not None and not _is_http_url(next_url):
        return "'next' is neither null nor an absolute http(s) URL"
    return None


def _is_http_url(value: t.Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def with_page_number(next_url: str, page: int) -> str:
    """Return the API's own `next` link with its `page` parameter set to `page`.

    Deriving later pages from the link the API gave keeps every parameter exactly as the
    API spelled it, so a concurrent read asks for the same pages as following `next` does.
    """
    parts = urlsplit(next_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page"]
    query.append(("page", str(page)))
    return urlunsplit(parts._replace(query=urlencode(query, safe="@,[]")))


class NextLinkPaginator(BaseHATEOASPaginator):
    """Follows the absolute `next` links of one query until one is null.

    The page has already been parsed by the stream: the paginator reads the link from
    it rather than parsing the body a second time. Unlike the base class, it refuses any
    link seen before, not only a repeat of the last one, so an A→B→A cycle stops too.
    """

    def __init__(self, first_url: str, also_read: t.Iterable[str] = ()) -> None:
        """Start at the query's first URL; it and `also_read` count as seen."""
        super().__init__()
        self._page: Page | None = None
        self._seen: set[str] = {first_url, *also_read}

    def advance_page(self, page: Page) -> None:
        """Advance past a parsed page (raises on a link seen before)."""
        self._page = page
        self.advance(t.cast("requests.Response", page.response))

    def get_next_url(self, response: requests.Response) -> str | None:  # noqa: ARG002
        """Return the parsed page's `next` link, refusing one already followed."""
        next_url = self._page.next_url if self._page else None
        if next_url is None:
            return None
        if next_url in self._seen:
            msg = f"The API's 'next' links loop: {next_url} was already read."
            raise UdemyFatalError(msg)
        self._seen.add(next_url)
        return next_url
