"""Paging against servers that lie: the `next` links are the truth, and `count` only a hint.

Each test runs the real tap, over real HTTP, against a small list endpoint in this file
that misbehaves on purpose: a `count` that says too little or far too much, rows deleted
or added between two pages, `next` links into another organization, endpoint or scheme,
and a legal JSON escape that orjson refuses. None of them may cost a row silently.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
import threading
import typing as t
from contextlib import redirect_stdout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode

import pytest

from tap_udemy_business import concurrency, retries
from tap_udemy_business.errors import UdemyFatalError, UnsafeLinkError
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import POLL, SyncResult, catalog_selecting

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

ORGANIZATION = 424242
PATH = f"/api-2.0/organizations/{ORGANIZATION}/courses/list/"
OTHER_ORGANIZATION = "/api-2.0/organizations/999/courses/list/"
OTHER_ENDPOINT = f"/api-2.0/organizations/{ORGANIZATION}/learning-paths/list/"
PAGE_SIZE = 100


def courses(first: int, number: int) -> list[dict[str, t.Any]]:
    return [
        {"_class": "course", "id": n, "title": f"Course {n}"} for n in range(first, first + number)
    ]


@dataclass
class Asked:
    """One request of the tap's, as the hostile list sees it."""

    path: str
    params: dict[str, str]
    page: int
    size: int
    origin: str  # scheme://host:port the tap asked

    @property
    def main(self) -> bool:
        """Whether it is a page of the query (not the stream's one-record probe)."""
        return self.size == PAGE_SIZE

    def link(self, page: int, path: str = PATH, origin: str | None = None) -> str:
        params = {**self.params, "page": str(page)}
        return f"{origin or self.origin}{path}?{urlencode(sorted(params.items()))}"


