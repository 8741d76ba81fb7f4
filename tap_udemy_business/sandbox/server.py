"""The sandbox portal: a local HTTP server that answers like the Udemy Business API.

Why ``http.server.ThreadingHTTPServer`` and not an async framework or WSGI server: it is in the
standard library, so the sandbox adds no dependency to the tap; one thread per connection fits a
server whose only slow paths are deliberate sleeps (latency, slow answers), which would need an
executor under asyncio anyway; and it is fast enough: pages are rendered once with ``orjson`` and
kept as bytes in an LRU cache, each answer is written with a single ``sendall`` over an HTTP/1.1
keep-alive connection with ``TCP_NODELAY``, so the Python request parsing (~0.1 ms) is the cost and
a single core serves thousands of 100-record pages a second, well above what a tap consumes.

Everything here follows ``docs/sandbox-design.md``: routing, HTTP Basic auth, page-number paging
with Django-REST-framework-style ``next``/``previous`` links, ``fields[<class>]`` projections,
filters, faults (``faults.py``) and a request log for tests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import hmac
import math
import re
import socket
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import date, datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple, Self, cast
from urllib.parse import parse_qs, parse_qsl, urlencode

import orjson

from tap_udemy_business.sandbox.faults import NO_FAULT, FaultInjector, FaultKind, FaultParams
from tap_udemy_business.sandbox.model import (
    Dataset,
    DatasetParams,
    Filters,
)

if TYPE_CHECKING:
    from types import TracebackType

    from tap_udemy_business.sandbox.model import Selection

API_PREFIX = "/api-2.0/organizations/"
ROUTES: dict[str, str] = {
    "courses/list/": "courses",
    "learning-paths/list/": "learning_paths",
    "analytics/user-activity/": "user_activity",
    "analytics/user-course-activity/": "user_course_activity",
    "analytics/user-progress/": "user_progress",
    "analytics/user-path-activity/": "user_path_activity",
}
LEARNING_PATH_ENDPOINTS = frozenset({"learning_paths", "user_path_activity"})
ENDPOINT_PATHS: dict[str, str] = {endpoint: path for path, endpoint in ROUTES.items()}
LEARNER_ENDPOINTS = frozenset(
    {"user_activity", "user_course_activity", "user_progress", "user_path_activity"}
)
DATE_FILTERED = LEARNER_ENDPOINTS
COURSE_FILTERED = frozenset({"user_course_activity", "user_progress"})
DEFAULT_PAGE_SIZE = 12
MAX_PAGE_SIZE = 100
FOREIGN_HOST = "127.0.0.2"
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_RE = re.compile(r"[+-]?\d{1,18}")
_REASONS = {520: "Web Server Returned an Unknown Error", 524: "A Timeout Occurred"}
_INVALID_JSON_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the portal saw it, so tests can check what a client actually sent.

    ``status`` is 0 for a connection dropped on purpose (nothing was answered).
    """

    path: str
    query: dict[str, str]
    auth_ok: bool
    status: int
    host: str
    #: Bytes of the response body (0 when nothing was answered).
    bytes: int = 0
    #: The query string exactly as sent (``query`` keeps one value per name).
    raw_query: str = ""


class _ApiError(Exception):
    """An error answer; raised deep in request handling, rendered once at the top."""

    def __init__(self, status: int, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"detail": detail}
        if parameter is not None:
            self.body["parameter"] = parameter


class _Page(NamedTuple):
    """A page before its envelope is written: the links depend on the host the client used."""

    total: int
    page: int
    pages: int
    results: bytes


class _ByteLRU:
    """An LRU of rendered bytes bounded by their total size, not their number."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._size = 0
        self._items: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[Any, ...], value: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = value
            self._size += len(value)
            while self._size > self._budget and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _reason(status: int) -> str:
    """The reason phrase, including the Cloudflare statuses the standard library lacks."""
    try:
        return _REASONS.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _parse_date(query: dict[str, str], name: str) -> date | None:
    raw = query.get(name, "")
    if not raw:
        return None
    if _DATE_RE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise _ApiError(400, f"Invalid {name} {raw!r}: expected a date as YYYY-MM-DD.", name)


def _parse_int(query: dict[str, str], name: str, default: int | None, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None or (raw == "" and default is None):
        return default
    if not _INT_RE.fullmatch(raw) or int(raw) < minimum:
        raise _ApiError(400, f"Invalid {name} {raw!r}: expected an integer >= {minimum}.", name)
    return int(raw)


def _filters_key(filters: Filters) -> tuple[Any, ...]:
    """A hashable key for cache lookups, whatever ``Filters``' own hashability."""
    return (filters.from_date, filters.to_date, filters.course_id, filters.user_email)


