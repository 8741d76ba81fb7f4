"""Benchmark suite: the tap against plain request loops, on the sandbox portal.

One command, ``python benchmarks/run.py``, prints a table of records/s and peak RSS and one
PASS/FAIL line per target of the issue (ratios from this one run). It reports; it is not a
test: the exit code is 0 even when a target is missed, and 1 only when something crashed (a
process exited non-zero, or a client read the wrong number of rows).

Every measured client is a separate process: the tap's own CLI (``tap-udemy-business``, only
the ``user_progress`` stream selected) or ``plain_loop.py`` (the API guide's example extended
to page). The sandbox portal runs in a third process (``sandbox_server.py``) with its pages
rendered in advance, so the client is what is measured. Wall time runs from process start to
exit; records/s is records / wall time; peak RSS is the child's own high-water mark.

See ``benchmarks/README.md`` for the scenarios, the columns and the latest figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = sys.executable
TAP = str(Path(PYTHON).with_name("tap-udemy-business"))
STREAM = "user_progress"
PAGE_SIZE = 100
HISTORY_DAYS = 90
RATE_LIMIT_RPS = 20.0
THREADS = 8
#: Fields the pushdown catalog keeps selected (keys and the replication key stay anyway).
PUSHDOWN_FIELDS = ("item_completion_ratio", "item_completion_time")
#: Unescaped, these byte strings occur only as a Singer message's type (record values are
#: JSON strings, whose quotes are escaped), whichever spacing the message writer uses.
RECORD_MARKERS = (b'"type": "RECORD"', b'"type":"RECORD"')
MB = 1024 * 1024
LATEST = HERE / "results" / "latest.txt"
README = HERE / "README.md"
README_START = "<!-- latest figures: start -->"
README_END = "<!-- latest figures: end -->"

# Targets of the issue (part 5).
TARGET_100MS_RATIO = 6.5
TARGET_0MS_RATIO = 1.0
TARGET_RATE_SHARE = 0.9
TARGET_RSS_MB = 100.0
#: "Flat": peak RSS at the largest size (1M rows) at most this many MB above the smallest's
#: (10k rows), i.e. 10 % of the budget over 100 x the rows. An absolute margin, not a ratio:
#: the tap's fixed footprint (interpreter, SDK, schemas) would otherwise set the tolerance.
TARGET_RSS_GROWTH_MB = 10.0
TARGET_ROWS_100MS = 20_000
TARGET_ROWS_0MS = 200_000


# -- measuring one process -------------------------------------------------------------------
@dataclass
class Measurement:
    """One process run: what it produced and what it cost."""

    label: str
    records: int
    wall: float
    rss_mb: float
    cpu: float
    returncode: int
    requests: int | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    bytes: int | None = None
    stderr_tail: str = ""

    @property
    def rate(self) -> float:
        """Records per second of wall time."""
        return self.records / self.wall if self.wall > 0 else 0.0


def _status_kb(pid: int | str, key: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``), if readable."""
    try:
        with Path(f"/proc/{pid}/status").open() as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class _Counter(threading.Thread):
    """Drains a pipe and counts records in it (RECORD messages, or lines).

    It reads into one reused buffer, so the runner's memory stays flat however much the child
    writes (the runner's own peak RSS matters: see ``measure``).
    """

    def __init__(self, stream: IO[bytes], *, lines: bool) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self._lines = lines
        self.count = 0

    def run(self) -> None:
        buffer = bytearray(1 << 16)
        view = memoryview(buffer)
        carry = max(len(marker) for marker in RECORD_MARKERS) - 1
        kept = 0  # bytes carried over from the previous read, at the start of the buffer
        while read := self._stream.readinto(view[kept:]):  # type: ignore[attr-defined]
            end = kept + read
            if self._lines:
                self.count += buffer.count(b"\n", kept, end)
                continue
            for marker in RECORD_MARKERS:
                # Matches inside the carried bytes were counted by the previous read.
                self.count += buffer.count(marker, 0, end) - buffer.count(marker, 0, kept)
            kept = min(carry, end)
            buffer[:kept] = buffer[end - kept : end]
        view.release()
        self._stream.close()


