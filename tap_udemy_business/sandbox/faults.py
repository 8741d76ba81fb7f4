"""Fault injection for the sandbox portal.

The real API rate-limits (429 + ``Retry-After``), answers 5xx and 524 under load and now and then
sends bodies that are not JSON. A tap is only as good as its handling of those, so the sandbox can
produce each of them on demand. Every probabilistic decision is a pure function of
``(seed, canonical request URL, how many times that URL was asked for before)``: a run repeats
exactly whatever the thread timing, and a test can say "every page fails twice, then succeeds"
with ``max_faults_per_url``. Only the rate limit (a token bucket, i.e. a clock) and the latency
depend on time, as they do in production.
"""

from __future__ import annotations

import enum
import hashlib
import math
import threading
import time
import typing as t
from collections import deque
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_ERROR_STATUSES: tuple[int, ...] = (500, 502, 503, 524)
#: How a 429's ``Retry-After`` may be written (see ``FaultParams.rate_limit_retry_after``).
RETRY_AFTER_STYLES = ("ceil", "exact")
#: Admissions kept for study (the latest ones): a long-lived portal's memory stays bounded.
MAX_ADMISSIONS = 100_000


class FaultKind(enum.Enum):
    """The probabilistic faults; ``NONE`` is a normal answer."""

    NONE = "none"
    ERROR = "error"
    TRUNCATED_JSON = "truncated_json"
    INVALID_JSON = "invalid_json"
    SLOW = "slow"
    DROP = "drop"
    FOREIGN_NEXT = "foreign_next"


@dataclass(frozen=True)
class FaultParams:
    """What the portal gets wrong, and how often. Everything is off by default.

    The probabilistic faults are exclusive (a request gets at most one), so their rates must sum
    to at most 1; ``error_rate=1.0`` therefore means "every request fails".

    Attributes:
        seed: Seeds every probabilistic decision, so a run can be repeated exactly.
        latency_ms: Added to every request, to make round trips cost what they cost on the Internet.
        rate_limit_rps: Sustained requests per second per credential; ``None`` disables the limit.
        rate_limit_burst: Token-bucket size; ``None`` means ``max(1, ceil(rate_limit_rps))``.
        rate_limit_retry_after: How a 429 announces the wait until the next token: ``"ceil"``,
            whole seconds and at least 1, as HTTP's delay-seconds must (a 50 ms wait is
            announced as 1 s); ``"exact"``, seconds with a fraction (``0.05``), as some
            gateways send.
        rate_limit_schedule: Changes of the limit during a run: ``(seconds, rps)`` pairs, each
            setting the sustained rate from that many seconds after the first request on
            (the limit "subject to change" of Udemy's documentation). The burst stays.
        error_rate: Probability of answering one of ``error_statuses`` instead of the page.
        error_statuses: The statuses drawn from (the ones clients report from the real API).
        truncated_json_rate: Probability of a 200 whose body stops half-way (a cut proxy stream).
        invalid_json_rate: Probability of a 200 whose body is an HTML error page.
        slow_rate: Probability of answering only after ``slow_seconds`` (exceeds client time-outs).
        slow_seconds: How long a slow answer takes.
        drop_rate: Probability of closing the connection without answering.
        foreign_next_rate: Probability that ``next`` points at another host (127.0.0.2, same
            port): a client that follows it blindly would send its credentials elsewhere.
        max_faults_per_url: A URL is faulted at most this many times, then answered normally.
    """

    seed: int = 0
    latency_ms: float = 0.0
    rate_limit_rps: float | None = None
    rate_limit_burst: int | None = None
    rate_limit_retry_after: str = "ceil"
    rate_limit_schedule: tuple[tuple[float, float], ...] = ()
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = DEFAULT_ERROR_STATUSES
    truncated_json_rate: float = 0.0
    invalid_json_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 2.0
    drop_rate: float = 0.0
    foreign_next_rate: float = 0.0
    max_faults_per_url: int | None = None

    def __post_init__(self) -> None:
        """Reject settings that would silently mean something else."""
        rates = self.rates()
        for kind, rate in rates:
            if not 0.0 <= rate <= 1.0:
                msg = f"{kind.value}_rate must be within [0, 1], got {rate}"
                raise ValueError(msg)
        if sum(rate for _, rate in rates) > 1.0 + 1e-9:
            msg = "the fault rates must sum to at most 1 (a request gets at most one fault)"
            raise ValueError(msg)
        if self.error_rate > 0 and not self.error_statuses:
            msg = "error_rate > 0 needs at least one error status"
            raise ValueError(msg)
        if any(not 100 <= status <= 599 for status in self.error_statuses):  # noqa: PLR2004
            msg = f"error_statuses must be HTTP statuses, got {self.error_statuses}"
            raise ValueError(msg)
        self._check_rate_limit()
        if self.latency_ms < 0 or self.slow_seconds < 0:
            msg = "latency_ms and slow_seconds must not be negative"
            raise ValueError(msg)
        if self.max_faults_per_url is not None and self.max_faults_per_url < 0:
            msg = "max_faults_per_url must not be negative"
            raise ValueError(msg)

    def _check_rate_limit(self) -> None:
        if self.rate_limit_rps is not None and self.rate_limit_rps <= 0:
            msg = "rate_limit_rps must be positive (or None to disable the limit)"
            raise ValueError(msg)
        if self.rate_limit_burst is not None and self.rate_limit_burst < 1:
            msg = "rate_limit_burst must be at least 1"
            raise ValueError(msg)
        if self.rate_limit_retry_after not in RETRY_AFTER_STYLES:
            msg = f"rate_limit_retry_after must be one of {RETRY_AFTER_STYLES}"
            raise ValueError(msg)
        if self.rate_limit_schedule and self.rate_limit_rps is None:
            msg = "rate_limit_schedule needs rate_limit_rps (the limit it starts from)"
            raise ValueError(msg)
        moments = [at for at, _ in self.rate_limit_schedule]
        if moments != sorted(moments) or any(
            at < 0 or rps <= 0 for at, rps in self.rate_limit_schedule
        ):
            msg = "rate_limit_schedule must be (seconds >= 0, rps > 0) pairs in time order"
            raise ValueError(msg)

    def rates(self) -> list[tuple[FaultKind, float]]:
        """The probabilistic faults in the fixed order their probability ranges are laid out."""
        return [
            (FaultKind.ERROR, self.error_rate),
            (FaultKind.TRUNCATED_JSON, self.truncated_json_rate),
            (FaultKind.INVALID_JSON, self.invalid_json_rate),
            (FaultKind.SLOW, self.slow_rate),
            (FaultKind.DROP, self.drop_rate),
            (FaultKind.FOREIGN_NEXT, self.foreign_next_rate),
        ]