def _coerce_date(value: date | str | None, name: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return _parse_date({name: value}, name)


class SandboxPortal:
    """A simulated Udemy Business portal serving one organization over HTTP on loopback.

    Example:
        with SandboxPortal(dataset=DatasetParams(learners=50)) as portal:
            config = portal.tap_config()  # api_url, organization_id, client_id, ...
    """

    def __init__(  # noqa: PLR0913 - every knob is a keyword the tests and the CLI set
        self,
        dataset: DatasetParams | None = None,
        faults: FaultParams | None = None,
        *,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",  # noqa: S107 - a local fake's password
        organization_id: int = 424242,
        host: str = "127.0.0.1",
        port: int = 0,
        page_cache_bytes: int = 512 * 1024 * 1024,
        request_log_size: int = 200_000,
    ) -> None:
        """Generate nothing yet (the dataset is lazy); bind only on ``start()``."""
        self.client_id = client_id
        self.client_secret = client_secret
        self.organization_id = organization_id
        self._host = host
        self._port = port
        self._dataset = Dataset(dataset if dataset is not None else DatasetParams())
        self._expected_auth = "Basic " + base64.b64encode(
            f"{client_id}:{client_secret}".encode()
        ).decode("ascii")
        self._injector = FaultInjector(faults if faults is not None else FaultParams())
        self._faults_lock = threading.Lock()
        self._model_lock = threading.RLock()
        self._pages = _ByteLRU(page_cache_bytes)
        self._selections: OrderedDict[tuple[Any, ...], Selection] = OrderedDict()
        self._log: deque[RequestRecord] = deque(maxlen=request_log_size)
        self._log_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        #: Statuses to answer instead of data, by endpoint key: 403 or 404 plays a missing
        #: feature or scope, 301/302 a redirect to another (loopback) host.
        self.endpoint_status: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and serve in a daemon thread; return ``self`` so it chains."""
        if self._server is not None:
            msg = "the portal is already running"
            raise RuntimeError(msg)
        server = _Server((self._host, self._port), _Handler)
        server.portal = self
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            daemon=True,
            name=f"sandbox-portal-{self._port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, so no stale answer leaks out."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        """Start unless already started."""
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()

    # -- public surface --------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Where the portal answers, e.g. ``http://127.0.0.1:41234`` (the tap's ``api_url``)."""
        if self._server is None:
            msg = "start() the portal first: the port is chosen when it binds"
            raise RuntimeError(msg)
        host = "127.0.0.1" if self._host in {"", "0.0.0.0"} else self._host  # noqa: S104
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the requested one until ``start()``)."""
        return self._port

    @property
    def dataset(self) -> Dataset:
        """The data model behind the portal."""
        return self._dataset

    def tap_config(self) -> dict[str, Any]:
        """A tap configuration pointing at this portal."""
        return {
            "api_url": self.base_url,
            "organization_id": self.organization_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "portal_name": "sandbox",
        }

    @property
    def learning_paths_status(self) -> int:
        """What the learning-path endpoints answer: 200, or 403/404 for a portal without."""
        return self.endpoint_status.get("learning_paths", HTTPStatus.OK)

    @learning_paths_status.setter
    def learning_paths_status(self, status: int) -> None:
        for endpoint in LEARNING_PATH_ENDPOINTS:
            if status == HTTPStatus.OK:
                self.endpoint_status.pop(endpoint, None)
            else:
                self.endpoint_status[endpoint] = status

    def http_date(self) -> str:
        """The portal's clock for the `Date` header: its `today`, at the real time of day.

        Clients read "yesterday" (where reporting data ends) from it, so advancing the
        portal's clock moves their window too, as the real API's date would.
        """
        now = datetime.now(timezone.utc)
        simulated = datetime.combine(self._dataset.today, now.time(), timezone.utc)
        return email.utils.format_datetime(simulated, usegmt=True)

    @property
    def faults(self) -> FaultParams:
        """The faults in force."""
        return self._injector.params

    @faults.setter
    def faults(self, params: FaultParams) -> None:
        """Switch faults at runtime; counters and rate-limit buckets start afresh."""
        with self._faults_lock:
            self._injector = FaultInjector(params)

    def advance(self, days: int = 1) -> None:
        """Move the portal's clock, revealing new activity, and drop the now-stale caches."""
        with self._model_lock:
            self._dataset.advance(days=days)
            self._selections.clear()
        self._pages.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served, oldest first (bounded: the oldest are forgotten)."""
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._log_lock:
            self._log.clear()

    def ground_truth(
        self,
        endpoint_key: str,
        from_date: date | str | None = None,
        to_date: date | str | None = None,
        course_id: int | None = None,
        user_email: str | None = None,
    ) -> list[dict[str, Any]]:
        """All records (``@all``) the API holds for these filters, to compare a tap's output with.

        Filters that do not apply to the endpoint are ignored, exactly as over HTTP.
        """
        self._check_endpoint(endpoint_key)
        filters = self._applicable(
            endpoint_key,
            Filters(
                from_date=_coerce_date(from_date, "from_date"),
                to_date=_coerce_date(to_date, "to_date"),
                course_id=course_id,
                user_email=user_email,
            ),
        )
        with self._model_lock:
            selection = self._selection(endpoint_key, filters, self._dataset.today)
            return selection.rows(0, selection.count)

    def prerender(
        self,
        endpoint_key: str,
        page_size: int = MAX_PAGE_SIZE,
        *,
        fields: str = "@all",
        **filters: Any,
    ) -> int:
        """Render every page of a query into the cache, so a benchmark measures the client.

        Args:
            endpoint_key: The endpoint, e.g. ``"user_progress"``.
            page_size: The page size the client will ask for.
            fields: The ``fields[<class>]`` value the client will send.
            **filters: ``from_date``, ``to_date``, ``course_id``, ``user_email`` as the client
                will send them (strings or values).

        Returns:
            The number of pages rendered (they stay cached while they fit ``page_cache_bytes``).
        """
        self._check_endpoint(endpoint_key)
        query = {key: str(value) for key, value in filters.items() if value is not None}
        query["page_size"] = str(page_size)
        query[f"fields[{self._dataset.class_name(endpoint_key)}]"] = fields
        page = self._page(endpoint_key, query)
        for number in range(2, page.pages + 1):
            query["page"] = str(number)
            self._page(endpoint_key, query)
        return page.pages

    # -- request handling (called from handler threads) -----------------------------------
    def _authorized(self, header: str | None) -> bool:
        if header is None:
            return False
        if hmac.compare_digest(header, self._expected_auth):
            return True
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded, f"{self.client_id}:{self.client_secret}")

    def _log_request(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(record)

    def _register(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    @staticmethod
    def _check_endpoint(endpoint_key: str) -> None:
        if endpoint_key not in ENDPOINT_PATHS:
            msg = f"unknown endpoint {endpoint_key!r}; expected one of {sorted(ENDPOINT_PATHS)}"
            raise ValueError(msg)

    @staticmethod
    def _applicable(endpoint: str, filters: Filters) -> Filters:
        """Keep only the filters the endpoint supports; the API ignores the others."""
        dated = endpoint in DATE_FILTERED
        return Filters(
            from_date=filters.from_date if dated else None,
            to_date=filters.to_date if dated else None,
            course_id=filters.course_id if endpoint in COURSE_FILTERED else None,
            user_email=filters.user_email if endpoint in LEARNER_ENDPOINTS else None,
        )

    @staticmethod
    def _parse_filters(endpoint: str, query: dict[str, str]) -> Filters:
        """Validate the filters that apply to ``endpoint``; others are not even looked at."""
        dated = endpoint in DATE_FILTERED
        email = query.get("user_email") if endpoint in LEARNER_ENDPOINTS else None
        return Filters(
            from_date=_parse_date(query, "from_date") if dated else None,
            to_date=_parse_date(query, "to_date") if dated else None,
            course_id=(
                _parse_int(query, "course_id", None, -(10**18))
                if endpoint in COURSE_FILTERED
                else None
            ),
            user_email=email or None,
        )

    def _fields(self, endpoint: str, query: dict[str, str]) -> tuple[str, ...] | None:
        """The requested field names, sorted (a cache key); ``None`` means every field.

        Only the key naming the records' own `_class` counts: any other `fields[...]` is
        ignored and the default field set answered, as the API does.
        """
        raw = query.get(f"fields[{self._dataset.class_name(endpoint)}]", "@default")
        sets = self._dataset.field_sets(endpoint)
        names: set[str] = set()
        for part in (piece.strip() for piece in raw.split(",")):
            if part == "@all":
                return None
            if part in sets:
                names.update(sets[part])
            elif part:
                names.add(part)
        return tuple(sorted(names))

    def _selection(self, endpoint: str, filters: Filters, today: date) -> Selection:
        """The model's selection for a query, memoized (callers hold the model lock)."""
        key = (endpoint, _filters_key(filters), today)
        selection = self._selections.get(key)
        if selection is None:
            selection = self._dataset.select(endpoint, filters)
            self._selections[key] = selection
            while len(self._selections) > 64:  # noqa: PLR2004 - a small, fixed memo
                self._selections.popitem(last=False)
        else:
            self._selections.move_to_end(key)
        return selection

    def _page(self, endpoint: str, query: dict[str, str]) -> _Page:
        """Validate a query and return its page, from the cache when possible."""
        page = cast("int", _parse_int(query, "page", 1, 1))
        size = min(cast("int", _parse_int(query, "page_size", DEFAULT_PAGE_SIZE, 1)), MAX_PAGE_SIZE)
        filters = self._parse_filters(endpoint, query)
        fields = self._fields(endpoint, query)
        with self._model_lock:
            today = self._dataset.today
            selection = self._selection(endpoint, filters, today)
        count = selection.count
        pages = max(1, math.ceil(count / size))
        if page > pages:
            raise _ApiError(404, "Invalid page.")
        key = (endpoint, _filters_key(filters), fields, page, size, today)
        results = self._pages.get(key)
        if results is None:
            with self._model_lock:
                rows = selection.rows((page - 1) * size, min(page * size, count))
            if fields is not None:
                wanted = {"_class", "id", *fields}
                rows = [{k: v for k, v in row.items() if k in wanted} for row in rows]
            results = orjson.dumps(rows)
            self._pages.put(key, results)
        return _Page(count, page, pages, results)


