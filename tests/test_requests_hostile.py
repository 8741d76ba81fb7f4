"""Requests against hostile servers (issue 11): each misbehaviour ends as it must.

Every server here is a small local one: a relay in front of the sandbox portal that
misbehaves in one way, a proxy, a TLS endpoint. Nothing sleeps to synchronise and no
assertion reads a wall clock: where time is the point, the bound is the tap's own
`request_timeout`, the local clock is injected, or the test counts retries.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import http.client
import importlib.util
import io
import json
import logging
import os
import select
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
import typing as t
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, quote_plus, urlsplit

import pytest

from tap_udemy_business import retries
from tap_udemy_business.errors import (
    RequestTimeoutError,
    ResponseTooLargeError,
    UdemyFatalError,
)
from tap_udemy_business.sandbox import FaultParams, SandboxPortal
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import (
    POLL,
    TAP_CLI_QUICK_RETRIES,
    SyncResult,
    assert_same_rows,
    catalog_selecting,
    expected_records,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

#: The portal's name as the tap sees it through a proxy: no loopback, a real-looking host.
API_HOST = "acme.udemy.com"
EMPTY_PAGE = b'{"count":0,"next":null,"previous":null,"results":[]}'
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after milliseconds rather than seconds; what is retried stays the same."""
    monkeypatch.setattr(retries, "RETRY_BASE_SECONDS", 0.005)


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the developer's environment, and nothing excluded from a test's proxy."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


# -- a relay in front of the sandbox, misbehaving as told -----------------------------------


class RelayHandler(BaseHTTPRequestHandler):
    """One client connection to the relay; `served` counts the answers it has had."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the head and the body are two writes: send both now
    served = 0

    def do_GET(self) -> None:
        relay = t.cast("Relay", self.server)
        with relay.lock:
            relay.paths.append(self.path)
        relay.behaviour(self)
        self.served += 1

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
        pass

    def upstream(self) -> tuple[int, bytes]:
        """The sandbox's answer to this request (sent with the tap's own Host and auth)."""
        relay = t.cast("Relay", self.server)
        parts = urlsplit(relay.upstream)
        assert parts.hostname is not None
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {"Host": self.headers["Host"], "Authorization": self.headers["Authorization"]}
        connection.request("GET", self.path, headers=headers)
        answer = connection.getresponse()
        body = answer.read()
        connection.close()
        if relay.tls is not None:  # the sandbox writes http:// links; the relay is https
            body = body.replace(b'"http://', b'"https://')
        return answer.status, body

    def answer(self, status: int, body: bytes, date: str | None = None) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Date", date or email.utils.formatdate(usegmt=True))
        self.end_headers()
        self.wfile.write(body)


Behaviour = t.Callable[[RelayHandler], None]


class Relay(ThreadingHTTPServer):
    """Answers each GET through `behaviour`; counts connections (TLS handshakes) and paths."""

    daemon_threads = True

    def __init__(self, behaviour: Behaviour, upstream: str, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), RelayHandler)
        self.behaviour = behaviour
        self.upstream = upstream
        self.tls = tls
        self.lock = threading.Lock()
        self.paths: list[str] = []
        self.connections = 0
        self.dropped = 0
        self.bytes_sent = 0

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, t.Any]:
        sock, address = self.socket.accept()
        with self.lock:
            self.connections += 1
        if self.tls is None:
            return sock, address
        try:
            return self.tls.wrap_socket(sock, server_side=True), address
        except (OSError, ssl.SSLError):
            sock.close()
            raise

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass  # a client hung up or was cut off on purpose


@contextmanager
def relay(
    behaviour: Behaviour, upstream: str = "http://127.0.0.1:9", tls: ssl.SSLContext | None = None
) -> Iterator[Relay]:
    server = Relay(behaviour, upstream, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs=POLL, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def passing_through(handler: RelayHandler) -> None:
    status, body = handler.upstream()
    handler.answer(status, body)


def dated(date: str) -> Behaviour:
    """The sandbox's answers, under another `Date` header."""

    def answer(handler: RelayHandler) -> None:
        status, body = handler.upstream()
        handler.answer(status, body, date)

    return answer


