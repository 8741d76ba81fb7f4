"""A page of a paged list, as the page reader sees it: its records, `count` and `next` link.

Kept apart from parsing (`pages.py`) and from the API's errors, so that the reader
(`concurrency.py`) depends on nothing but this.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if t.TYPE_CHECKING:
    import requests


@dataclass(slots=True)
class Page:
    """A parsed page: its records, the total `count` of the query, and the `next` link."""

    url: str
    count: int
    next_url: str | None
    records: list[dict[str, t.Any]]
    response: requests.Response | None = field(default=None, repr=False)


def with_page_number(next_url: str, page: int) -> str:
    """Return the API's own `next` link with its `page` parameter set to `page`.

    Deriving later pages from the link the API gave keeps every parameter exactly as the
    API spelled it, so a concurrent read asks for the same pages as following `next` does.
    """
    before, after = _around_page_number(next_url)
    return f"{before}{page}{after}"


@lru_cache(maxsize=64)
def _around_page_number(next_url: str) -> tuple[str, str]:
    """The link before and after its page number, `page` moved to the end of the query.

    A query's pages all come from one link: it is taken apart once, not once a page.
    """
    parts = urlsplit(next_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page"]
    query.append(("page", ""))
    link = urlunsplit(parts._replace(query=urlencode(query, safe="@,[]"), fragment=""))
    return link, f"#{parts.fragment}" if parts.fragment else ""
