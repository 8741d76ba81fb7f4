"""Deadlines for whole requests: a watchdog that shuts the socket of a request past its time.

A socket time-out bounds each read, not the request: a server that sends a byte a second
would never be timed out by it. Here every request (`Exchange`) has one deadline for
connecting, headers and body together, and connections report to it which socket it waits
on and whether they were reused from the pool (a stale keep-alive is sent again at once).
"""

from __future__ import annotations

import contextlib
import functools
import math
import socket
import threading
import time
import typing as t

import urllib3
import urllib3.connection
import urllib3.connectionpool
from typing_extensions import override


class Exchange:
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
    exchange: Exchange | None = None


#: The request the current thread is making (each request runs in one thread).
CURRENT = _Current()


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
        self._active: dict[int, Exchange] = {}
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None

    def add(self, exchange: Exchange) -> None:
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

    def remove(self, exchange: Exchange) -> None:
        """Stop watching `exchange` (its socket is never shut after this returns)."""
        with self._lock:
            self._active.pop(id(exchange), None)

    def attach(self, exchange: Exchange, sock: socket.socket | None) -> None:
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


WATCHDOG = _Watchdog()


class _WatchedConnection(urllib3.connection.HTTPConnection):
    """Mixed into urllib3's connection classes: tells the current request about its socket.

    The request learns whether its connection was reused from the pool (a socket that
    has answered before), when an answer started, and which socket the watchdog must
    shut at its deadline. A request that must not reuse (the retry at once) gets a new
    socket here.
    """

    _answered_socket: socket.socket | None = None

    @override
    def request(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Send, noting whether this socket is a pooled one that has answered before."""
        exchange = CURRENT.exchange
        if exchange is not None:
            reused = self.sock is not None and self.sock is self._answered_socket
            if reused and exchange.fresh:
                self.close()  # http.client connects again on send
                reused = False
            exchange.reused = reused
        super().request(*args, **kwargs)

    @override
    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override] # as urllib3
        """Wait for the answer's headers under the watchdog."""
        exchange = CURRENT.exchange
        if exchange is not None:
            WATCHDOG.attach(exchange, self.sock)
        response = super().getresponse()
        self._answered_socket = self.sock
        if exchange is not None:
            exchange.answered = True
        return response


def watched(manager: urllib3.PoolManager) -> urllib3.PoolManager:
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