# -- a proxy: CONNECT tunnels and plain-http forwarding, maybe demanding credentials --------


class ProxyHandler(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True

    def handle(self) -> None:
        proxy = t.cast("Proxy", self.server)
        while True:
            line = self.rfile.readline()
            if not line.strip():
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = self._headers()
            if proxy.credentials and headers.get("proxy-authorization") != proxy.expected:
                with proxy.lock:
                    proxy.refused += 1
                self.wfile.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="hostile"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            with proxy.lock:
                proxy.forwarded.append(f"{method} {target}")
            if method == "CONNECT":
                self._tunnel()
                return
            self._forward(target, headers)

    def _headers(self) -> dict[str, str]:
        headers = {}
        while (line := self.rfile.readline().decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return headers

    def _tunnel(self) -> None:
        proxy = t.cast("Proxy", self.server)
        upstream = socket.create_connection(proxy.tunnel_to)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _pipe(self.connection, upstream)

    def _forward(self, target: str, headers: dict[str, str]) -> None:
        parts = urlsplit(target)
        assert parts.hostname is not None, target
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        sent = {k: v for k, v in headers.items() if not k.startswith("proxy-")}
        path = f"{parts.path}?{parts.query}" if parts.query else parts.path
        connection.request("GET", path, headers=sent)
        answer = connection.getresponse()
        body = answer.read()
        connection.close()
        head = f"HTTP/1.1 {answer.status} {answer.reason}\r\nContent-Length: {len(body)}\r\n"
        date = answer.getheader("Date")
        head += f"Date: {date}\r\n" if date else ""
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)


def _pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [one, other]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [])
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (other if sock is one else one).sendall(data)
    except OSError:
        return
    finally:
        other.close()


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, credentials: str | None, tunnel_to: tuple[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.credentials = credentials
        self.expected = "Basic " + base64.b64encode((credentials or "").encode()).decode()
        self.tunnel_to = tunnel_to
        self.lock = threading.Lock()
        self.refused = 0
        self.forwarded: list[str] = []

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        pass


@contextmanager
def proxy(
    credentials: str | None, tunnel_to: tuple[str, int] = ("127.0.0.1", 9)
) -> Iterator[Proxy]:
    server = Proxy(credentials, tunnel_to)
    thread = threading.Thread(target=server.serve_forever, kwargs=POLL, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# -- TLS: a test CA, and a certificate for the portal's name and 127.0.0.1 -----------------


@dataclass(frozen=True)
class Certificates:
    ca: Path
    chain: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.chain, self.key)
        return context


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    where = tmp_path_factory.mktemp("tls")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    openssl(
        "req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3",
        "-subj", "/CN=Hostile test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("req", *curve, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", f"/CN={API_HOST}")
    (where / "leaf.ext").write_text(
        f"subjectAltName=DNS:{API_HOST},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "3", "-extfile", "leaf.ext",
    )  # fmt: skip
    return Certificates(where / "ca.pem", where / "leaf.pem", where / "leaf.key")


@contextmanager
def portal_behind_a_proxy(
    portal: SandboxPortal,
    behaviour: Behaviour,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    credentials: str | None = None,
) -> Iterator[tuple[dict[str, t.Any], Proxy]]:
    """The portal as https://acme.udemy.com, reached through an HTTPS_PROXY tunnel.

    Not a loopback address as far as the tap can tell: what it does for a real portal is
    what it does here.
    """
    with (
        relay(behaviour, portal.base_url, certificates.server_context()) as tls_relay,
        proxy(credentials, ("127.0.0.1", tls_relay.server_address[1])) as tunnel,
    ):
        userinfo = "tap-user:p%40ss%3Aw0rd@" if credentials else ""
        monkeypatch.setenv("HTTPS_PROXY", tunnel.url(userinfo))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))
        yield {**portal.tap_config(), "api_url": f"https://{API_HOST}"}, tunnel