class HostileList:
    """The courses endpoint of one organization, over HTTP on 127.0.0.1, lying on demand.

    By default it pages `rows` as the API does (Django REST framework): `count`, `next`
    links keeping every parameter, 404 past the last page. A test replaces `count`,
    `next_link` or `after` (run once a page's answer is made, to change the list between
    two reads), and may serve rows at other paths, to see whether the tap follows a link
    there.
    """

    def __init__(self, rows: list[dict[str, t.Any]], *, tls: ssl.SSLContext | None = None) -> None:
        self.rows = rows
        self.elsewhere: dict[str, list[dict[str, t.Any]]] = {}
        #: What a page says `count` is, from the request and the list's true length.
        self.count: Callable[[Asked, int], int] = lambda _asked, total: total
        self.next_link: Callable[[Asked, bool], str | None] = _drf_next
        self.after: Callable[[Asked], None] = lambda _asked: None
        self.asked: list[Asked] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs=POLL, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> t.Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def config(self, concurrency: int, **settings: t.Any) -> dict[str, t.Any]:
        return {
            "api_url": self.url,
            "organization_id": ORGANIZATION,
            "client_id": "hostile-client",
            "client_secret": "hostile-secret-0123",
            "page_size": PAGE_SIZE,
            "max_concurrent_requests": concurrency,
            "max_retries": 0,
            **settings,
        }

    def answer(self, raw_path: str) -> tuple[int, bytes]:
        path, _, query = raw_path.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        page, size = int(params.get("page", "1")), int(params.get("page_size", "12"))
        asked = Asked(path, params, page, size, self.url)
        with self._lock:
            self.asked.append(asked)
            rows = self.rows if path == PATH else self.elsewhere.get(path)
            if rows is None:
                return 404, b'{"detail": "Not found."}'
            if page > max(1, -(-len(rows) // size)):
                return 404, b'{"detail": "Invalid page."}'
            results = rows[(page - 1) * size : page * size]
            more = page * size < len(rows)
            body = {
                "count": self.count(asked, len(rows)),
                "next": self.next_link(asked, more),
                "previous": None,
                "results": results,
            }
            self.after(asked)
        return 200, json.dumps(body).encode()  # ensure_ascii: a lone surrogate is escaped

    def main_pages(self) -> list[int]:
        """The page numbers of the query the tap asked for, in the order it asked."""
        return [a.page for a in self.asked if a.path == PATH and a.main]


def _drf_next(asked: Asked, more: bool) -> str | None:
    return asked.link(asked.page + 1, asked.path) if more else None


def _handler(hostile: HostileList) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # the head and the body are two writes: send both now

        def do_GET(self) -> None:
            status, body = hostile.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            """Quiet."""

    return Handler


def sync(config: dict[str, t.Any]) -> tuple[SyncResult, Exception | None]:
    """Run the tap in-process on the courses stream; what it printed, and how it ended."""
    catalog = catalog_selecting(config, ("courses",))
    tap = TapUdemyBusiness(config=config, catalog=catalog, parse_env_config=False)
    out = io.StringIO()
    error: Exception | None = None
    with redirect_stdout(out):
        try:
            tap.sync_all()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            error = exc
    return SyncResult.from_lines(out.getvalue()), error


def ids(result: SyncResult) -> list[int]:
    return [record["id"] for record in result.records.get("courses", [])]


def count_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    words = ("'count'", "grew while it was read")
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and any(w in r.getMessage() for w in words)
    ]


CONCURRENCIES = pytest.mark.parametrize("concurrency", [1, 8], ids=["sequential", "concurrent"])


# 1. `count` at or below the first page's own records, while `next` goes on


@CONCURRENCIES
@pytest.mark.parametrize("told", [PAGE_SIZE, 7, 0], ids=["its-own-records", "below", "zero"])
def test_a_count_that_says_too_little_still_reads_every_page_the_links_lead_to(
    concurrency: int, told: int, caplog: pytest.LogCaptureFixture
) -> None:
    with HostileList(courses(0, 250)) as hostile:
        hostile.count = lambda asked, total: told if asked.main else total
        result, error = sync(hostile.config(concurrency))
    assert error is None
    assert ids(result) == list(range(250))
    assert hostile.main_pages() == [1, 2, 3]
    (warning,) = count_warnings(caplog)  # one per query
    assert f"{hostile.url}{PATH}" in warning
    assert f"'count' ({told})" in warning
    assert "250 rows in 3 pages" in warning


@CONCURRENCIES
def test_a_link_back_to_a_page_already_read_stops_however_it_is_spelled(concurrency: int) -> None:
    with HostileList(courses(0, 250)) as hostile:

        def next_link(asked: Asked, more: bool) -> str | None:
            if more or not asked.main:
                return _drf_next(asked, more)
            first = {k: v for k, v in asked.params.items() if k != "page"}  # as DRF links page 1
            return f"{asked.origin}{PATH}?{urlencode(sorted(first.items()))}"

        hostile.next_link = next_link
        result, error = sync(hostile.config(concurrency))
    assert isinstance(error, UdemyFatalError)
    assert "'next' links loop" in str(error)
    assert ids(result) == list(range(250)), "every row once: no page is read twice"
    assert sorted(hostile.main_pages()) == [1, 2, 3]


# 2. Rows deleted or added between two page reads


def _delete_after_page_one(hostile: HostileList) -> Callable[[Asked], None]:
    def after(asked: Asked) -> None:
        if asked.main and asked.page == 1:
            del hostile.rows[10:15]

    return after


@CONCURRENCIES
def test_rows_deleted_between_two_pages_stop_the_sync_before_a_short_window(
    concurrency: int,
) -> None:
    with HostileList(courses(0, 250)) as hostile:
        hostile.after = _delete_after_page_one(hostile)
        result, error = sync(hostile.config(concurrency))
    assert isinstance(error, UdemyFatalError)
    message = str(error)
    assert "the list changed while it was read (count 250 → 245)" in message
    assert f"{hostile.url}{PATH}?" in message
    assert "page=2" in message
    assert "run the sync again" in message
    assert ids(result) == list(range(100)), "nothing of the shifted pages is emitted"


def test_a_list_that_changed_is_one_clear_line_and_a_failed_exit(tmp_path: Path) -> None:
    with HostileList(courses(0, 250)) as hostile:
        hostile.after = _delete_after_page_one(hostile)
        config = hostile.config(8)
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config))
        catalog_file = tmp_path / "catalog.json"
        catalog_file.write_text(json.dumps(catalog_selecting(config, ("courses",))))
        done = subprocess.run(
            [
                *(sys.executable, "-m", "tap_udemy_business"),
                *("--config", str(config_file), "--catalog", str(catalog_file)),
            ],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "Sync failed" in line]
    assert len(errors) == 1
    assert "count 250 → 245" in errors[0]
    assert "Traceback" not in done.stderr


@CONCURRENCIES
def test_rows_added_between_two_pages_lose_nothing_and_say_so(
    concurrency: int, caplog: pytest.LogCaptureFixture
) -> None:
    with HostileList(courses(0, 250)) as hostile:

        def after(asked: Asked) -> None:
            if asked.main and asked.page == 1:
                hostile.rows[:0] = courses(1000, 5)  # five late rows, ahead of the rest

        hostile.after = after
        result, error = sync(hostile.config(concurrency))
    assert error is None
    assert set(ids(result)) == set(range(250)), "every row there at the start is emitted"
    (warning,) = count_warnings(caplog)
    assert "grew while it was read (count 250 → 255)" in warning
    assert "sent twice" in warning


# 3. `next` links that leave the query's organization, endpoint or scheme


