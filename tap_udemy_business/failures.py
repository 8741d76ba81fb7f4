"""What each failed request was, in one line: a time-out, a refusal, a reset, a bad certificate.

The transport turns urllib3's exceptions into the tap's (`errors.py`): retriable ones that
say what happened (`TransportError`), and fatal ones where retrying cannot help (an
unverifiable certificate, a proxy that refuses the tap).
"""

from __future__ import annotations

import http.client
import ssl
import typing as t
from urllib.parse import urlsplit

import urllib3

from tap_udemy_business.errors import (
    CertificateError,
    ProxyConfigError,
    RequestTimeoutError,
    TransportError,
)
from tap_udemy_business.urls import describe_url

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_udemy_business.deadlines import Exchange
    from tap_udemy_business.proxies import ProxySetting


def failure(
    exc: urllib3.exceptions.HTTPError,
    url: str,
    exchange: Exchange,
    timeout: float,
    proxy: ProxySetting | None,
) -> Exception:
    """The error that says what went wrong, in one line; fatal when retrying cannot help."""
    if exchange.expired or (
        isinstance(exc, urllib3.exceptions.TimeoutError)
        and not isinstance(exc, urllib3.exceptions.NewConnectionError)
    ):
        return time_out(url, timeout)
    if exchange.reused and not exchange.answered and _cause(exc, ConnectionError):
        return StaleConnectionError()
    if isinstance(exc, urllib3.exceptions.ProxyError) and proxy is not None:
        return _proxy_failure(exc, url, proxy)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return _tls_failure(exc, url)
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return _connect_failure(exc, url)
    return _broken(exc, url, exchange)


def time_out(url: str, timeout: float) -> RequestTimeoutError:
    """The error of a request with no whole answer within `timeout` seconds."""
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


def _broken(exc: urllib3.exceptions.HTTPError, url: str, exchange: Exchange) -> TransportError:
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


class StaleConnectionError(Exception):
    """A pooled connection the server had closed: send the request again at once."""