def _link(host: str, path: str, raw_query: str, page: int) -> str:
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


def _envelope(page: _Page, host: str, path: str, raw_query: str, next_host: str = "") -> bytes:
    """The page's JSON: links are written per request, the cached results spliced in as bytes."""
    nxt = None
    if page.page < page.pages:
        nxt = _link(next_host or host, path, raw_query, page.page + 1)
    prev = _link(host, path, raw_query, page.page - 1) if page.page > 1 else None
    head = orjson.dumps({"count": page.total, "next": nxt, "previous": prev})
    return head[:-1] + b',"results":' + page.results + b"}"


def _foreign_host(host: str, port: int) -> str:
    """Another loopback host with the client's port: safe to point at, wrong to follow."""
    _, colon, tail = host.rpartition(":")
    name = FOREIGN_HOST if not host.startswith(FOREIGN_HOST) else "127.0.0.3"
    return f"{name}:{tail if colon and tail.isdigit() else port}"


class _Server(ThreadingHTTPServer):
    """The listening socket; handler threads are daemons so a hung client never blocks exit."""

    daemon_threads = True
    request_queue_size = 128
    portal: SandboxPortal


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection (many requests with keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "UdemySandbox/1.0"
    timeout = 120  # idle keep-alive connections are closed after this many seconds

    def setup(self) -> None:
        """Disable Nagle: a page is one write, so waiting to coalesce only adds latency."""
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        self._portal()._register(self.connection, add=True)  # noqa: SLF001

    def finish(self) -> None:
        """Forget the connection once it is closed."""
        self._portal()._register(self.connection, add=False)  # noqa: SLF001
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Stay silent: per-request logging costs time and floods test output."""

    def _portal(self) -> SandboxPortal:
        return cast("_Server", self.server).portal

    def _send(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Write status line, headers and body with a single ``sendall``."""
        lines = [
            f"HTTP/1.1 {status} {_reason(status)}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"Date: {self._portal().http_date()}",
            # The portal's calendar is simulated (advance() moves it): a client on this
            # machine may trust a `Date` days away from its own clock.
            "X-Sandbox-Clock: simulated",
            *(f"{name}: {value}" for name, value in headers),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head if getattr(self, "command", "") == "HEAD" else head + body)
        except OSError:  # the client gave up (e.g. timed out on a slow answer)
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer requests http.server rejects itself (malformed, unknown method) in JSON too."""
        del explain  # the JSON detail says it all
        self.close_connection = True
        self._send(code, orjson.dumps({"detail": message or _reason(code)}))

    def _start(self) -> None:
        """Parse what every answer needs (and the request log records)."""
        self._raw_path, _, self._raw_query = self.path.partition("?")
        self._query = dict(parse_qsl(self._raw_query, keep_blank_values=True))
        self._host = self.headers.get("Host") or f"127.0.0.1:{self._portal().port}"
        self._auth_ok = False
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) > 0:  # a body nobody asked for: keep the stream framed
            self.rfile.read(min(int(length), 1 << 20))
            self.close_connection = self.close_connection or int(length) > 1 << 20

    def _record(self, status: int, size: int = 0) -> None:
        """Log before answering, so a client that has its answer always finds it logged."""
        record = RequestRecord(
            self._raw_path, self._query, self._auth_ok, status, self._host, size, self._raw_query
        )
        self._portal()._log_request(record)  # noqa: SLF001

    def _answer(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self._record(status, len(body))
        self._send(status, body, headers)

    def _not_allowed(self) -> None:
        self._start()
        body = orjson.dumps({"detail": f'Method "{self.command}" not allowed.'})
        self._answer(405, body, ("Allow", "GET"))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _not_allowed  # noqa: N815

    def do_GET(self) -> None:
        """Answer one GET: latency, rate limit, routing, auth, the page, then the drawn fault."""
        self._start()
        portal = self._portal()
        injector = portal._injector  # noqa: SLF001 - read once: it may be swapped meanwhile
        header = self.headers.get("Authorization")
        self._auth_ok = portal._authorized(header)  # noqa: SLF001
        if injector.latency_seconds:
            time.sleep(injector.latency_seconds)
        retry_after = injector.admit(header or "")
        if retry_after is not None:
            detail = f"Request was throttled. Expected available in {retry_after} seconds."
            self._answer(429, orjson.dumps({"detail": detail}), ("Retry-After", str(retry_after)))
            return
        org, _, route = self._raw_path.removeprefix(API_PREFIX).partition("/")
        endpoint = ROUTES.get(route) if self._raw_path.startswith(API_PREFIX) else None
        if endpoint is None:
            self._answer(404, orjson.dumps({"detail": "Not found."}))
        elif not self._auth_ok:
            body = orjson.dumps({"detail": "Invalid username/password."})
            self._answer(401, body, ("WWW-Authenticate", 'Basic realm="api"'))
        elif org != str(portal.organization_id):
            self._answer(404, orjson.dumps({"detail": "Not found."}))
        elif (status := portal.endpoint_status.get(endpoint)) is not None:
            if HTTPStatus.MULTIPLE_CHOICES <= status < HTTPStatus.BAD_REQUEST:
                elsewhere = f"http://{_foreign_host(self._host, portal.port)}{self.path}"
                self._answer(status, orjson.dumps({"detail": "Moved."}), ("Location", elsewhere))
            else:
                self._answer(status, orjson.dumps({"detail": _reason(status)}))
        else:
            try:
                page = portal._page(endpoint, self._query)  # noqa: SLF001
            except _ApiError as error:
                self._reply(injector, error.status, orjson.dumps(error.body), None)
            else:
                self._reply(injector, 200, b"", page)

    def _reply(self, injector: FaultInjector, status: int, body: bytes, page: _Page | None) -> None:
        """Send the answer, or what the fault drawn for this request makes of it."""
        decision = NO_FAULT
        if injector.active:
            canonical = self._raw_path + "?" + urlencode(sorted(self._query.items()))
            has_next = page is not None and page.page < page.pages
            decision = injector.decide(canonical, has_next=has_next)
        kind = decision.kind
        if page is not None:
            next_host = ""
            if kind is FaultKind.FOREIGN_NEXT:
                next_host = _foreign_host(self._host, self._portal().port)
            body = _envelope(page, self._host, self._raw_path, self._raw_query, next_host)
        if kind in {FaultKind.NONE, FaultKind.FOREIGN_NEXT}:
            self._answer(status, body)
        elif kind is FaultKind.ERROR:
            body = orjson.dumps({"detail": _reason(decision.status)})
            self._answer(decision.status, body)
        elif kind is FaultKind.TRUNCATED_JSON:
            self._answer(status, body[: max(1, len(body) // 2)])
        elif kind is FaultKind.INVALID_JSON:
            self._answer(status, _INVALID_JSON_BODY)
        elif kind is FaultKind.SLOW:
            self._record(status, len(body))
            time.sleep(injector.params.slow_seconds)
            self._send(status, body)
        else:  # DROP: close without a word; the client sees the connection end
            self._record(0)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
