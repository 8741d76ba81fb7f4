"""Study one rate-limit shape: when the portal admitted or refused each request, second by second.

The grid (`rate_limits.py`) says how far a shape falls short; this says where the time went.
One portal with a token bucket of R requests/s and a burst of B (and a schedule, if given),
one run of the tap with default settings (as in the grid), then, from the portal's log of
admissions: when the first request came (the tap's start-up), successes and 429s per span
of seconds, the longest gaps between requests after the first 5 s (a page waiting out a
`Retry-After` with nothing else to send), the 429 share after 5 s, and the governor's own
lines ("Rate limited at ... pacing at ..."). With `--early S`, every request of the first S
seconds too: when it came, its answer, and the gap since the one before (the search).

    .venv/bin/python benchmarks/trace_limit.py 50 1
    .venv/bin/python benchmarks/trace_limit.py 50 1 --schedule 6.667:25,13.333:50
    .venv/bin/python benchmarks/trace_limit.py 2 5 --early 6
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HISTORY_DAYS, Clients, Portal, make_catalogs
from rate_limits import learners
from sandbox_server import SETTLE_SECONDS

from tap_udemy_business.sandbox.faults import parse_schedule

#: Spans of the timeline, in seconds from the tap's start.
SPANS = ((0, 3), (3, 6), (6, 10), (10, 15), (15, 20), (20, 30), (30, 60))
GAPS_SHOWN = 8


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rate", type=float, help="R: requests/s")
    parser.add_argument("burst", type=int, help="B: the bucket's size")
    parser.add_argument("--schedule", default="", help="changes of the limit, SECONDS:RPS,...")
    parser.add_argument(
        "--early", type=float, default=0.0, help="list every request of the first SECONDS s"
    )
    return parser


def main() -> int:
    """Run the tap once against the shape and print its timeline."""
    args = _parser().parse_args()
    schedule = parse_schedule(args.schedule) if args.schedule else ()
    today = dt.datetime.now(dt.UTC).date()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        portal = Portal(
            learners=learners(args.rate),
            start_date=(today - dt.timedelta(days=HISTORY_DAYS)).isoformat(),
            rate_limit_rps=args.rate,
            rate_limit_burst=args.burst,
            rate_limit_schedule=schedule,
        )
        try:
            command = Clients(work, make_catalogs(work)).tap(portal)
            portal.command("prepare")
            log = work / "stderr.txt"
            with log.open("w") as stderr:
                started = time.monotonic()  # the portal's clock: the same monotonic clock
                subprocess.run(command, stdout=subprocess.DEVNULL, stderr=stderr, check=True)
                wall = time.monotonic() - started
            admissions = [
                (when - started, granted)
                for when, granted in portal.command("admissions")["admissions"]
            ]
            _report(admissions, wall, log.read_text().splitlines())
            _timeline([(at, granted) for at, granted in admissions if at < args.early])
        finally:
            portal.close()
    return 0


def _report(admissions: list[tuple[float, bool]], wall: float, log: list[str]) -> None:
    refused = sum(not granted for _, granted in admissions)
    print(f"wall {wall:.2f} s, {len(admissions)} requests, {refused} answered 429")
    if not admissions:
        return
    first = admissions[0][0]
    print(f"first request at +{first:.3f} s, last at +{admissions[-1][0]:.3f} s")
    for start, end in SPANS:
        inside = [granted for at, granted in admissions if start <= at < end]
        if inside:
            print(
                f"  [{start:2d}, {end:2d}) s: {sum(inside) / (end - start):6.2f} successes/s, "
                f"{inside.count(False)} 429s"
            )
    late = [granted for at, granted in admissions if at - first >= SETTLE_SECONDS]
    if late:
        print(f"429s after the first {SETTLE_SECONDS:g} s: {late.count(False) / len(late):.1%}")
    gaps = sorted(
        (
            (later - earlier, later)
            for (earlier, _), (later, _) in itertools.pairwise(admissions)
            if later - first >= SETTLE_SECONDS
        ),
        reverse=True,
    )
    shown = ", ".join(f"{gap * 1000:.0f} ms at {at:.2f} s" for gap, at in gaps[:GAPS_SHOWN])
    print(f"longest gaps after {SETTLE_SECONDS:g} s: {shown}")
    for line in log:
        if "Rate limited" in line:
            print("  governor:", line.rsplit("| ", 1)[-1])


def _timeline(admissions: list[tuple[float, bool]]) -> None:
    """Each request: when it reached the portal, 200 or 429, and the gap since the last."""
    before = math.nan
    for at, granted in admissions:
        gap = "" if math.isnan(before) else f"+{(at - before) * 1000:5.0f} ms"
        print(f"  {at:8.3f} s  {'200' if granted else '429'}  {gap}")
        before = at


if __name__ == "__main__":
    sys.exit(main())
