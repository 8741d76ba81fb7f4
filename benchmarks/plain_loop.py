"""Benchmark baseline: the API guide's Python example, extended to read every page.

The guide (``udemy-business-api-guide-2018.txt``, ``def main``) sends one GET with
``requests``, an HTTP Basic header and ``fields[...]=@all``, then prints ``r.json()``. Extended
to page, that is: follow ``next`` until it is null and write each record as a ``json.dumps``
line. It reads the whole history in one unfiltered query (the tap reads one day per query).

Variants (what ``run.py`` compares the tap with):

* ``--threads 1`` (default): strictly sequential, following ``next``, over one
  ``requests.Session`` (keep-alive; a stricter baseline than the guide's ``requests.request``,
  which opens a connection per call: ``--no-session`` runs that literal form);
* ``--threads N``: page 1 first (for ``count``), then pages 2..n with a ``ThreadPoolExecutor(N)``
  sharing one session, written in page order.

Records go to stdout (``run.py`` counts the lines); a one-line JSON summary goes to stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TextIO

ENDPOINT_PATH = "analytics/user-progress/"
RECORD_CLASS = "user_progress"
TIMEOUT = 120


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True, help="e.g. http://127.0.0.1:8080")
    parser.add_argument("--organization-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--fields", default="@all")
    parser.add_argument(
        "--no-session",
        action="store_true",
        help="call requests.request per page, as the guide does (new connection each time)",
    )
    return parser


def _getter(*, session: bool) -> Callable[..., requests.Response]:
    if not session:
        return lambda url, **kwargs: requests.request("GET", url, timeout=TIMEOUT, **kwargs)
    shared = requests.Session()
    return lambda url, **kwargs: shared.request("GET", url, timeout=TIMEOUT, **kwargs)


def sequential_pages(
    get: Callable[..., requests.Response], url: str, header: dict[str, str], query: dict[str, str]
) -> Iterator[list[dict[str, Any]]]:
    """Yield each page's records, following ``next`` as the API hands it out."""
    next_url: str | None = url
    params: dict[str, str] | None = query
    while next_url:
        response = get(next_url, headers=header, params=params)
        response.raise_for_status()
        body = response.json()
        yield body["results"]
        next_url = body["next"]
        params = None  # ``next`` carries the whole query string


def threaded_pages(
    get: Callable[..., requests.Response],
    url: str,
    header: dict[str, str],
    query: dict[str, str],
    threads: int,
) -> Iterator[list[dict[str, Any]]]:
    """Yield page 1, then pages 2..n fetched by ``threads`` workers, in page order."""

    def fetch(page: int) -> list[dict[str, Any]]:
        response = get(url, headers=header, params={**query, "page": str(page)})
        response.raise_for_status()
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    first = get(url, headers=header, params=query)
    first.raise_for_status()
    body = first.json()
    yield body["results"]
    per_page = len(body["results"])
    if not per_page:
        return
    pages = math.ceil(body["count"] / per_page)
    with ThreadPoolExecutor(max_workers=threads) as executor:
        yield from executor.map(fetch, range(2, pages + 1))


def run(args: argparse.Namespace, sink: TextIO) -> dict[str, int]:
    """Read every page and write its records to ``sink``; return the counts."""
    auth_token = "Basic " + base64.b64encode(
        f"{args.client_id}:{args.client_secret}".encode()
    ).decode("ascii")
    header = {"Authorization": auth_token}
    url = f"{args.api_url.rstrip('/')}/api-2.0/organizations/{args.organization_id}/{ENDPOINT_PATH}"
    query = {f"fields[{RECORD_CLASS}]": args.fields, "page_size": str(args.page_size)}
    get = _getter(session=not args.no_session)
    if args.threads > 1:
        pages = threaded_pages(get, url, header, query, args.threads)
    else:
        pages = sequential_pages(get, url, header, query)
    records = 0
    page_count = 0
    for results in pages:
        page_count += 1
        sink.writelines(json.dumps(record) + "\n" for record in results)
        records += len(results)
    sink.flush()
    return {"records": records, "pages": page_count}


def main() -> int:
    """Run one variant and summarize it on stderr."""
    args = _parser().parse_args()
    summary = run(args, sys.stdout)
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