def parse_schedule(text: str) -> tuple[tuple[float, float], ...]:
    """Read a rate-limit schedule written ``SECONDS:RPS,SECONDS:RPS`` (``10:5,20:10``).

    Raises:
        ValueError: a part is not two numbers joined by a colon.
    """
    changes = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        at, sep, rps = part.partition(":")
        if not sep:
            msg = f"a schedule change is SECONDS:RPS, got {part!r}"
            raise ValueError(msg)
        changes.append((float(at), float(rps)))
    return tuple(changes)


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one response; ``status`` is set for ``ERROR`` only."""

    kind: FaultKind
    status: int = 0


NO_FAULT = FaultDecision(FaultKind.NONE)


def _draws(seed: int, url: str, attempt: int) -> tuple[float, float]:
    """Two independent uniform numbers in [0, 1) for one request.

    ``hash()`` is salted per process, so a keyed BLAKE2 digest is used instead: the same seed gives
    the same faults in every process and on every machine.
    """
    digest = hashlib.blake2b(f"{seed}\x00{url}\x00{attempt}".encode(), digest_size=16).digest()
    scale = float(1 << 64)
    return (
        int.from_bytes(digest[:8], "big") / scale,
        int.from_bytes(digest[8:], "big") / scale,
    )


class _TokenBucket:
    """A token bucket whose rate may change on a schedule; guarded by the injector's lock.

    Tokens accrue at the rate in force at each moment (a change part-way through a refill
    is accounted for exactly); a refused request takes no token, as in the usual gateways.
    """

    __slots__ = ("capacity", "changes", "rate", "stamp", "tokens")

    def __init__(
        self, rate: float, capacity: int, now: float, schedule: tuple[tuple[float, float], ...]
    ) -> None:
        self.rate = rate
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.stamp = now
        self.changes = [(now + at, rps) for at, rps in schedule]

    def _refill(self, now: float) -> None:
        while self.changes and self.changes[0][0] <= now:
            at, rps = self.changes.pop(0)
            self._accrue(max(at, self.stamp))
            self.rate = rps
        self._accrue(now)

    def _accrue(self, until: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (until - self.stamp) * self.rate)
        self.stamp = until

    def take(self, now: float) -> float | None:
        """Take a token; return ``None`` when granted, else the seconds until one is available."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate


