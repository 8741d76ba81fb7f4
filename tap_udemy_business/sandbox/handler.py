"""The portal's HTTP plumbing: the listening server, its connection threads, and the handler.

Why ``http.server.ThreadingHTTPServer`` and not an async framework or WSGI server: it is in the
standard library, so the sandbox adds no dependency to the tap; one thread per connection fits a
server whose only slow paths are deliberate waits (latency, slow answers), which would need an
executor under asyncio anyway; and it is fast enough: pages come rendered from the page cache,
each answer is written with a single ``sendall`` over an HTTP/1.1 keep-alive connection with
``TCP_NODELAY``, so the Python request parsing (~0.1 ms) is the cost.

`PortalServer` names and tracks every connection thread, so that `close` ends them all (their
sockets shut, their deliberate waits cut short) and nothing of a stopped portal keeps running.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode

import orjson
from typing_extensions import override

from tap_udemy_business.sandbox.faults import NO_FAULT, FaultInjector, FaultKind
from tap_udemy_business.sandbox.paging import envelope
from tap_udemy_business.sandbox.request_log import RequestRecord
from tap_udemy_business.sandbox.routes import API_PREFIX, ROUTES, ApiError, reason

if TYPE_CHECKING:
    from tap_udemy_business.sandbox.page_cache import Page
    from tap_udemy_business.sandbox.server import SandboxPortal

FOREIGN_HOST = "127.0.0.2"
_INVALID_JSON_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)


def foreign_host(host: str, port: int) -> str:
    """Another loopback host with the client's port: safe to point at, wrong to follow."""
    _, colon, tail = host.rpartition(":")
    name = FOREIGN_HOST if not host.startswith(FOREIGN_HOST) else "127.0.0.3"
    return f"{name}:{tail if colon and tail.isdigit() else port}"


class PortalServer(ThreadingHTTPServer):
    """The listening socket, and one named, tracked daemon thread per connection.

    Daemon threads, so a hung client never blocks the interpreter's exit; tracked, so that
    `close` can end them rather than leave them to die with the process.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], portal: SandboxPortal) -> None:
        """Bind (not serve yet) for `portal`."""
        super().__init__(address, _Handler)
        self.portal = portal
        #: Set by `close`: deliberate waits (latency, slow answers) end at once.
        self.stopping = threading.Event()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()

    def connection_threads(self) -> list[threading.Thread]:
        """The threads serving a connection right now."""
        with self._connections_lock:
            return list(self._connections.values())

    @override
    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread named after the portal's, tracked until it ends."""
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"{self.portal.thread_name}-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - what http.server does: report and go on
            self.handle_error(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)
            self.shutdown_request(request)

    @override
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent about a client gone or a connection cut by `close`; report the rest."""
        if self.stopping.is_set():
            return
        super().handle_error(request, client_address)

    def close(self, timeout: float) -> None:
        """Stop accepting, cut every open connection, and wait (up to `timeout`) for threads.

        Must not run on the serving thread itself (`shutdown` waits for its loop).
        """
        self.shutdown()
        self.server_close()
        self.stopping.set()
        with self._connections_lock:
            connections = dict(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        for thread in connections.values():
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection (many requests with keep-alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "UdemySandbox/1.0"
    timeout = 120  # idle keep-alive connections are closed after this many seconds

    @override
    def setup(self) -> None:
        """Disable Nagle: a page is one write, so waiting to coalesce only adds latency."""
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: per-request logging costs time and floods test output."""

    def _server(self) -> PortalServer:
        return cast("PortalServer", self.server)

    def _send(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Write status line, headers and body with a single ``sendall``."""
        lines = [
            f"HTTP/1.1 {status} {reason(status)}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"Date: {self._server().portal.http_date()}",
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

    @override
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer requests http.server rejects itself (malformed, unknown method) in JSON too."""
        del explain  # the JSON detail says it all
        self.close_connection = True
        self._send(code, orjson.dumps({"detail": message or reason(code)}))

    def _start(self) -> None:
        """Parse what every answer needs (and the request log records)."""
        self._raw_path, _, self._raw_query = self.path.partition("?")
        self._query = dict(parse_qsl(self._raw_query, keep_blank_values=True))
        self._host = self.headers.get("Host") or f"127.0.0.1:{self._server().portal.port}"
        self._auth_ok = False
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) > 0:  # a body nobody asked for: keep the stream framed
            self.rfile.read(min(int(length), 1 << 20))
            self.close_connection = self.close_connection or int(length) > 1 << 20

    def _record(
        self, status: int, size: int = 0, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Log before answering, so a client that has its answer always finds it logged."""
        record = RequestRecord(
            self._raw_path,
            self._query,
            self._auth_ok,
            status,
            self._host,
            size,
            self._raw_query,
            at=time.monotonic(),
            retry_after=next((value for name, value in headers if name == "Retry-After"), None),
        )
        self._server().portal._log.append(record)  # noqa: SLF001

    def _answer(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self._record(status, len(body), headers)
        self._send(status, body, headers)

    def _not_allowed(self) -> None:
        self._start()
        body = orjson.dumps({"detail": f'Method "{self.command}" not allowed.'})
        self._answer(405, body, ("Allow", "GET"))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _not_allowed  # noqa: N815

    def do_GET(self) -> None:
        """Answer one GET: latency, rate limit, routing, auth, the page, then the drawn fault."""
        self._start()
        server = self._server()
        portal = server.portal
        injector = portal._injector  # noqa: SLF001 - read once: it may be swapped meanwhile
        header = self.headers.get("Authorization")
        self._auth_ok = portal._authorized(header)  # noqa: SLF001
        if injector.latency_seconds:
            server.stopping.wait(injector.latency_seconds)
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
                elsewhere = f"http://{foreign_host(self._host, portal.port)}{self.path}"
                self._answer(status, orjson.dumps({"detail": "Moved."}), ("Location", elsewhere))
            else:
                self._answer(status, orjson.dumps({"detail": reason(status)}))
        else:
            try:
                page = portal._pages.page(endpoint, self._query)  # noqa: SLF001
            except ApiError as error:
                self._reply(injector, error.status, orjson.dumps(error.body), None)
            else:
                self._reply(injector, 200, b"", page)

    def _reply(self, injector: FaultInjector, status: int, body: bytes, page: Page | None) -> None:
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
                next_host = foreign_host(self._host, self._server().portal.port)
            body = envelope(page, self._host, self._raw_path, self._raw_query, next_host)
        if kind in {FaultKind.NONE, FaultKind.FOREIGN_NEXT}:
            self._answer(status, body)
        elif kind is FaultKind.ERROR:
            self._answer(decision.status, orjson.dumps({"detail": reason(decision.status)}))
        elif kind is FaultKind.TRUNCATED_JSON:
            self._answer(status, body[: max(1, len(body) // 2)])
        elif kind is FaultKind.INVALID_JSON:
            self._answer(status, _INVALID_JSON_BODY)
        elif kind is FaultKind.SLOW:
            self._record(status, len(body))
            self._server().stopping.wait(injector.params.slow_seconds)
            self._send(status, body)
        else:  # DROP: close without a word; the client sees the connection end
            self._record(0)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
