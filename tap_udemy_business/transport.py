"""HTTP transport: one urllib3 pool for every stream, the pinned credentials, no redirects.

requests costs about a millisecond of CPU per page (cookies, hooks, environment lookups
on every call), as much as everything else a page of 100 records costs; its own transport,
urllib3, does the same GET in half that. Environment proxies and CA bundles are resolved
once, as requests would per call. Responses come back as `requests.Response` and failures
as exceptions that are both singer-sdk's `RetriableAPIError` (so a sync that gives up says
what happened) and requests' exceptions (`errors.TransportError`).

What a hostile network cannot do to a request:

- take longer than `request_timeout` in all (connecting, headers and body together): a
  watchdog shuts the socket of a request past its deadline, however slowly bytes trickle
  (a proxy's answer to CONNECT, and DNS, are bounded per read only);
- make it hold more than `max_response_mb` of body: the body is read up to the cap, never
  past it, and a larger answer is a fatal error naming the URL and the setting;
- cost a backoff when a pooled keep-alive connection turns out closed by the server (the
  request fails before any byte of an answer): it is sent again at once, once, on a new
  connection;
- be reported as something else: a refused connection, a reset, a cut body, a time-out,
  an unverifiable certificate (fatal, never retried) each say so in one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.client
import importlib.util
import logging
import math
import os
import socket
import ssl
import threading
import time
import typing as t
from urllib.parse import unquote, urlsplit

import certifi
import requests
import urllib3
import urllib3.connection
import urllib3.connectionpool
from requests.structures import CaseInsensitiveDict

from tap_udemy_business.errors import (
    CertificateError,
    ProxyConfigError,
    RequestTimeoutError,
    ResponseTooLargeError,
    TransportError,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_udemy_business.auth import PinnedBasicAuth

LOGGER = logging.getLogger("tap-udemy-business")
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
#: Reads of a body whose length is not announced (chunked): few calls, bounded memory.
READ_CHUNK_BYTES = 2**20
_SOCKS_SCHEMES = frozenset({"socks4", "socks4a", "socks5", "socks5h"})


def describe_url(url: str) -> str:
    """Return a URL fit for a log line: scheme, host, port, path and query, no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"


class Transport:
    """GETs with the pinned `Authorization` header, over a shared keep-alive pool."""

    def __init__(
        self,
        base_url: str,
        auth: PinnedBasicAuth,
        pool_size: int,
        user_agent: str,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        """Resolve proxy and CA settings from the environment once, and open the pool.

        Raises:
            ProxyConfigError: the environment names a proxy the tap cannot use.
        """
        self._auth = auth
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self.max_response_bytes = max_response_bytes
        environment = os.environ
        ca_bundle = (
            environment.get("REQUESTS_CA_BUNDLE")
            or environment.get("CURL_CA_BUNDLE")
            or certifi.where()
        )
        options: dict[str, t.Any] = {
            "num_pools": 4,
            "maxsize": pool_size,
            "block": False,
            "retries": False,
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca_bundle,
        }
        self.proxy = environment_proxy(base_url)
        self._pool = _watched(_pool_manager(self.proxy, options))

    def get(self, url: str, timeout: float) -> requests.Response:
        """GET `url` (credentials only for the pinned origin); no redirects.

        A request that fails on a pooled connection before any byte of an answer (the
        server closed it while it sat idle) is sent again at once on a new connection;
        every other failure is left to the caller's retries.

        Raises:
            RequestTimeoutError: no whole answer within `timeout` seconds.
            TransportError: the connection failed, or was dropped or cut off.
            CertificateError: the server's certificate could not be verified.
            ResponseTooLargeError: the body is larger than `max_response_bytes`.
        """
        headers = {**self._headers, "Authorization": self._auth.header_for(url)}
        try:
            return self._exchange(url, headers, timeout, fresh=False)
        except _StaleConnectionError:
            LOGGER.debug(
                "The pooled connection for %s was closed by the server: sent again at once "
                "on a new connection",
                describe_url(url),
            )
            return self._exchange(url, headers, timeout, fresh=True)

    def _exchange(
        self, url: str, headers: dict[str, str], timeout: float, *, fresh: bool
    ) -> requests.Response:
        """One request and its whole body, within `timeout` seconds in all."""
        started = time.monotonic()
        exchange = _Exchange(started + timeout, fresh=fresh)
        _WATCHDOG.add(exchange)
        _CURRENT.exchange = exchange
        try:
            raw = self._pool.urlopen(
                "GET",
                url,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                redirect=False,
                retries=False,
                preload_content=False,
            )
            exchange.response = raw
            body = self._read_body(raw, url)
        except urllib3.exceptions.HTTPError as exc:
            raise _failure(exc, url, exchange, timeout, self.proxy) from None
        finally:
            _CURRENT.exchange = None
            _WATCHDOG.remove(exchange)
        if exchange.expired:  # the deadline passed as the body ended: it may be cut short
            raw.close()
            raise _time_out(url, timeout)
        raw.release_conn()
        return _response(raw, url, body, time.monotonic() - started)

    def _read_body(self, raw: urllib3.BaseHTTPResponse, url: str) -> bytes:
        """The whole body, read at once when its length is announced and within the cap.

        Raises:
            ResponseTooLargeError: more than `max_response_bytes` (the rest is not read).
        """
        complete = False
        try:
            length = raw.length_remaining
            if length is not None and length > self.max_response_bytes:
                raise self._too_large(url, f"its Content-Length is {length} bytes")
            if length is not None and "Content-Encoding" not in raw.headers:
                body = raw.read()
            else:
                body = self._read_capped(raw, url)
            complete = True
        finally:
            if not complete:
                raw.close()  # never hand a half-read connection back to the pool
        return body

    def _read_capped(self, raw: urllib3.BaseHTTPResponse, url: str) -> bytes:
        """Read chunk by chunk, up to one byte past the cap, so no more is ever held."""
        chunks: list[bytes] = []
        size = 0
        while chunk := raw.read(min(READ_CHUNK_BYTES, self.max_response_bytes + 1 - size)):
            size += len(chunk)
            if size > self.max_response_bytes:
                raise self._too_large(url, "it went on past that")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, url: str, detail: str) -> ResponseTooLargeError:
        limit = self.max_response_bytes / 2**20
        return ResponseTooLargeError(
            f"The response from {describe_url(url)} is larger than max_response_mb "
            f"({limit:g} MB; {detail}): raise max_response_mb or lower page_size."
        )