@CONCURRENCIES
@pytest.mark.parametrize("elsewhere", [OTHER_ORGANIZATION, OTHER_ENDPOINT], ids=["org", "endpoint"])
@pytest.mark.parametrize("on_page", [1, 2])
def test_a_next_link_into_another_organization_or_endpoint_is_refused(
    concurrency: int, elsewhere: str, on_page: int
) -> None:
    with HostileList(courses(0, 250)) as hostile:
        hostile.elsewhere[elsewhere] = courses(9000, 250)

        def next_link(asked: Asked, more: bool) -> str | None:
            if asked.main and asked.page == on_page:
                return asked.link(asked.page + 1, elsewhere)
            return _drf_next(asked, more)

        hostile.next_link = next_link
        result, error = sync(hostile.config(concurrency))
    assert isinstance(error, UnsafeLinkError)
    assert f"points to another path ({elsewhere}, not {PATH})" in str(error)
    assert f"{PATH}?" in str(error)
    assert {a.path for a in hostile.asked} == {PATH}, "no request left the query's path"
    assert ids(result) == list(range(on_page * PAGE_SIZE))


def test_a_next_link_from_http_to_https_on_the_same_host_is_another_scheme() -> None:
    with HostileList(courses(0, 250)) as hostile:
        secure = hostile.url.replace("http://", "https://")
        hostile.next_link = lambda asked, more: asked.link(2, origin=secure) if more else None
        result, error = sync(hostile.config(8))
    assert isinstance(error, UnsafeLinkError)
    assert "points to another scheme (https, not http)" in str(error)
    assert "another host" not in str(error)
    assert ids(result) == list(range(100))


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1, trusted by the tap."""
    # .ci/run installs openssl where it is missing: a test that cannot run fails, never skips.
    assert shutil.which("openssl"), "openssl is needed to make a certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_a_next_link_from_https_to_http_on_the_same_host_is_another_scheme(
    tls: ssl.SSLContext,
) -> None:
    with HostileList(courses(0, 250), tls=tls) as hostile:
        plain = hostile.url.replace("https://", "http://")
        hostile.next_link = lambda asked, more: asked.link(2, origin=plain) if more else None
        result, error = sync(hostile.config(8))
    assert isinstance(error, UnsafeLinkError)
    assert "points to another scheme (http, not https)" in str(error)
    assert ids(result) == list(range(100)), "page 1 came over https; nothing over http"


# 4. A `count` of 10**8 or 10**9 over two real pages


@pytest.mark.parametrize("told", [10**8, 10**9])
def test_a_huge_count_is_planned_lazily_and_the_links_decide_where_it_ends(
    told: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    planned = 0

    class CountedSlot(concurrency._Slot):
        """Every page the reader plans is one of these: count them, and stop a runaway."""

        __slots__ = ()

        def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
            nonlocal planned
            planned += 1
            if planned > 10_000:
                message = f"{planned} pages planned for 2 real ones"
                raise AssertionError(message)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrency, "_Slot", CountedSlot)
    workers = 8
    with HostileList(courses(0, 2 * PAGE_SIZE)) as hostile:
        hostile.count = lambda _asked, _total: told
        result, error = sync(hostile.config(workers))
    assert error is None
    assert ids(result) == list(range(2 * PAGE_SIZE))
    window = 2 * workers  # pages requested ahead of the one being emitted
    assert planned <= 2 + window
    assert len(hostile.asked) <= 2 + window  # the probe, page 1, and at most the window
    (warning,) = count_warnings(caplog)
    assert f"'count' ({told})" in warning
    assert "200 rows in 2 pages" in warning


# 5. A legal escaped lone surrogate


def test_an_escaped_lone_surrogate_is_parsed_not_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(retries, "RETRY_BASE_SECONDS", 0.005)
    rows = courses(0, 5)
    rows[3]["title"] = "Caf\ud83d"  # half an emoji: json.dumps escapes it as \ud83d
    rows[3]["headline"] = "\ud83d\ude00 whole"  # a pair, which is one character
    rows[4]["title"] = "\udc00 low"
    with HostileList(rows) as hostile:
        result, error = sync(hostile.config(8, max_retries=2))
    assert error is None
    records = result.records["courses"]
    assert [r["id"] for r in records] == [0, 1, 2, 3, 4]
    assert records[3]["title"] == "Caf\ufffd"
    assert records[3]["headline"] == "\U0001f600 whole"
    assert records[4]["title"] == "\ufffd low"
    assert hostile.main_pages() == [1], "a legal body is not retried"
    warnings = [r.getMessage() for r in caplog.records if "lone UTF-16 surrogate" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{hostile.url}{PATH}?" in warnings[0]
    assert "2 string(s)" in warnings[0]
