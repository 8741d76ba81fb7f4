"""What the streams of one tap share: the transport, the credentials, the rate governor.

Udemy's rate limit is per credential, and connections are worth keeping alive across
streams, so the tap makes one `ApiSession` (on first use) and every stream reads through it.
It also judges the API's date (`api_date`), where reporting ends.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import threading
import typing as t
from importlib.metadata import version
from urllib.parse import urlsplit

from tap_udemy_business.auth import PinnedBasicAuth
from tap_udemy_business.rate_limit import governor_for
from tap_udemy_business.remote_pages import PageWorker, available_cpus
from tap_udemy_business.settings import base_url, is_loopback_host
from tap_udemy_business.transport import Transport

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import requests

USER_AGENT = f"tap-udemy-business/{version('tap-udemy-business')}"
#: A `Date` further than this from the local clock is a stale cache or a wrong clock.
MAX_CLOCK_SKEW = dt.timedelta(days=1)
#: The header by which a portal on loopback says its `Date` is a simulated calendar.
SIMULATED_CLOCK_HEADER = "X-Sandbox-Clock"
LOGGER = logging.getLogger("tap-udemy-business")


def utc_now() -> dt.datetime:
    """This machine's clock, in UTC (the default `ApiSession.clock`)."""
    return dt.datetime.now(dt.UTC)


class ApiSession:
    """What every stream of one tap shares: the transport, the credentials, the rate governor.

    Udemy's rate limit is per credential, so the rate governor (the pace and the cap on
    requests in flight) is one object for all streams, and for every tap of the process
    using the same API and client id (see `rate_limit.governor_for`); one connection pool
    keeps connections alive across the streams.
    """

    def __init__(
        self, config: Mapping[str, t.Any], clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        """Build the transport and the pinned credentials from the tap's config.

        Args:
            config: the tap's settings, the schema's defaults filled in (as `Tap.config`).
            clock: this machine's clock, which checks the API's (replaceable for tests).
        """
        self.base_url = base_url(config)
        self.organization_id = int(config["organization_id"])
        self.auth = PinnedBasicAuth(config["client_id"], config["client_secret"], self.base_url)
        self.concurrency = int(config["max_concurrent_requests"])
        self.governor = governor_for(self.base_url, config["client_id"], self.concurrency)
        max_response_mb = int(config["max_response_mb"])
        self.transport = Transport(
            self.base_url,
            self.auth,
            pool_size=max(10, self.concurrency * 2),
            user_agent=USER_AGENT,
            max_response_bytes=max_response_mb * 2**20,
        )
        self.server_date: dt.date | None = None
        self.clock = clock
        #: Only an API on this machine may declare a simulated calendar (the sandbox
        #: portal's, which tests advance); anywhere else a far-off date is a skewed clock.
        self._may_simulate = is_loopback_host(urlsplit(self.base_url).hostname or "")
        self._skew_reported = threading.Lock()
        self._use_worker = (
            bool(config.get("page_worker", True)) and os.name == "posix" and available_cpus() > 1
        )
        self._worker: PageWorker | None = None

    @property
    def page_worker(self) -> PageWorker | None:
        """The page worker (started on first use); None when pages are parsed here.

        None with `page_worker` off, on a machine that lets the tap use one CPU only (a
        second process would only add copying), off POSIX (the worker's pipes are passed
        as file descriptors), and where the worker cannot start (one warning says why).
        Called from the main thread only, as reads begin.
        """
        if self._worker is None and self._use_worker:
            try:
                self._worker = PageWorker()
            except OSError as exc:
                self._use_worker = False
                LOGGER.warning(
                    "The page worker could not be started (%s): pages are parsed in the "
                    "tap's process.",
                    exc,
                )
        return self._worker

    def close(self) -> None:
        """Stop the page worker, if one runs (the next read starts another)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def note_server_date(self, response: requests.Response) -> None:
        """Keep the date the latest answer gave as `server_date` (the probe report reads it).

        Reporting streams do not read it: each plans its windows from its own first
        answer's date (see `api_date`), so the plan cannot change while it is read.
        """
        day = self.api_date(response)
        if day is not None:
            self.server_date = day

    def local_date(self) -> dt.date:
        """Today (UTC) by this machine's clock: where reports end when the API says nothing."""
        return self.clock().astimezone(dt.UTC).date()

    def api_date(self, response: requests.Response) -> dt.date | None:
        """The API's own date by an answer's `Date` header: reporting ends the day before.

        The API's date decides because reporting data is the API's: its "yesterday" is
        the last whole day it holds. A date more than a day from this machine's clock
        (a 2001 date, a cache serving a 3-day-old answer) would move "yesterday" so far
        that a sync reads nothing and succeeds; such a date is not trusted: one warning
        per run, and this machine's clock decides.

        Returns:
            The date, or None when the answer has no readable `Date` header.
        """
        header = response.headers.get("Date")
        if not header:
            return None
        try:
            served = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        if served.tzinfo is None:
            served = served.replace(tzinfo=dt.UTC)
        local = self.clock()
        simulated = self._may_simulate and SIMULATED_CLOCK_HEADER in response.headers
        if simulated or abs(served - local) <= MAX_CLOCK_SKEW:
            return served.astimezone(dt.UTC).date()
        day = local.astimezone(dt.UTC).date()
        if self._skew_reported.acquire(blocking=False):  # never released: once per run
            LOGGER.warning(
                "The API's Date header (%s) is %.1f days from this machine's clock (%s): "
                "not trusted (a stale cache or a wrong clock); reporting ends the day before "
                "%s, by this machine's clock.",
                header,
                abs((served - local).total_seconds()) / 86400,
                local.strftime("%Y-%m-%d %H:%M UTC"),
                day.isoformat(),
            )
        return day