class _HighWater(threading.Thread):
    """Polls the child's ``VmHWM`` (the fallback when ``ru_maxrss`` cannot be trusted)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self._interval = interval
        self._done = threading.Event()
        self.kb = 0

    def run(self) -> None:
        while not self._done.is_set():
            value = _status_kb(self._pid, "VmHWM")
            if value is None:
                return
            self.kb = max(self.kb, value)
            self._done.wait(self._interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def measure(label: str, command: Sequence[str], *, count_lines: bool) -> Measurement:
    """Run ``command``, count its records on stdout, and time it from start to exit.

    Peak RSS: ``ru_maxrss`` from ``wait4`` is the child's exact high-water mark, except that on
    Linux it starts from the parent's own at spawn time (``exec`` keeps the larger of the
    two). This runner stays small, so a larger value is the child's; otherwise the polled
    ``VmHWM`` of the child's own address space is reported.
    """
    own_hwm_kb = _status_kb("self", "VmHWM") or 0
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, bufsize=0
        )
        assert process.stdout is not None  # noqa: S101 - PIPE was asked for
        counter = _Counter(process.stdout, lines=count_lines)
        counter.start()
        high_water = _HighWater(process.pid)
        high_water.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        high_water.stop()
        counter.join()
        stderr.seek(max(0, stderr.seek(0, os.SEEK_END) - 4000))
        tail = stderr.read().decode("utf-8", "replace")
    rss_kb = usage.ru_maxrss if usage.ru_maxrss > own_hwm_kb else high_water.kb
    return Measurement(
        label=label,
        records=counter.count,
        wall=wall,
        rss_mb=rss_kb / 1024,
        cpu=usage.ru_utime + usage.ru_stime,
        returncode=process.returncode,
        stderr_tail=tail,
    )


# -- the sandbox portal process --------------------------------------------------------------
class Portal:
    """``sandbox_server.py`` in a subprocess, driven over its stdin/stdout line protocol."""

    def __init__(self, *, learners: int, latency_ms: float = 0.0, **options: Any) -> None:
        """Start the portal and wait until its pages are rendered."""
        command = [
            PYTHON,
            str(HERE / "sandbox_server.py"),
            f"--learners={learners}",
            f"--history-days={HISTORY_DAYS}",
            f"--latency-ms={latency_ms}",
        ]
        if options.get("rate_limit_rps") is not None:
            command.append(f"--rate-limit-rps={options['rate_limit_rps']}")
        if options.get("start_date") is not None:
            command.append(f"--start-date={options['start_date']}")
        if options.get("plain"):
            command.append("--plain")
        self.latency_ms = latency_ms
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.info = self._read()
        if not self.info.get("ready"):
            msg = f"the sandbox did not start: {self.info}"
            raise RuntimeError(msg)

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None  # noqa: S101 - PIPE was asked for
        line = self._process.stdout.readline()
        if not line:
            msg = f"the sandbox process ended (exit {self._process.wait()})"
            raise RuntimeError(msg)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def command(self, text: str) -> dict[str, Any]:
        """Send one command, return its JSON reply."""
        assert self._process.stdin is not None  # noqa: S101 - PIPE was asked for
        self._process.stdin.write(text + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Ask the portal to stop, and make sure it did."""
        try:
            if self._process.stdin is not None:
                self._process.stdin.write("quit\n")
                self._process.stdin.close()
            self._process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()

    @property
    def rows(self) -> int:
        """user_progress rows of the whole history (what every client must read)."""
        return int(self.info["rows"]["all"])

    @property
    def today(self) -> dt.date:
        """The portal's date."""
        return dt.date.fromisoformat(self.info["today"])

    def start_date(self) -> str:
        """The tap's ``start_date``: the first day of the portal's history."""
        return (self.today - dt.timedelta(days=HISTORY_DAYS)).isoformat()

    def run(self, label: str, command: Sequence[str], *, count_lines: bool) -> Measurement:
        """Measure one client against this portal, with the server's request statistics."""
        self.command("prepare")
        result = measure(label, command, count_lines=count_lines)
        stats = self.command("stats")
        result.requests = stats.get("requests")
        result.statuses = stats.get("statuses", {})
        result.bytes = stats.get("bytes")
        return result