def _response(
    raw: urllib3.BaseHTTPResponse, url: str, body: bytes, seconds: float
) -> requests.Response:
    response = requests.Response()
    response.status_code = raw.status
    response.reason = raw.reason or ""
    response.headers = CaseInsensitiveDict(raw.headers)
    response._content = body  # noqa: SLF001 - the body, read once above
    response.url = url
    response.elapsed = dt.timedelta(seconds=seconds)
    return response


# Proxies


class ProxySetting(t.NamedTuple):
    """The proxy the environment names for the API, and the variable that names it."""

    url: str
    variable: str

    def describe(self) -> str:
        """The proxy as a log line may show it: no user, no password."""
        return f"{describe_url(self.url)} ({self.variable})"


def environment_proxy(base_url: str) -> ProxySetting | None:
    """The proxy for `base_url` from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`, as requests reads them.

    `NO_PROXY` applies; a proxy given without a scheme is an http:// one, as in requests.
    """
    proxies = requests.utils.get_environ_proxies(base_url)
    for key in (urlsplit(base_url).scheme, "all"):
        if proxies.get(key):
            url = str(proxies[key])
            url = url if "://" in url else f"http://{url}"
            return ProxySetting(url, f"{key.upper()}_PROXY")
    return None


def _pool_manager(proxy: ProxySetting | None, options: dict[str, t.Any]) -> urllib3.PoolManager:
    """A direct pool, or one through the proxy with its credentials as `Proxy-Authorization`."""
    if proxy is None:
        return urllib3.PoolManager(**options)
    parts = urlsplit(proxy.url)
    if parts.scheme in _SOCKS_SCHEMES:
        return _socks_manager(proxy, options)
    if parts.scheme not in {"http", "https"}:
        msg = (
            f"The proxy {proxy.describe()} is neither http://, https:// nor socks5://: "
            "correct the variable or unset it."
        )
        raise ProxyConfigError(msg)
    headers = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers = urllib3.make_headers(proxy_basic_auth=credentials)
    bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return urllib3.ProxyManager(bare, proxy_headers=headers, **options)


def _socks_manager(proxy: ProxySetting, options: dict[str, t.Any]) -> urllib3.PoolManager:
    """A SOCKS proxy, which urllib3 supports through the optional PySocks package."""
    if importlib.util.find_spec("socks") is None:
        msg = (
            f"The proxy {proxy.describe()} is a SOCKS proxy, which needs the PySocks package "
            "(pip install pysocks); or use an http:// proxy."
        )
        raise ProxyConfigError(msg)
    from urllib3.contrib.socks import SOCKSProxyManager  # noqa: PLC0415 - optional

    return SOCKSProxyManager(proxy.url, **options)


# What each failure was