class FaultInjector:
    """Applies one ``FaultParams`` to the requests of a portal; replaced whole when they change.

    Replacing it (rather than mutating) resets the per-URL counters and the token buckets, so a
    test that switches faults on sees the same faults however the portal was used before.
    """

    def __init__(self, params: FaultParams, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with full buckets and no URL seen.

        Args:
            params: what to get wrong.
            clock: the rate limit's clock, in seconds (injectable for tests).
        """
        self.params = params
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _TokenBucket] = {}
        #: The latest requests charged to a bucket: (clock time, whether it was let through).
        self.admissions: deque[tuple[float, bool]] = deque(maxlen=MAX_ADMISSIONS)
        self._seen: dict[str, int] = {}
        self._faulted: dict[str, int] = {}
        self._ranges: list[tuple[FaultKind, float]] = []
        upper = 0.0
        for kind, rate in params.rates():
            if rate > 0:
                upper += rate
                self._ranges.append((kind, upper))

    @property
    def latency_seconds(self) -> float:
        """The delay to add to every request."""
        return self.params.latency_ms / 1000.0

    @property
    def active(self) -> bool:
        """Whether any probabilistic fault can happen (else ``decide`` need not be called)."""
        return bool(self._ranges)

    def admit(self, credential: str) -> str | None:
        """Charge one request to ``credential``'s bucket.

        Args:
            credential: Whatever identifies the caller (the raw ``Authorization`` header).

        Returns:
            ``None`` if the request may proceed, else the ``Retry-After`` value as sent: whole
            seconds, at least 1 (``"ceil"``), or seconds to the millisecond (``"exact"``).
        """
        params = self.params
        rate = params.rate_limit_rps
        if rate is None:
            return None
        burst = params.rate_limit_burst or max(1, math.ceil(rate))
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(credential)
            if bucket is None:
                bucket = _TokenBucket(rate, burst, now, params.rate_limit_schedule)
                self._buckets[credential] = bucket
            wait = bucket.take(now)
            self.admissions.append((now, wait is None))
        if wait is None:
            return None
        if params.rate_limit_retry_after == "exact":
            return f"{max(0.001, wait):.3f}"
        return str(max(1, math.ceil(wait)))

    def decide(self, url: str, *, has_next: bool) -> FaultDecision:
        """Decide the fault for one request of ``url`` (the canonical path and sorted query).

        Args:
            url: Canonical URL; the host is left out so a followed foreign ``next`` still counts.
            has_next: Whether the answer has a ``next`` link; without one there is nothing to
                point elsewhere, so a drawn ``FOREIGN_NEXT`` becomes a normal answer.

        Returns:
            The decision; faults actually applied count against ``max_faults_per_url``.
        """
        if not self._ranges:
            return NO_FAULT
        with self._lock:
            attempt = self._seen.get(url, 0)
            self._seen[url] = attempt + 1
            draw, pick = _draws(self.params.seed, url, attempt)
            kind = next((k for k, upper in self._ranges if draw < upper), FaultKind.NONE)
            if kind is FaultKind.FOREIGN_NEXT and not has_next:
                kind = FaultKind.NONE
            if kind is FaultKind.NONE:
                return NO_FAULT
            limit = self.params.max_faults_per_url
            done = self._faulted.get(url, 0)
            if limit is not None and done >= limit:
                return NO_FAULT
            self._faulted[url] = done + 1
        if kind is FaultKind.ERROR:
            statuses = self.params.error_statuses
            return FaultDecision(kind, statuses[int(pick * len(statuses))])
        return FaultDecision(kind)