# -- clients ---------------------------------------------------------------------------------
class Clients:
    """Builds the command lines of the tap and of the plain loops for one portal."""

    def __init__(self, workdir: Path, catalogs: dict[str, Path]) -> None:
        """Keep the scratch directory (configs) and the catalogs (made once)."""
        self.workdir = workdir
        self.catalogs = catalogs

    def tap(self, portal: Portal, catalog: str = "all_fields") -> list[str]:
        """The tap with default settings: only the API coordinates and ``start_date``."""
        config = {
            "api_url": portal.info["base_url"],
            "organization_id": portal.info["organization_id"],
            "client_id": portal.info["client_id"],
            "client_secret": portal.info["client_secret"],
            "start_date": portal.start_date(),
        }
        path = self.workdir / "config.json"
        path.write_text(json.dumps(config))
        return [TAP, "--config", str(path), "--catalog", str(self.catalogs[catalog])]

    @staticmethod
    def plain(portal: Portal, *, threads: int = 1, session: bool = True) -> list[str]:
        """The plain requests + json.dumps loop."""
        command = [
            PYTHON,
            str(HERE / "plain_loop.py"),
            f"--api-url={portal.info['base_url']}",
            f"--organization-id={portal.info['organization_id']}",
            f"--client-id={portal.info['client_id']}",
            f"--client-secret={portal.info['client_secret']}",
            f"--threads={threads}",
            f"--page-size={PAGE_SIZE}",
        ]
        if not session:
            command.append("--no-session")
        return command


def make_catalogs(workdir: Path) -> dict[str, Path]:
    """Discover once; write a catalog with only user_progress, and one with most fields off."""
    config = workdir / "discover-config.json"
    config.write_text(
        json.dumps(
            {
                "api_url": "http://127.0.0.1:9",
                "organization_id": 1,
                "client_id": "discover",
                "client_secret": "discover",
            }
        )
    )
    found = subprocess.run(
        [TAP, "--config", str(config), "--discover"], capture_output=True, check=True
    )
    catalog = json.loads(found.stdout)
    catalogs: dict[str, Path] = {}
    for name, keep in (("all_fields", None), ("pushdown", PUSHDOWN_FIELDS)):
        for stream in catalog["streams"]:
            chosen = stream["tap_stream_id"] == STREAM
            for entry in stream["metadata"]:
                breadcrumb = entry["breadcrumb"]
                if not breadcrumb:
                    entry["metadata"]["selected"] = chosen
                elif chosen:
                    entry["metadata"]["selected"] = keep is None or breadcrumb[-1] in keep
        path = workdir / f"catalog-{name}.json"
        path.write_text(json.dumps(catalog))
        catalogs[name] = path
    return catalogs


# -- scenarios -------------------------------------------------------------------------------
@dataclass
class Row:
    """A line of the table: one variant of one scenario (median of its repeats)."""

    scenario: str
    variant: str
    rows: int
    runs: list[Measurement]
    note: str = ""

    @property
    def median(self) -> Measurement:
        """The run with the median records/s (the lower middle for an even count)."""
        ordered = sorted(self.runs, key=lambda run: run.rate)
        return ordered[(len(ordered) - 1) // 2]


@dataclass
class Suite:
    """Settings of this run, the rows measured so far, and the problems seen."""

    quick: bool
    repeats: int
    clients: Clients
    out: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, row: Row) -> Row:
        """Keep a row, check its runs, and print it as soon as it is known."""
        for run in row.runs:
            if run.returncode != 0:
                self.errors.append(
                    f"{row.scenario}/{row.variant}: exit {run.returncode}\n{run.stderr_tail}"
                )
            elif run.records != row.rows:
                self.errors.append(
                    f"{row.scenario}/{row.variant}: read {run.records:,} records, "
                    f"expected {row.rows:,}"
                )
        self.rows.append(row)
        self.out(format_row(row))
        return row

    def find(self, scenario: str, variant: str) -> Row | None:
        """The row of a scenario's variant, if it was run."""
        return next(
            (row for row in self.rows if row.scenario == scenario and row.variant == variant),
            None,
        )


