"""Progress lines for long streams: how far, how fast, how long to go.

A year of learner progress can take hours. Every `interval` seconds the tap logs one line
per running stream on stderr (through the SDK's logger, never stdout, which carries the
Singer messages): records so far against the total the API announced (`count`), requests,
retries, rate and an estimated time to finish.
"""

from __future__ import annotations

import threading
import time
import typing as t

if t.TYPE_CHECKING:
    import logging

DEFAULT_INTERVAL_SECONDS = 15.0


class Progress:
    """Counts one stream's work and logs it at a steady cadence."""

    def __init__(
        self,
        stream: str,
        logger: logging.Logger,
        interval: float | None = None,
        *,
        units_total: int = 0,
    ) -> None:
        """Start the clock for one stream (a line every `interval` s, default 15).

        Args:
            stream: the stream's name, for the lines.
            logger: where the lines go (stderr, never the Singer messages).
            interval: seconds between two lines.
            units_total: the units of work the read is planned as (its windows), known
                before it starts; 0 to measure progress by the announced counts instead.
        """
        self.stream = stream
        self._logger = logger
        self._interval = DEFAULT_INTERVAL_SECONDS if interval is None else interval
        self._started = time.monotonic()
        self._last_log = self._started
        self._lock = threading.Lock()
        self.records = 0
        self.expected = 0
        self.requests = 0
        self.retries = 0
        #: Units of work (windows) wholly read so far, out of `units_total`.
        self.units_done = 0
        self.units_total = units_total

    def expect(self, count: int) -> None:
        """Add a query's announced `count` to the total."""
        self.expected += count

    def page(self, records: int) -> None:
        """Count a page handed to the SDK; log if the interval has passed."""
        self.records += records
        self.requests += 1
        now = time.monotonic()
        if now - self._last_log >= self._interval:
            self._last_log = now
            self._logger.info("%s", self.line(now))

    def retry(self) -> None:
        """Count a retry (called from worker threads)."""
        with self._lock:
            self.retries += 1

    def line(self, now: float | None = None) -> str:
        """The progress line: records of total (%), requests, retries, rate, ETA."""
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        rate = self.records / elapsed
        done = self._fraction_done()
        parts = [f"Progress of '{self.stream}': {self.records:,} records"]
        if self.expected:
            parts.append(f"of {self.expected:,} announced")
        if done is not None:
            parts.append(f"({done:.0%} done)")
        parts.append(
            f"| {self.requests:,} requests, {self.retries:,} retries, {rate:,.0f} records/s"
        )
        if done:
            parts.append(f"| ETA {_duration(elapsed * (1 - done) / done)}")
        return " ".join(parts)

    def _fraction_done(self) -> float | None:
        if self.units_total:
            return min(1.0, self.units_done / self.units_total)
        if self.expected:
            return min(1.0, self.records / self.expected)
        return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
