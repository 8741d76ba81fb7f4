"""The portal's request log: what each client actually sent, for tests and benchmarks to check."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


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
    #: When it was answered, in monotonic seconds (the answer goes out just after).
    at: float = 0.0
    #: The answer's ``Retry-After``, as sent (None without one).
    retry_after: str | None = None


class RequestLog:
    """The most recent requests, oldest first; bounded, so a long benchmark cannot fill memory."""

    def __init__(self, size: int) -> None:
        """Keep the last `size` requests."""
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        """Log one request (handler threads call this before answering)."""
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """A copy of the log, oldest first."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._records.clear()
