"""What one year of history costs in requests, per `aggregate_span` (day, week, month).

For each span, one sandbox portal (1,000 learners, 365 days of history, the model's other
defaults) and one real sync of the tap against it, in-process over HTTP, from the first day
of the portal's history to yesterday, with only the reporting streams selected. The portal's
request log gives the requests per endpoint, split into one-record probes (``page_size=1``:
the whole-range probe and the probes that skip empty stretches) and page reads; the tap's
output gives the rows emitted per stream. It reports; it is not a test (exit code 1 only
when a check of the counts fails).

    .venv/bin/python benchmarks/history_cost.py            # writes results/history_cost.txt
    .venv/bin/python benchmarks/history_cost.py --learners 200 --output /dev/null

Checks, per span and endpoint: page reads = the sum over windows of max(1, ceil(rows / 100))
(an empty window still costs its first page), and probes = 1 + one per group of windows
(``PROBE_GROUPS``) when there is more than one group. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import sys
import textwrap
import time
from collections import Counter, defaultdict
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from tap_udemy_business.keys import LEARNER_KEY
from tap_udemy_business.reporting import PROBE_GROUPS, window_start, windows
from tap_udemy_business.sandbox import DatasetParams, SandboxPortal
from tap_udemy_business.sandbox.server import API_PREFIX, ROUTES
from tap_udemy_business.settings import DEFAULT_PAGE_SIZE
from tap_udemy_business.tap import TapUdemyBusiness

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "history_cost.txt"
SPANS = ("day", "week", "month")
STREAMS = ("user_activity", "user_course_activity", "user_path_activity", "user_progress")
AGGREGATE = frozenset({"user_activity", "user_course_activity", "user_path_activity"})
LEARNERS = 1000
HISTORY_DAYS = 365
#: The unit the table is scaled to: requests for one year of history per 1,000 learners.
PER_LEARNERS = 1000
PER_DAYS = 365


class RecordSink:
    """Stands in for stdout: counts RECORD messages per stream and per window.

    The tap's writer writes bytes to ``sys.stdout.buffer``; this object is its own buffer.
    Only the rows' counts, windows and, for user_activity, learner keys are kept.
    """

    def __init__(self) -> None:
        """Nothing counted yet."""
        self.buffer = self
        self._carry = b""
        self.rows: Counter[str] = Counter()
        self.per_window: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.learners: set[str] = set()

    def write(self, data: bytes | str) -> int:
        """Count the complete lines in `data`; keep a partial last line for the next write."""
        if isinstance(data, str):
            data = data.encode()
        lines = (self._carry + data).split(b"\n")
        self._carry = lines.pop()
        for line in lines:
            if line.startswith(b'{"type":"RECORD"'):
                message = orjson.loads(line)
                stream, record = message["stream"], message["record"]
                self.rows[stream] += 1
                self.per_window[stream][record["from_date"]] += 1
                if stream == "user_activity":
                    self.learners.add(record[LEARNER_KEY])
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: lines are counted as they arrive."""


@dataclass
class SpanRun:
    """One span's sync: requests per endpoint, rows per stream, and the checks."""

    span: str
    wall: float
    probes: Counter[str] = field(default_factory=Counter)
    pages: Counter[str] = field(default_factory=Counter)
    other: Counter[str] = field(default_factory=Counter)  # requests to non-reporting paths
    statuses: Counter[int] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    windows: dict[str, int] = field(default_factory=dict)
    learners: int = 0
    #: Learners with a row in the portal's own whole-year user_activity query.
    truth_learners: int = 0
    #: Learners who had joined by the end of the history (the model spreads joins a little
    #: past it).
    joined: int = 0
    problems: list[str] = field(default_factory=list)


