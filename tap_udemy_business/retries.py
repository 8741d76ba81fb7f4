"""How long to wait before a request is tried again, and what the retry log line says.

A 429 (or a 503 with `Retry-After`) is waited out exactly as long as the API asks, never
longer than the retry budget; every other transient failure backs off exponentially with
jitter. The decorator that applies this is the stream's (`UdemyStream.request_decorator`,
the SDK's hook); the policy lives here.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
import typing as t
from http import HTTPStatus

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_udemy_business.errors import TransportError

if t.TYPE_CHECKING:
    from collections.abc import Callable

RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0
DEFAULT_RETRY_AFTER_SECONDS = 5.0
#: What a `Retry-After` that means nothing usable (negative, NaN, a date already past) is
#: taken for: a short wait, never none, so retries cannot burn their budget in a burst.
SHORT_RETRY_AFTER_SECONDS = 1.0
#: Statuses whose `Retry-After` is honoured: the rate limit, and "come back later".
RETRY_AFTER_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
#: What is tried again: answers the API says are transient, and requests that got none.
RETRIABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def asked_wait(exception: BaseException | None) -> str | None:
    """The `Retry-After` an answer asks to be honoured, or None when it asks for none.

    A 429 always counts as asking (without the header it means the default wait); a 503
    only with the header; any other failure is backed off exponentially instead.
    """
    response = getattr(exception, "response", None)
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
        return header or ""
    if response.status_code in RETRY_AFTER_STATUSES and header:
        return str(header)
    return None


def backoff_seconds(attempt: int, draw: Callable[[], float] = random.random) -> float:
    """The exponential wait before retry `attempt` (1, 2, ...): 1 s doubling to 60 s, jittered.

    Jitter (half to all of the ceiling) keeps many requests that failed together from
    retrying together.
    """
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + draw() / 2)


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float:
    """Parse `Retry-After`: seconds, or an HTTP date.

    Absent or unreadable: the default wait. Negative, NaN, infinite, or a date already
    past: a short wait, never zero (nine retries with no gap would fail a sync in a
    fraction of a second with most of the retry budget unused).

    Args:
        value: the header, as sent.
        now: the clock an HTTP date is measured from (injectable for tests).
    """
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER_SECONDS
        return seconds if seconds > 0 else SHORT_RETRY_AFTER_SECONDS
    return seconds if math.isfinite(seconds) and seconds >= 0 else SHORT_RETRY_AFTER_SECONDS


def retry_reason(exception: BaseException | None) -> str:
    """What failed, for the retry's log line: the status, the transport's reason, or a type."""
    if isinstance(exception, RetriableAPIError) and exception.response is not None:
        return f"{exception.response.status_code} {exception.response.reason}"
    if isinstance(exception, TransportError):
        return exception.reason
    return type(exception).__name__ if exception else "error"