def _learners(full: int, quick: int, suite: Suite) -> int:
    return quick if suite.quick else full


def _compare(suite: Suite, scenario: str, portal: Portal) -> None:
    """The tap against the plain loops (sequential, 8 threads, guide-literal), interleaved."""
    clients = suite.clients
    variants: list[tuple[str, Callable[[], list[str]], bool, int]] = [
        ("tap (default settings)", lambda: clients.tap(portal), False, suite.repeats),
        ("plain loop", lambda: clients.plain(portal), True, suite.repeats),
        (
            f"plain loop, {THREADS} threads",
            lambda: clients.plain(portal, threads=THREADS),
            True,
            suite.repeats,
        ),
        ("plain loop, requests.request", lambda: clients.plain(portal, session=False), True, 1),
    ]
    runs: dict[str, list[Measurement]] = {name: [] for name, *_ in variants}
    for repeat in range(suite.repeats):
        for name, command, lines, times in variants:
            if repeat < times:
                runs[name].append(portal.run(name, command(), count_lines=lines))
    for name, *_ in variants:
        note = "guide-literal: new connection per page" if "requests.request" in name else ""
        suite.record(Row(scenario, name, portal.rows, runs[name], note))


def scenario_zero_latency(suite: Suite) -> None:
    """(a) 0 ms per page, >= 200,000 rows: the tap vs the plain loops."""
    learners = _learners(10_000, 1_000, suite)
    with _portal(suite, learners=learners, plain=True) as portal:
        _compare(suite, "0 ms", portal)


def scenario_latency_100ms(suite: Suite) -> None:
    """(b) 100 ms per page, >= 20,000 rows: the tap vs the plain loops."""
    learners = _learners(1_000, 200, suite)
    with _portal(suite, learners=learners, latency_ms=100.0, plain=True) as portal:
        _compare(suite, "100 ms", portal)


def scenario_rate_limit(suite: Suite) -> None:
    """(c) A rate limit of R requests/s: the tap should get >= 0.9 x R x page size records/s."""
    learners = _learners(2_000, 500, suite)
    # No warm-up run: it would be throttled too (and 20 pages/s are no load for the portal).
    with _portal(
        suite, learners=learners, rate_limit_rps=RATE_LIMIT_RPS, warm_catalogs=()
    ) as portal:
        run = portal.run("tap", suite.clients.tap(portal), count_lines=False)
        throttled = run.statuses.get("429", 0)
        pages = run.statuses.get("200", 0)
        note = (
            f"R = {RATE_LIMIT_RPS:g}; {(run.requests or 0) / run.wall:.1f} req/s sent, "
            f"{throttled} answered 429; {run.records / max(1, pages):.0f} records per 200 page"
        )
        suite.record(
            Row(f"{RATE_LIMIT_RPS:g} req/s", "tap (default settings)", portal.rows, [run], note)
        )


#: Learners giving just over 10k, 100k and 1M user_progress rows over 90 days.
RSS_SIZES: tuple[tuple[str, int], ...] = (("10k", 470), ("100k", 4_600), ("1M", 46_200))


def scenario_rss(suite: Suite) -> None:
    """(d) Peak RSS of the tap at 10k, 100k and 1M rows (``--quick`` skips 1M).

    Pages are not rendered in advance here (1M rows would need ~1 GB of cache and ~30 s):
    the portal renders them while the tap reads, so records/s is indicative only.
    """
    sizes = RSS_SIZES[:2] if suite.quick else RSS_SIZES
    for size, learners in sizes:
        with _portal(suite, learners=learners, warm_catalogs=()) as portal:
            run = portal.run("tap", suite.clients.tap(portal), count_lines=False)
            suite.record(
                Row(
                    f"RSS {size}",
                    "tap (default settings)",
                    portal.rows,
                    [run],
                    "pages rendered on the fly",
                )
            )