# -- running the tap -----------------------------------------------------------------------


def sync(
    config: dict[str, t.Any],
    streams: tuple[str, ...],
    clock: Callable[[], dt.datetime] | None = None,
) -> SyncResult:
    """A sync of `streams` in this process (the local clock replaced when given)."""
    tap = TapUdemyBusiness(
        config=config, catalog=catalog_selecting(config, streams), parse_env_config=False
    )
    if clock is not None:
        tap.api_session.clock = clock
    out = io.StringIO()
    with redirect_stdout(out):
        tap.sync_all()
    return SyncResult.from_lines(out.getvalue())


def cli(
    config: dict[str, t.Any], tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The tap's CLI, and its `Sync failed` lines (no proxy or CA bundle but those given)."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    names = {*PROXY_VARIABLES, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
    base = {k: v for k, v in os.environ.items() if k.upper() not in names}
    done = subprocess.run(
        [*TAP_CLI_QUICK_RETRIES, "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, "TAP_UDEMY_BUSINESS_LOGLEVEL": "INFO", **env},
        check=False,
    )
    return done, [line for line in done.stderr.splitlines() if "Sync failed" in line]


def noon(day: dt.date) -> Callable[[], dt.datetime]:
    return lambda: dt.datetime.combine(day, dt.time(12), dt.UTC)


def fake_config(base_url: str, **settings: t.Any) -> dict[str, t.Any]:
    return {
        "api_url": base_url,
        "organization_id": 7,
        "client_id": "hostile-client-id",
        "client_secret": "hostile-client-secret",
        **settings,
    }


# -- 3: a Date far from the local clock ----------------------------------------------------


@pytest.mark.usefixtures("no_proxies")
@pytest.mark.parametrize("days_off", [-9465, -3], ids=["a-2001-date", "three-days-stale"])
def test_a_server_date_far_from_the_local_clock_is_not_trusted(
    fresh_portal: SandboxPortal,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    days_off: int,
) -> None:
    today = fresh_portal.dataset.today
    served = dt.datetime.combine(today + dt.timedelta(days=days_off), dt.time(12))
    date = email.utils.format_datetime(served.replace(tzinfo=dt.UTC), usegmt=True)
    with portal_behind_a_proxy(fresh_portal, dated(date), certificates, monkeypatch) as (
        config,
        _,
    ):
        result = sync(config, ("user_activity",), clock=noon(today))
    expected = expected_records(fresh_portal, "user_activity")
    assert expected
    assert_same_rows("user_activity", result.records.get("user_activity", []), expected)
    warnings = [r.getMessage() for r in caplog.records if "Date header" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "not trusted" in warnings[0]


# -- 5: a server that trickles -------------------------------------------------------------


def trickling(what: str) -> Behaviour:
    """An answer sent a byte at a time: each read gets a byte long before its time-out."""

    def answer(handler: RelayHandler) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(EMPTY_PAGE)}\r\n\r\n"
        ).encode()
        if what == "body":
            handler.wfile.write(head)
        for byte in (head if what == "headers" else b"") + EMPTY_PAGE:
            handler.wfile.write(bytes([byte]))
            time.sleep(0.05)  # the hostile pace, not a synchronisation

    return answer


@pytest.mark.slow
@pytest.mark.parametrize("what", ["headers", "body"])
def test_a_trickling_answer_ends_in_the_time_out_after_its_retries(
    quick_retries: None, no_proxies: None, what: str
) -> None:
    with relay(trickling(what)) as server:
        config = fake_config(server.base_url, request_timeout=1, max_retries=1)
        with pytest.raises(RequestTimeoutError) as raised:
            sync(config, ("courses",))
    assert "within 1 s (request_timeout)" in str(raised.value)
    assert server.base_url in str(raised.value)
    assert len(server.paths) == 2, "one try and one retry, as any time-out"


# -- 8: answers larger than max_response_mb ------------------------------------------------


def huge_page(size: int) -> bytes:
    head = b'{"count":1,"next":null,"previous":null,"results":[{"id":1,"title":"'
    tail = b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def announced(handler: RelayHandler) -> None:
    handler.answer(200, huge_page(3 * 2**20))


def streamed(handler: RelayHandler) -> None:
    """24 MB of a valid page, chunked: its size is not known until it ends."""
    relay_server = t.cast("Relay", handler.server)
    handler.send_response_only(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    body = huge_page(24 * 2**20)
    for start in range(0, len(body), 2**16):
        chunk = body[start : start + 2**16]
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        relay_server.bytes_sent += len(chunk)
    handler.wfile.write(b"0\r\n\r\n")


@pytest.mark.parametrize("answer", [announced, streamed], ids=["content-length", "chunked"])
def test_an_answer_past_max_response_mb_fails_once_naming_url_and_setting(
    quick_retries: None, no_proxies: None, answer: Behaviour
) -> None:
    with relay(answer) as server:
        config = fake_config(server.base_url, max_response_mb=1)
        with pytest.raises(ResponseTooLargeError) as raised:
            sync(config, ("courses",))
    message = str(raised.value)
    assert "max_response_mb (1 MB" in message
    assert server.base_url in message
    assert "\n" not in message
    assert len(server.paths) == 1, "fatal: never retried"
    assert server.bytes_sent < 16 * 2**20, "the tap stopped reading at the cap"


# -- 12: messages that say what happened ---------------------------------------------------


def test_a_refused_connection_is_called_refused(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
    port = closed.getsockname()[1]
    try:
        done, errors = cli(fake_config(f"http://127.0.0.1:{port}", max_retries=1), tmp_path)
    finally:
        closed.close()
    assert done.returncode == 1
    assert len(errors) == 1, done.stderr[-2000:]
    assert f"Connection to 127.0.0.1:{port} refused" in errors[0]
    assert "time" not in errors[0].lower()


def test_an_unverifiable_certificate_is_fatal_in_one_line_naming_the_host(
    certificates: Certificates, tmp_path: Path
) -> None:
    with relay(passing_through, tls=certificates.server_context()) as server:
        done, errors = cli(fake_config(server.base_url, max_retries=2), tmp_path)
    assert done.returncode == 1
    assert len(errors) == 1, done.stderr[-2000:]
    assert "certificate of 127.0.0.1:" in errors[0]
    assert "could not be verified" in errors[0]
    assert "Traceback" not in done.stderr
    assert server.connections == 1, "a certificate failure is never retried"


def cut_off(how: str) -> Behaviour:
    """Announce 5000 bytes, send 1000, then reset the connection or close it."""

    def answer(handler: RelayHandler) -> None:
        handler.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
            + EMPTY_PAGE[:10]
            + b" " * 990
        )
        handler.wfile.flush()
        if how == "reset":
            linger = struct.pack("ii", 1, 0)
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        handler.connection.close()
        handler.close_connection = True

    return answer


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("reset", "was cut off"),
        ("reset", "(connection reset by the server)"),
        ("closed", "was cut off after 1000 of 5000 bytes (the server closed the connection)"),
    ],
)
def test_a_body_cut_off_says_so_and_why(tmp_path: Path, how: str, says: str) -> None:
    with relay(cut_off(how)) as server:
        done, errors = cli(fake_config(server.base_url, max_retries=1), tmp_path)
    assert done.returncode == 1
    assert len(errors) == 1, done.stderr[-2000:]
    assert says in errors[0]
    assert server.base_url in errors[0]