def _failure(
    exc: urllib3.exceptions.HTTPError,
    url: str,
    exchange: _Exchange,
    timeout: float,
    proxy: ProxySetting | None,
) -> Exception:
    """The error that says what went wrong, in one line; fatal when retrying cannot help."""
    if exchange.expired or (
        isinstance(exc, urllib3.exceptions.TimeoutError)
        and not isinstance(exc, urllib3.exceptions.NewConnectionError)
    ):
        return _time_out(url, timeout)
    if exchange.reused and not exchange.answered and _cause(exc, ConnectionError):
        return _StaleConnectionError()
    if isinstance(exc, urllib3.exceptions.ProxyError) and proxy is not None:
        return _proxy_failure(exc, url, proxy)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return _tls_failure(exc, url)
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return _connect_failure(exc, url)
    return _broken(exc, url, exchange)


def _time_out(url: str, timeout: float) -> RequestTimeoutError:
    return RequestTimeoutError(
        f"No whole answer from {describe_url(url)} within {timeout:g} s (request_timeout)",
        url,
        "a time-out",
    )


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _tls_failure(exc: urllib3.exceptions.SSLError, url: str) -> Exception:
    unverified = _cause(exc, ssl.SSLCertVerificationError)
    if unverified is not None:
        return CertificateError(
            f"The TLS certificate of {_host(url)} could not be verified "
            f"({unverified.verify_message or unverified.reason}): not retried. If a proxy "
            "inspects TLS, point REQUESTS_CA_BUNDLE at its CA certificates."
        )
    return TransportError(
        f"TLS with {_host(url)} failed ({_reason(exc)}) for {describe_url(url)}",
        url,
        "a TLS failure",
    )


def _proxy_failure(exc: urllib3.exceptions.ProxyError, url: str, proxy: ProxySetting) -> Exception:
    refused = next((e for e in _causes(exc) if " 407 " in f" {e} "), None)
    if refused is not None:
        return ProxyConfigError(
            f"The proxy {proxy.describe()} answered 407 Proxy Authentication Required: "
            "give its user and password in the proxy URL (http://user:password@host:port)."
        )
    return TransportError(
        f"Could not reach {_host(url)} through the proxy {proxy.describe()} ({_reason(exc)})",
        url,
        "a proxy failure",
    )


def _connect_failure(exc: urllib3.exceptions.NewConnectionError, url: str) -> TransportError:
    if isinstance(exc, urllib3.exceptions.NameResolutionError):
        return TransportError(
            f"Could not resolve the host name of {describe_url(url)}", url, "no such host"
        )
    if _cause(exc, ConnectionRefusedError) is not None:
        return TransportError(
            f"Connection to {_host(url)} refused (nothing accepts connections there) for "
            f"{describe_url(url)}",
            url,
            "a refused connection",
        )
    return TransportError(
        f"Could not connect to {_host(url)} ({_reason(exc)}) for {describe_url(url)}",
        url,
        "a failed connection",
    )


def _broken(exc: urllib3.exceptions.HTTPError, url: str, exchange: _Exchange) -> TransportError:
    """A connection that broke: before the answer, or in the middle of its body."""
    where = describe_url(url)
    raw = exchange.response
    if exchange.answered and raw is not None:
        received = _received(raw, exc)
        expected = raw.headers.get("Content-Length")
        of = f" of {expected}" if expected else ""
        amount = f" after {received}{of} bytes" if received else " before its end"
        return TransportError(
            f"The response from {where} was cut off{amount} ({_reason(exc)})",
            url,
            "a cut-off response",
        )
    if _cause(exc, http.client.RemoteDisconnected) is not None:
        return TransportError(
            f"{_host(url)} closed the connection without answering {where}",
            url,
            "a connection closed without an answer",
        )
    return TransportError(
        f"The request for {where} failed before any answer ({_reason(exc)})",
        url,
        "a broken connection",
    )


def _received(raw: urllib3.BaseHTTPResponse, exc: BaseException) -> int:
    """Body bytes that arrived before the cut: urllib3's count, or the short read's own."""
    short = _cause(exc, http.client.IncompleteRead)
    if short is None:
        return raw.tell()
    if isinstance(short.partial, bytes):  # http.client's: this read's bytes only
        return raw.tell() + len(short.partial)
    return max(raw.tell(), int(short.partial))  # urllib3's: the count so far


def _reason(exc: BaseException) -> str:
    """What broke, in a few words: the innermost cause that says something."""
    for kind, words in _REASONS:
        if _cause(exc, kind) is not None:
            return words
    innermost = list(_causes(exc))[-1]
    text = str(innermost).splitlines()[0] if str(innermost) else ""
    return f"{type(innermost).__name__}: {text}" if text else type(innermost).__name__