def scenario_bytes(suite: Suite) -> None:
    """(e) Response bytes of a user_progress sync with every field vs most fields deselected."""
    learners = _learners(1_000, 200, suite)
    catalogs = ("all_fields", "pushdown")
    with _portal(suite, learners=learners, warm_catalogs=catalogs) as portal:
        for variant, catalog in (
            ("tap, all fields", "all_fields"),
            ("tap, field pushdown", "pushdown"),
        ):
            command = suite.clients.tap(portal, catalog)
            run = portal.run(variant, command, count_lines=False)
            note = "" if catalog == "all_fields" else f"keeps {', '.join(PUSHDOWN_FIELDS)} + keys"
            suite.record(Row("bytes", variant, portal.rows, [run], note))


@contextlib.contextmanager
def _portal(  # noqa: PLR0913 - keyword-only knobs of one portal
    suite: Suite,
    *,
    learners: int,
    latency_ms: float = 0.0,
    rate_limit_rps: float | None = None,
    plain: bool = False,
    warm_catalogs: Sequence[str] = ("all_fields",),
) -> Iterator[Portal]:
    """A portal with ``learners`` learners, the clients' pages rendered in advance.

    ``plain``: render the plain loop's query at start. ``warm_catalogs``: run the tap once with
    each catalog, untimed, then have the portal learn (and render) every query it sent, so
    the timed runs meet a warm cache whatever windows the tap reads.
    """
    today = dt.datetime.now(dt.timezone.utc).date()
    started = time.perf_counter()
    portal = Portal(
        learners=learners,
        latency_ms=latency_ms,
        rate_limit_rps=rate_limit_rps,
        start_date=(today - dt.timedelta(days=HISTORY_DAYS)).isoformat(),
        plain=plain,
    )
    try:
        rows = portal.info["rows"]
        if rows["from_start_date"] != rows["all"]:
            suite.errors.append(f"rows older than the tap's start_date: {rows}")
        pages = int(portal.info["prerendered_pages"])
        for catalog in warm_catalogs:
            warm_up = measure("warm-up", suite.clients.tap(portal, catalog), count_lines=False)
            if warm_up.returncode != 0:
                suite.errors.append(f"warm-up run of the tap failed:\n{warm_up.stderr_tail}")
        if warm_catalogs:
            pages += int(portal.command("learn")["pages"])
        prepared = "pages rendered on the fly" if pages == 0 else f"{pages:,} pages prerendered"
        suite.out(
            f"  [portal: {learners:,} learners, {rows['all']:,} rows, latency {latency_ms:g} ms, "
            f"{prepared}; ready in {time.perf_counter() - started:.1f} s]"
        )
        yield portal
    finally:
        portal.close()


SCENARIOS: dict[str, Callable[[Suite], None]] = {
    "zero_latency": scenario_zero_latency,
    "latency_100ms": scenario_latency_100ms,
    "rate_limit": scenario_rate_limit,
    "rss": scenario_rss,
    "bytes": scenario_bytes,
}


# -- reporting -------------------------------------------------------------------------------
COLUMNS = (
    ("scenario", 11, "<"),
    ("variant", 30, "<"),
    ("rows", 9, ">"),
    ("runs", 4, ">"),
    ("wall s", 7, ">"),
    ("records/s", 10, ">"),
    ("peak RSS MB", 11, ">"),
    ("CPU s", 6, ">"),
    ("requests", 8, ">"),
    ("MB recv", 8, ">"),
)


def _line(values: Sequence[str]) -> str:
    return "  ".join(
        f"{value:{align}{width}}" for value, (_, width, align) in zip(values, COLUMNS, strict=True)
    ).rstrip()