# -- 13: a 4xx body that echoes the request ------------------------------------------------

SECRET_ID = "sentinel-client-id-7Q2"
SECRET = "sentinel/secret+Zx81=do-not-leak"


def secret_shapes() -> list[str]:
    token = base64.b64encode(f"{SECRET_ID}:{SECRET}".encode()).decode()
    return [
        SECRET_ID,
        SECRET,
        token,
        token[:20],
        quote(SECRET, safe=""),
        quote(SECRET, safe="").lower(),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1].replace("/", "\\/"),
    ]


def echoing(handler: RelayHandler) -> None:
    """A 400 whose body echoes the request: its Authorization header, its secrets encoded."""
    body = json.dumps(
        {
            "Authorization": handler.headers["Authorization"],
            "seen": [quote(SECRET, safe=""), quote(SECRET, safe="").lower(), quote_plus(SECRET)],
            "escaped": SECRET.replace("/", "\\/"),
            "client": SECRET_ID,
            "detail": "Invalid value for page_size.",
        }
    ).encode()
    handler.answer(400, body)


def test_a_4xx_body_is_quoted_only_with_the_credentials_blanked(no_proxies: None) -> None:
    with relay(echoing) as server:
        config = fake_config(server.base_url, client_id=SECRET_ID, client_secret=SECRET)
        with pytest.raises(UdemyFatalError) as raised:
            sync(config, ("courses",))
    message = str(raised.value)
    assert message.startswith("400 Bad Request from ")
    assert "<redacted>" in message
    for shape in secret_shapes():
        assert shape.lower() not in message.lower(), shape