#: Causes worth naming, in the order they are looked for (a more specific one first).
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (http.client.RemoteDisconnected, "the server closed the connection"),
    (ConnectionResetError, "connection reset by the server"),
    (BrokenPipeError, "broken pipe: the server closed the connection"),
    (http.client.IncompleteRead, "the server closed the connection"),
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it wraps (urllib3 keeps causes in `args`), outermost first."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


_E = t.TypeVar("_E", bound=BaseException)


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    return next((e for e in _causes(exc) if isinstance(e, kind)), None)


class _StaleConnectionError(Exception):
    """A pooled connection the server had closed: send the request again at once."""


# Deadlines and connection reuse


class _Exchange:
    """One request in flight: its deadline, and what its connection told about it."""

    __slots__ = ("answered", "deadline", "expired", "fresh", "response", "reused", "socket")

    def __init__(self, deadline: float, *, fresh: bool) -> None:
        """Start before any connection is chosen."""
        self.deadline = deadline
        #: Whether a pooled connection must be replaced by a new one (the retry at once).
        self.fresh = fresh
        self.reused = False
        self.answered = False
        self.expired = False
        self.socket: socket.socket | None = None
        self.response: urllib3.BaseHTTPResponse | None = None


class _Current(threading.local):
    exchange: _Exchange | None = None


#: The request the current thread is making (each request runs in one thread).
_CURRENT = _Current()


class _Watchdog:
    """One thread that ends every request past its deadline by shutting its socket down.

    A socket time-out bounds each read, so a server that sends a byte every second is
    never timed out by it; a shut-down socket wakes the blocked read at once, whatever
    phase (headers or body) the request is in. Adding and removing a request is a dict
    operation under a lock; the thread wakes only at the earliest deadline.
    """

    def __init__(self) -> None:
        """Start idle; the thread starts with the first request."""
        self._lock = threading.Condition()
        self._active: dict[int, _Exchange] = {}
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None

    def add(self, exchange: _Exchange) -> None:
        """Watch `exchange` until `remove`."""
        with self._lock:
            self._active[id(exchange)] = exchange
            if exchange.deadline < self._wake_at:
                self._wake_at = exchange.deadline
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="request-deadlines", daemon=True
                    )
                    self._thread.start()
                self._lock.notify()

    def remove(self, exchange: _Exchange) -> None:
        """Stop watching `exchange` (its socket is never shut after this returns)."""
        with self._lock:
            self._active.pop(id(exchange), None)

    def attach(self, exchange: _Exchange, sock: socket.socket | None) -> None:
        """The socket `exchange` now waits on; shut at once if the deadline has passed."""
        with self._lock:
            exchange.socket = sock
            if exchange.expired:
                _shut(sock)

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for key, exchange in list(self._active.items()):
                    if exchange.deadline <= now:
                        del self._active[key]
                        exchange.expired = True
                        _shut(exchange.socket)
                deadlines = [exchange.deadline for exchange in self._active.values()]
                self._wake_at = min(deadlines, default=math.inf)
                self._lock.wait(None if self._wake_at == math.inf else self._wake_at - now)


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed: nothing left to wake
        sock.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()


class _WatchedConnection(urllib3.connection.HTTPConnection):
    """Mixed into urllib3's connection classes: tells the current request about its socket.

    The request learns whether its connection was reused from the pool (a socket that
    has answered before), when an answer started, and which socket the watchdog must
    shut at its deadline. A request that must not reuse (the retry at once) gets a new
    socket here.
    """

    _answered_socket: socket.socket | None = None

    def request(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Send, noting whether this socket is a pooled one that has answered before."""
        exchange = _CURRENT.exchange
        if exchange is not None:
            reused = self.sock is not None and self.sock is self._answered_socket
            if reused and exchange.fresh:
                self.close()  # http.client connects again on send
                reused = False
            exchange.reused = reused
        super().request(*args, **kwargs)

    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override] # as urllib3
        """Wait for the answer's headers under the watchdog."""
        exchange = _CURRENT.exchange
        if exchange is not None:
            _WATCHDOG.attach(exchange, self.sock)
        response = super().getresponse()
        self._answered_socket = self.sock
        if exchange is not None:
            exchange.answered = True
        return response


def _watched(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """`manager`, its pools making connections that report to the watchdog."""
    manager.pool_classes_by_scheme = {
        scheme: _watched_pool(pool) for scheme, pool in manager.pool_classes_by_scheme.items()
    }
    return manager


@functools.cache
def _watched_pool(
    pool: type[urllib3.connectionpool.HTTPConnectionPool],
) -> type[urllib3.connectionpool.HTTPConnectionPool]:
    connection = type(
        f"Watched{pool.ConnectionCls.__name__}", (_WatchedConnection, pool.ConnectionCls), {}
    )
    return type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": connection})
