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
    """A parsed page: its records, the total `count` of the query, and the `next` link.

    A page parsed by the page worker (`remote_pages.py`) leaves its records there: then
    `records` is empty, `held` is the worker's number for them, and `size` and `classes`
    say what the records themselves would.
    """

    url: str
    count: int
    next_url: str | None
    records: list[dict[str, t.Any]]
    response: requests.Response | None = field(default=None, repr=False)
    #: The page worker's number for the records it holds; None when they are `records`.
    held: int | None = None
    #: How many records the page has (`len(records)` unless they are held).
    size: int = -1
    #: The distinct `_class` values of held records (see `record_classes`).
    classes: list[t.Any] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        """Count the records the page has in hand."""
        if self.held is None:
            self.size = len(self.records)

    def record_classes(self) -> list[t.Any]:
        """The distinct `_class` values of the page's records (null for a record without).

        Told apart by `repr`, so values a set cannot hold (an object sent as `_class`)
        count too; a list, so it can cross to the tap from the page worker.
        """
        if self.held is not None:
            return self.classes
        values = (record.get("_class") for record in self.records)
        return list({repr(value): value for value in values}.values())


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