# -- 16: idle keep-alive connections closed by the server ----------------------------------


def closing_idle_connections(handler: RelayHandler) -> None:
    """Answer a connection's first request; close it on the next, without a byte."""
    if handler.served:
        relay_server = t.cast("Relay", handler.server)
        with relay_server.lock:
            relay_server.dropped += 1
        handler.close_connection = True
        return
    passing_through(handler)


def test_a_stale_pooled_connection_is_sent_again_at_once_without_backoff(
    fresh_portal: SandboxPortal,
    quick_retries: None,
    no_proxies: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    streams = ("courses", "user_progress")
    with relay(closing_idle_connections, fresh_portal.base_url) as server:
        config = {**fresh_portal.tap_config(), "api_url": server.base_url, "page_size": 10}
        result = sync(config, streams)
    for stream in streams:
        assert_same_rows(stream, result.records[stream], expected_records(fresh_portal, stream))
    assert server.dropped >= 10, "the test must close pooled connections to prove anything"
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert retries == []


# -- 17: proxies ---------------------------------------------------------------------------

PROXY_PASSWORD_SHAPES = ("p@ss:w0rd", "p%40ss%3Aw0rd", "tap-user:p")


def test_an_authenticated_http_proxy_gets_its_credentials(
    portal: SandboxPortal,
    no_proxies: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with proxy("tap-user:p@ss:w0rd") as forward:
        monkeypatch.setenv("HTTP_PROXY", forward.url("tap-user:p%40ss%3Aw0rd@"))
        result = sync(portal.tap_config(), ("courses",))
    assert_same_rows("courses", result.records["courses"], expected_records(portal, "courses"))
    assert forward.refused == 0
    assert forward.forwarded, "the requests went through the proxy"
    assert all(portal.base_url in line for line in forward.forwarded)
    for shape in PROXY_PASSWORD_SHAPES:
        assert shape not in caplog.text


@pytest.mark.usefixtures("quick_retries")
def test_an_authenticated_https_proxy_gets_its_credentials_for_the_tunnel(
    portal: SandboxPortal,
    certificates: Certificates,
    no_proxies: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with portal_behind_a_proxy(
        portal, passing_through, certificates, monkeypatch, credentials="tap-user:p@ss:w0rd"
    ) as (config, tunnel):
        result = sync(config, ("courses",))
    assert_same_rows("courses", result.records["courses"], expected_records(portal, "courses"))
    assert tunnel.refused == 0
    assert tunnel.forwarded == [f"CONNECT {API_HOST}:443"]
    for shape in PROXY_PASSWORD_SHAPES:
        assert shape not in caplog.text


def test_a_proxy_refusing_the_credentials_is_one_line_without_the_password(
    portal: SandboxPortal, tmp_path: Path
) -> None:
    with proxy("tap-user:another-password") as forward:
        done, errors = cli(
            portal.tap_config(), tmp_path, HTTP_PROXY=forward.url("tap-user:p%40ss%3Aw0rd@")
        )
    assert done.returncode == 1
    assert len(errors) == 1, done.stderr[-2000:]
    assert "407 Proxy Authentication Required" in errors[0]
    assert f"{forward.url()} (HTTP_PROXY)" in errors[0]
    for shape in PROXY_PASSWORD_SHAPES:
        assert shape not in done.stderr


def test_a_socks_proxy_works_or_fails_in_one_line_naming_the_variable(
    portal: SandboxPortal, tmp_path: Path
) -> None:
    if importlib.util.find_spec("socks") is not None:
        pytest.skip("PySocks is installed: SOCKS proxies are urllib3's own")
    done, errors = cli(portal.tap_config(), tmp_path, HTTP_PROXY="socks5://127.0.0.1:9")
    assert done.returncode == 1
    assert len(errors) == 1, done.stderr[-2000:]
    assert "socks5://127.0.0.1:9 (HTTP_PROXY) is a SOCKS proxy" in errors[0]
    assert "PySocks" in errors[0]
    assert "Traceback" not in done.stderr


# -- 18: the SDK's request metric ----------------------------------------------------------


class MetricLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.points: list[dict[str, t.Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("METRIC: "):
            self.points.append(json.loads(message.removeprefix("METRIC: ")))


def test_every_request_emits_the_sdks_http_request_duration_metric(
    fresh_portal: SandboxPortal, quick_retries: None, no_proxies: None
) -> None:
    fresh_portal.faults = FaultParams(error_rate=1.0, error_statuses=(500,), max_faults_per_url=1)
    metrics = logging.getLogger("singer_sdk.metrics")
    lines = MetricLines()
    metrics.addHandler(lines)
    level = metrics.level
    metrics.setLevel(logging.INFO)
    try:
        sync({**fresh_portal.tap_config(), "page_size": 5}, ("courses",))
    finally:
        metrics.removeHandler(lines)
        metrics.setLevel(level)
    durations = [p for p in lines.points if p["metric"] == "http_request_duration"]
    assert len(durations) == len(fresh_portal.requests)
    statuses = sorted({(p["tags"]["http_status_code"], p["tags"]["status"]) for p in durations})
    assert statuses == [(200, "succeeded"), (500, "failed")]
    assert {p["tags"]["endpoint"] for p in durations} == {"courses/list/"}
    assert all(p["type"] == "timer" and p["value"] >= 0 for p in durations)


@pytest.mark.usefixtures("no_proxies")
def test_a_far_date_on_loopback_is_trusted_only_from_a_declared_simulated_calendar(
    fresh_portal: SandboxPortal, caplog: pytest.LogCaptureFixture
) -> None:
    """The sandbox marks its calendar (`X-Sandbox-Clock`); a bare loopback server cannot."""
    today = fresh_portal.dataset.today
    served = dt.datetime.combine(today - dt.timedelta(days=9465), dt.time(12), dt.UTC)
    date = email.utils.format_datetime(served, usegmt=True)
    with relay(dated(date), upstream=fresh_portal.base_url) as server:
        config = {**fresh_portal.tap_config(), "api_url": server.base_url}
        result = sync(config, ("user_activity",), clock=noon(today))
    assert_same_rows(
        "user_activity",
        result.records.get("user_activity", []),
        expected_records(fresh_portal, "user_activity"),
    )
    warnings = [r.getMessage() for r in caplog.records if "Date header" in r.getMessage()]
    assert len(warnings) == 1, warnings
    # The sandbox itself, with its marker, is trusted days away from this machine's clock.
    caplog.clear()
    fresh_portal.advance(days=3)
    ahead = sync(fresh_portal.tap_config(), ("user_activity",), clock=noon(today))
    assert max(r["from_date"] for r in ahead.records["user_activity"]) > today.isoformat()
    assert not [r for r in caplog.records if "Date header" in r.getMessage()]