def header() -> str:
    """The table's column titles and rule."""
    titles = _line([title for title, _, _ in COLUMNS])
    return titles + "\n" + "-" * len(titles)


def format_row(row: Row) -> str:
    """One table line: the median run of a variant."""
    run = row.median
    received = f"{run.bytes / MB:.1f}" if run.bytes else ""
    line = _line(
        [
            row.scenario,
            row.variant,
            f"{row.rows:,}",
            str(len(row.runs)),
            f"{run.wall:.2f}",
            f"{run.rate:,.0f}",
            f"{run.rss_mb:.1f}",
            f"{run.cpu:.2f}",
            f"{run.requests:,}" if run.requests is not None else "",
            received,
        ]
    )
    if len(row.runs) > 1:
        rates = ", ".join(f"{r.rate:,.0f}" for r in row.runs)
        line += f"   (runs: {rates})"
    if row.note:
        line += f"   {row.note}"
    return line


def _verdict(ok: bool) -> str:  # noqa: FBT001 - a plain predicate
    return "PASS" if ok else "FAIL"


def targets(suite: Suite) -> list[str]:
    """One PASS/FAIL line per target of the issue, with its ratio."""
    lines: list[str] = []
    lines.extend(_speed_target(suite, "100 ms", TARGET_100MS_RATIO, TARGET_ROWS_100MS))
    lines.extend(_speed_target(suite, "0 ms", TARGET_0MS_RATIO, TARGET_ROWS_0MS))
    rate = suite.find(f"{RATE_LIMIT_RPS:g} req/s", "tap (default settings)")
    if rate is not None:
        run = rate.median
        goal = TARGET_RATE_SHARE * RATE_LIMIT_RPS * PAGE_SIZE
        ok = run.returncode == 0 and run.records == rate.rows and run.rate >= goal
        lines.append(
            f"{_verdict(ok)}  rate limit {RATE_LIMIT_RPS:g} req/s: {run.rate:,.0f} records/s = "
            f"{run.rate / (RATE_LIMIT_RPS * PAGE_SIZE):.2f} x R x page_size "
            f"(target >= {TARGET_RATE_SHARE} x, {goal:,.0f} records/s); "
            f"run {'completed' if run.returncode == 0 else 'FAILED'}"
        )
    lines.extend(_rss_targets(suite))
    pushed = suite.find("bytes", "tap, field pushdown")
    full = suite.find("bytes", "tap, all fields")
    if pushed and full and pushed.median.bytes and full.median.bytes:
        ratio = pushed.median.bytes / full.median.bytes
        lines.append(
            f"INFO  field pushdown: {pushed.median.bytes / MB:.1f} MB vs "
            f"{full.median.bytes / MB:.1f} MB with all fields ({ratio:.2f} x, "
            f"{pushed.median.bytes / max(1, pushed.rows):.0f} vs "
            f"{full.median.bytes / max(1, full.rows):.0f} bytes/record)"
        )
    return lines


def _speed_target(suite: Suite, scenario: str, goal: float, min_rows: int) -> list[str]:
    tap = suite.find(scenario, "tap (default settings)")
    plain = suite.find(scenario, "plain loop")
    if tap is None or plain is None:
        return []
    ratio = tap.median.rate / plain.median.rate if plain.median.rate else 0.0
    size = "" if tap.rows >= min_rows else f" [only {tap.rows:,} rows: below the target's size]"
    threads = suite.find(scenario, f"plain loop, {THREADS} threads")
    extra = ""
    if threads is not None and threads.median.rate:
        extra = f"; vs {THREADS} threads {tap.median.rate / threads.median.rate:.2f} x"
    return [
        (
            f"{_verdict(ratio >= goal)}  {scenario} per page, {tap.rows:,} rows: tap "
            f"{tap.median.rate:,.0f} / plain loop {plain.median.rate:,.0f} records/s = "
            f"{ratio:.2f} x (target >= {goal} x){extra}{size}"
        )
    ]


