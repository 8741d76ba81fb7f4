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

The deadlines are `deadlines.py`'s, the one-line failures `failures.py`'s, the proxy
`proxies.py`'s; this module puts them together around one pool.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import typing as t

import certifi
import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from tap_udemy_business.deadlines import CURRENT, WATCHDOG, Exchange, watched
from tap_udemy_business.errors import ResponseTooLargeError
from tap_udemy_business.failures import StaleConnectionError, failure, time_out
from tap_udemy_business.proxies import environment_proxy, pool_manager
from tap_udemy_business.urls import describe_url

if t.TYPE_CHECKING:
    from tap_udemy_business.auth import PinnedBasicAuth

LOGGER = logging.getLogger("tap-udemy-business")
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
#: Reads of a body whose length is not announced (chunked): few calls, bounded memory.
READ_CHUNK_BYTES = 2**20


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
        self._pool = watched(pool_manager(self.proxy, options))

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
        except StaleConnectionError:
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
        exchange = Exchange(started + timeout, fresh=fresh)
        WATCHDOG.add(exchange)
        CURRENT.exchange = exchange
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
            raise failure(exc, url, exchange, timeout, self.proxy) from None
        finally:
            CURRENT.exchange = None
            WATCHDOG.remove(exchange)
        if exchange.expired:  # the deadline passed as the body ended: it may be cut short
            raw.close()
            raise time_out(url, timeout)
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


def release_body(response: requests.Response) -> None:
    """Let go of an answer's body once its page is parsed; its status and headers stay.

    A page read ahead keeps its response (the `Date`, the status, the request's duration
    for the metric), and up to the read-ahead's 80 pages wait at once while the limit
    paces the reads: their bodies, parsed already, would be a third of that memory.
    """
    response._content = b""  # noqa: SLF001 - the body set in `_response`