def catalog_selecting(config: dict[str, Any], streams: tuple[str, ...]) -> dict[str, Any]:
    """The tap's catalog with only `streams` selected."""
    catalog = TapUdemyBusiness(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata_entry in entry["metadata"]:
            if metadata_entry["breadcrumb"] == []:
                metadata_entry["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def endpoint_of(path: str) -> str:
    """The endpoint key of a request path, e.g. ``user_activity``; else the path."""
    org, _, route = path.removeprefix(API_PREFIX).partition("/")
    return ROUTES.get(route, path) if path.startswith(API_PREFIX) and org else path


def run_span(span: str, learners: int, history_days: int) -> SpanRun:
    """Sync every reporting stream over the portal's whole history with `span`."""
    params = DatasetParams(learners=learners, history_days=history_days)
    with SandboxPortal(dataset=params) as portal:
        today = portal.dataset.today
        first = today - dt.timedelta(days=history_days)
        config = portal.tap_config() | {"start_date": first.isoformat(), "aggregate_span": span}
        catalog = catalog_selecting(config, STREAMS)
        portal.clear_requests()
        sink = RecordSink()
        started = time.perf_counter()
        tap = TapUdemyBusiness(config=config, catalog=catalog, parse_env_config=False)
        with redirect_stdout(sink):
            tap.sync_all()
        wall = time.perf_counter() - started
        log = portal.requests
        last = today - dt.timedelta(days=1)
        truth = len(portal.ground_truth("user_activity", first, last))
        end = today.toordinal()
        joined = sum(portal.dataset.join_day(i) < end for i in range(learners))
    run = SpanRun(span, wall, rows=sink.rows, learners=len(sink.learners))
    run.truth_learners, run.joined = truth, joined
    for record in log:
        run.statuses[record.status] += 1
        endpoint = endpoint_of(record.path)
        if endpoint not in STREAMS:
            run.other[endpoint] += 1
        elif record.query.get("page_size") == "1":
            run.probes[endpoint] += 1
        else:
            run.pages[endpoint] += 1
    check(run, sink, first, last)
    return run


def check(run: SpanRun, sink: RecordSink, first: dt.date, last: dt.date) -> None:
    """Compare the requests with what the windows and their rows imply."""
    if set(run.statuses) != {200}:
        run.problems.append(f"statuses other than 200: {dict(run.statuses)}")
    for stream in STREAMS:
        span = run.span if stream in AGGREGATE else "block"
        spans = list(windows(window_start(first, span), last, span))
        run.windows[stream] = len(spans)
        per_window = sink.per_window[stream]
        pages = sum(
            max(1, math.ceil(per_window[start.isoformat()] / DEFAULT_PAGE_SIZE))
            for start, _ in spans
        )
        groups = math.ceil(len(spans) / PROBE_GROUPS[span])
        probes = 1 + (groups if groups > 1 else 0)
        if run.pages[stream] != pages:
            run.problems.append(f"{stream}: {run.pages[stream]} page reads, windows imply {pages}")
        if run.probes[stream] != probes:
            run.problems.append(f"{stream}: {run.probes[stream]} probes, expected {probes}")
        if sum(per_window.values()) != run.rows[stream]:
            run.problems.append(f"{stream}: rows outside the expected windows")
    if run.learners != run.truth_learners:
        run.problems.append(
            f"{run.learners} distinct learner_key in user_activity, but the portal's "
            f"whole-year query has {run.truth_learners} learners"
        )


def report(runs: list[SpanRun], learners: int, history_days: int, header: list[str]) -> str:
    """The table (Markdown-compatible), the checks and the notes, as one text."""
    scale = (PER_LEARNERS / learners) * (PER_DAYS / history_days)
    scaled = scale != 1
    lines = [*header, ""]
    unit = "requests per year per 1,000 learners"
    if scaled:
        unit += f" (measured x {scale:.3g})"
    lines += [
        f"| span | endpoint | windows | probes | pages | {unit} | rows emitted | rows/page |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        for stream in STREAMS:
            probes, pages, rows = run.probes[stream], run.pages[stream], run.rows[stream]
            per_page = f"{rows / pages:.1f}" if pages else "-"
            lines.append(
                f"| {run.span} | {stream} | {run.windows[stream]:,} | {probes:,} | {pages:,} | "
                f"{(probes + pages) * scale:,.0f} | {rows:,} | {per_page} |"
            )
        probes, pages = sum(run.probes.values()), sum(run.pages.values())
        rows = sum(run.rows.values())
        lines.append(
            f"| **{run.span}** | **total** | | **{probes:,}** | **{pages:,}** | "
            f"**{(probes + pages) * scale:,.0f}** | **{rows:,}** | {rows / pages:.1f} |"
        )
    lines += ["", "| span | requests | rows emitted | wall s | requests/s | records/s |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        requests = sum(run.statuses.values())
        rows = sum(run.rows.values())
        lines.append(
            f"| {run.span} | {requests:,} | {rows:,} | {run.wall:.1f} | "
            f"{requests / run.wall:,.0f} | {rows / run.wall:,.0f} |"
        )
    lines.append("")
    base = runs[0]
    base_total = sum(base.probes.values()) + sum(base.pages.values())
    for run in runs[1:]:
        total = sum(run.probes.values()) + sum(run.pages.values())
        agg = sum(run.probes[s] + run.pages[s] for s in AGGREGATE)
        base_agg = sum(base.probes[s] + base.pages[s] for s in AGGREGATE)
        lines.append(
            f"{run.span} vs {base.span}: {total / base_total:.2f} x the requests in all, "
            f"{agg / base_agg:.2f} x on the aggregate endpoints"
        )
    for run in runs:
        other = f"; other requests: {dict(run.other)}" if run.other else ""
        verdict = "; ".join(run.problems) if run.problems else "OK"
        lines.append(f"check {run.span}: {verdict}{other}")
    lines += ["", "Notes:"]
    for note in notes(runs, learners, history_days, scale):
        lines += textwrap.wrap(note, width=100, initial_indent="- ", subsequent_indent="  ")
    return "\n".join(lines) + "\n"


def notes(runs: list[SpanRun], learners: int, history_days: int, scale: float) -> list[str]:
    """What the table means and what it leaves out, one note a string."""
    active, joined = runs[0].learners, runs[0].joined
    per_window = ", ".join(
        f"{run.rows['user_activity'] / run.windows['user_activity']:.0f} per {run.span}"
        for run in runs
    )
    groups = ", ".join(f"{span} {size}" for span, size in PROBE_GROUPS.items())
    found = [
        (
            f"Active learners: {active:,} of {learners:,} seats ({active / learners:.0%}) have "
            "activity in the history (distinct learner_key in user_activity, equal to the rows of "
            f"the portal's own whole-history query); {joined:,} had joined by its end (the model "
            "spreads joins over the history and a sixth more). Active per window "
            f"(user_activity rows / windows): {per_window}. Requests follow the learners active "
            "per window (pages of 100 rows), not seats: the same seats with fewer learners "
            "active cost fewer pages, down to one page per window."
        ),
        (
            "probes: page_size=1 requests (one for the whole range, then one per group of "
            f"windows when there is more than one group: {groups} windows a group). pages: every "
            f"other request (page_size={DEFAULT_PAGE_SIZE}); an empty window still costs its "
            "first page."
        ),
        (
            "user_progress is read in 31-day blocks whatever aggregate_span is, so its cost is "
            "the same for every span. An aggregate row is a learner's totals for one window, so "
            "a longer span also emits fewer rows (one per learner and week or month)."
        ),
        (
            "Week and month windows are whole calendar windows: the first starts on the Monday "
            "or the 1st before start_date (before the history: no rows there)."
        ),
        (
            "Wall time: portal and tap in one process (one GIL), 0 ms latency, pages rendered "
            "on the fly; for information only."
        ),
    ]
    if scale != 1:
        found.append(
            f"Measured on {learners:,} learners x {history_days} days and multiplied by "
            f"{scale:.3g}: requests are not linear in either (pages round up per window)."
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Run every span, print the report, write it to `--output`; 1 if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=LEARNERS)
    parser.add_argument("--history-days", type=int, default=HISTORY_DAYS)
    parser.add_argument("--span", action="append", choices=SPANS, help="repeatable; default all")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"default {RESULTS}")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    header = [
        f"date:      {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"python:    {platform.python_version()}; singer-sdk {metadata.version('singer-sdk')}",
        (
            f"portal:    {args.learners:,} learners, {args.history_days} days of history, "
            "other DatasetParams defaults (40 courses, 6 learning paths, seed 7)"
        ),
        (
            "tap:       default settings but start_date = first day of the history and "
            "aggregate_span = span; the 4 reporting streams selected"
        ),
    ]
    runs = []
    for span in args.span or SPANS:
        runs.append(run_span(span, args.learners, args.history_days))
        print(f"[{span}: {runs[-1].wall:.1f} s]", file=sys.stderr)
    text = report(runs, args.learners, args.history_days, header)
    text += f"benchmark took {time.perf_counter() - started:.0f} s\n"
    print(text, end="")
    if str(args.output) != "/dev/null":
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    return 1 if any(run.problems for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