def _rss_targets(suite: Suite) -> list[str]:
    taps = [row for row in suite.rows if row.variant.startswith("tap")]
    if not taps:
        return []
    worst = max(taps, key=lambda row: max(run.rss_mb for run in row.runs))
    peak = max(run.rss_mb for run in worst.runs)
    lines = [
        (
            f"{_verdict(peak <= TARGET_RSS_MB)}  peak RSS of the tap: {peak:.1f} MB at most "
            f"({worst.scenario}, {worst.rows:,} rows; target <= {TARGET_RSS_MB:g} MB)"
        )
    ]
    sized = [row for row in suite.rows if row.scenario.startswith("RSS ")]
    if len(sized) >= 2:
        small, large = sized[0], sized[-1]
        growth = large.median.rss_mb - small.median.rss_mb
        steps = " -> ".join(f"{row.median.rss_mb:.1f} MB ({row.rows:,} rows)" for row in sized)
        lines.append(
            f"{_verdict(growth <= TARGET_RSS_GROWTH_MB)}  RSS flat: {steps}: "
            f"+{growth:.1f} MB over {large.rows / small.rows:.0f} x the rows "
            f"(target <= +{TARGET_RSS_GROWTH_MB:g} MB)"
        )
    return lines


def machine() -> list[str]:
    """Where the figures come from."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"date:      {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        (
            f"machine:   nproc {len(os.sched_getaffinity(0))}, {model}, "
            f"{platform.system()} {platform.release()}"
        ),
        f"python:    {platform.python_version()} ({PYTHON})",
        (
            f"packages:  singer-sdk {metadata.version('singer-sdk')}, "
            f"requests {metadata.version('requests')}, tap git {commit or '?'}"
        ),
        f"load avg:  {load} (1, 5, 15 min) at start",
    ]


def save_in_readme(report: str) -> None:
    """Replace the figures between the README's markers with this report."""
    text = README.read_text()
    head, start, rest = text.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not (start and end):
        sys.stderr.write(f"run.py: {README.name} has no figure markers; not updated\n")
        return
    README.write_text(f"{head}{start}\n```text\n{report}```\n{end}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios and print the table and the targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each, no 1M")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="run only this (repeatable)"
    )
    parser.add_argument("--repeats", type=int, help="runs per speed variant (default 3; quick 1)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--save",
        action="store_true",
        help=f"write the report to {LATEST.relative_to(REPO)} and into README.md's figures",
    )
    args = parser.parse_args(argv)
    if not Path(TAP).exists() or shutil.which(PYTHON) is None:
        sys.stderr.write(f"run.py: {TAP} not found: run with the tap's virtualenv Python\n")
        return 1
    report: list[str] = []

    def out(text: str) -> None:
        report.append(text)
        print(text, flush=True)

    started = time.perf_counter()
    for line in machine():
        out(line)
    mode = "quick (small sizes)" if args.quick else "full"
    repeats = args.repeats or (1 if args.quick else 3)
    out(f"mode:      {mode}; speed variants: median of {repeats} run(s)")
    out("")
    out(header())
    with tempfile.TemporaryDirectory(prefix="tap-udemy-bench-") as scratch:
        workdir = Path(scratch)
        suite = Suite(args.quick, repeats, Clients(workdir, make_catalogs(workdir)), out)
        for name in args.scenario or list(SCENARIOS):
            SCENARIOS[name](suite)
    out("")
    for line in targets(suite):
        out(line)
    elapsed = time.perf_counter() - started
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    out(f"suite took {elapsed / 60:.1f} min; load avg at the end: {load}")
    own = (_status_kb("self", "VmHWM") or 0) / 1024
    out(
        f"(this runner's own peak RSS: {own:.1f} MB; a child's ru_maxrss is used when above the "
        "runner's peak at its spawn, else the child's polled VmHWM)"
    )
    for error in suite.errors:
        out(f"ERROR  {error}")
    text = "\n".join(report) + "\n"
    for path in [args.output] if args.output else []:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if args.save:
        LATEST.write_text(text)
        save_in_readme(text)
    return 1 if suite.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
