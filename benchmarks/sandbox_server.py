"""Benchmark helper: serve the sandbox portal in its own process, pages rendered in advance.

``run.py`` starts this script as a subprocess, so the portal's CPU is not charged to the client
under test (the GIL is per process; the machine has other cores). It builds a ``SandboxPortal``
itself rather than using ``tap-udemy-business-sandbox``, because the CLI cannot prerender.

What to prerender is learnt, not hard-coded: ``--plain`` renders the plain loop's unfiltered
query up front, and after an untimed warm-up run of the tap, ``learn`` reads the request log
for the queries the tap sent (whatever windows it uses) and renders them all. ``prepare``, sent
before every timed run, touches every known query again: the page cache then answers, and the
portal's bounded memo of query selections holds what the next run needs.

Protocol (one JSON object per line on stdout, one command per line on stdin):

* on start: ``{"ready": true, "base_url": ..., "rows": {...}, ...}``;
* ``learn``: remember (and render) every query in the request log, reply with their number;
* ``prepare``: touch every known query, forget the request log, reply ``{"ok": true, ...}``;
* ``clear``: forget the request log;
* ``stats``: requests served since ``clear``, by status, and their response body bytes
  (``RequestRecord.bytes``);
* ``admissions``: every request charged to the rate limit since ``clear``, as (clock
  seconds, granted) pairs (for studying a run);
* ``quit`` (or end of input): stop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from tap_udemy_business.sandbox import DatasetParams, FaultParams, SandboxPortal
from tap_udemy_business.sandbox.faults import RETRY_AFTER_STYLES, parse_schedule
from tap_udemy_business.sandbox.model import CLASS_NAMES, Filters

if TYPE_CHECKING:
    from tap_udemy_business.sandbox import RequestRecord

ENDPOINT = "user_progress"
PATH = "analytics/user-progress/"
PAGE_SIZE = 100
FIELDS_PARAM = f"fields[{CLASS_NAMES[ENDPOINT]}]"
FILTER_NAMES = ("from_date", "to_date", "course_id", "user_email")
#: The rate limit's 429 share is reported for requests after this many seconds (the issue's
#: "after the first few seconds": the time a client needs to find the limit).
SETTLE_SECONDS = 5.0
SWITCH_INTERVAL_SECONDS = 0.0002
#: A prerendered query: page size, fields value, then the filters as sent.
QueryKey = tuple[int, str, tuple[tuple[str, str], ...]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, required=True)
    parser.add_argument("--history-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        default=dt.datetime.now(dt.UTC).date(),
        help="the portal's date; default today (UTC), the tap's own clock",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate-limit-rps", type=float)
    parser.add_argument("--rate-limit-burst", type=int)
    parser.add_argument("--rate-limit-retry-after", choices=RETRY_AFTER_STYLES, default="ceil")
    parser.add_argument("--rate-limit-schedule", type=parse_schedule, default=())
    parser.add_argument(
        "--start-date",
        type=dt.date.fromisoformat,
        help="the tap's start_date, to check that no row is older (reported in the ready line)",
    )
    parser.add_argument(
        "--plain", action="store_true", help="prerender the unfiltered @all query (plain loop)"
    )
    parser.add_argument("--page-cache-mb", type=int, default=1536)
    return parser


class Launcher:
    """The portal plus the queries to keep warm."""

    def __init__(self, args: argparse.Namespace) -> None:
        """Build (not start) the portal from the command line."""
        self.args = args
        self.portal = SandboxPortal(
            dataset=DatasetParams(
                seed=args.seed,
                learners=args.learners,
                history_days=args.history_days,
                today=args.today,
            ),
            faults=FaultParams(
                latency_ms=args.latency_ms,
                rate_limit_rps=args.rate_limit_rps,
                rate_limit_burst=args.rate_limit_burst,
                rate_limit_retry_after=args.rate_limit_retry_after,
                rate_limit_schedule=args.rate_limit_schedule,
            ),
            page_cache_bytes=args.page_cache_mb * 1024 * 1024,
        )
        self.today: dt.date = args.today
        self.known: list[QueryKey] = []
        if args.plain:
            self.known.append((PAGE_SIZE, "@all", ()))

    # -- warming ---------------------------------------------------------------------------
    def learn(self) -> int:
        """Add the full-size page queries of the request log to the known queries.

        Small pages (the tap's one-record count probes) are left out: prerendering renders every
        page of a query, which for a page size of 1 is every row on its own page.
        """
        for record in self.portal.requests:
            if record.status != 200 or not record.path.endswith(PATH):
                continue
            size = int(record.query.get("page_size", "0") or 0)
            if size < PAGE_SIZE:
                continue
            filters = tuple(
                (name, record.query[name]) for name in FILTER_NAMES if record.query.get(name)
            )
            key = (size, record.query.get(FIELDS_PARAM, "@default"), filters)
            if key not in self.known:
                self.known.append(key)
        return len(self.known)

    def warm(self) -> int:
        """Render (or touch) every known query, last-used first; return the pages touched.

        The portal memoizes a bounded number of query selections (LRU): touching the queries
        in reverse order of first use leaves the earliest ones most recently used.
        """
        return sum(
            self.portal.prerender(ENDPOINT, size, fields=fields, **dict(filters))
            for size, fields, filters in reversed(self.known)
        )

    # -- commands ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Requests served since the last ``clear``, by status, and their response body bytes."""
        log: list[RequestRecord] = self.portal.requests
        return {
            "requests": len(log),
            "statuses": dict(Counter(str(record.status) for record in log)),
            "bytes": sum(record.bytes for record in log),
            **self.limit_stats(),
        }

    def limit_stats(self) -> dict[str, Any]:
        """The rate limit's view: when requests came, and the 429 share after the first seconds.

        Read from the fault injector's admissions (every request charged to the limit), which
        start with the first request, as the limit's schedule does.
        """
        admissions = self.portal._injector.admissions  # noqa: SLF001 - the benchmark's probe
        if not admissions:
            return {}
        first = admissions[0][0]
        late = [granted for when, granted in admissions if when - first >= SETTLE_SECONDS]
        return {
            "limit_span": admissions[-1][0] - first,
            "late_requests": len(late),
            "late_throttled": late.count(False),
        }

    def ready_line(self, pages: int, seconds: float) -> dict[str, Any]:
        """What ``run.py`` needs to point a client at the portal and check its counts."""
        data = self.portal.dataset
        rows = {"all": _count(data, None)}
        if self.args.start_date is not None:
            rows["from_start_date"] = _count(data, self.args.start_date)
        return {
            "ready": True,
            "base_url": self.portal.base_url,
            "organization_id": self.portal.organization_id,
            "client_id": self.portal.client_id,
            "client_secret": self.portal.client_secret,
            "today": self.today.isoformat(),
            "rows": rows,
            "prerendered_pages": pages,
            "prerender_seconds": round(seconds, 2),
        }


def _count(dataset: Any, start: dt.date | None) -> int:
    return int(dataset.select(ENDPOINT, Filters(from_date=start)).count)


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Start, prerender, announce, then serve commands until ``quit`` or end of input."""
    # A gateway stamps a request when it arrives; here a handler thread may wait up to the
    # interpreter's switch interval (5 ms) for another thread rendering a page, which at a
    # limit of 50 requests/s and a burst of 1 would refuse requests sent on time. A short
    # interval keeps the token bucket's clock within a fraction of a millisecond.
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    launcher = Launcher(_parser().parse_args())
    launcher.portal.start()
    started = time.perf_counter()
    pages = launcher.warm()
    launcher.portal.clear_requests()
    _reply(launcher.ready_line(pages, time.perf_counter() - started))
    try:
        for line in sys.stdin:
            command = line.split()
            if not command:
                continue
            if command[0] == "quit":
                break
            if command[0] == "prepare":
                began = time.perf_counter()
                launcher.warm()
                launcher.portal.clear_requests()
                _reply({"ok": True, "seconds": round(time.perf_counter() - began, 2)})
            elif command[0] == "learn":
                began = time.perf_counter()
                known = launcher.learn()
                pages = launcher.warm()
                launcher.portal.clear_requests()
                _reply({"queries": known, "pages": pages, "seconds": time.perf_counter() - began})
            elif command[0] == "clear":
                launcher.portal.clear_requests()
                _reply({"ok": True})
            elif command[0] == "stats":
                _reply(launcher.stats())
            elif command[0] == "admissions":
                _reply({"admissions": list(launcher.portal._injector.admissions)})  # noqa: SLF001
            else:
                _reply({"error": f"unknown command {command[0]!r}"})
    finally:
        launcher.portal.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
