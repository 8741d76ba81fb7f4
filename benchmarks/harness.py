"""The benchmarks' harness: run a client process, measure it, and drive a sandbox portal.

Shared by ``run.py`` (the suite) and ``rate_limits.py`` (the rate-limit grid).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from typing_extensions import override

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = sys.executable
TAP = str(Path(PYTHON).with_name("tap-udemy-business"))
STREAM = "user_progress"
PAGE_SIZE = 100
HISTORY_DAYS = 90
THREADS = 8
#: Fields the pushdown catalog keeps selected (keys and the replication key stay anyway).
PUSHDOWN_FIELDS = ("item_completion_ratio", "item_completion_time")
#: Unescaped, these byte strings occur only as a Singer message's type (record values are
#: JSON strings, whose quotes are escaped), whichever spacing the message writer uses.
RECORD_MARKERS = (b'"type": "RECORD"', b'"type":"RECORD"')
MB = 1024 * 1024
LIMIT_STATS = ("limit_span", "late_requests", "late_throttled")
LATEST = HERE / "results" / "latest.txt"
README = HERE / "README.md"
README_START = "<!-- latest figures: start -->"
README_END = "<!-- latest figures: end -->"


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
    #: The portal's rate limit's view of the run (see ``sandbox_server.limit_stats``).
    limit: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Records per second of wall time."""
        return self.records / self.wall if self.wall > 0 else 0.0


def status_kb(pid: int | str, key: str) -> int | None:
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

    @override
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


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started that still run (from ``/proc``; empty if unreadable)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


class _HighWater(threading.Thread):
    """Polls the child's ``VmHWM``, and its own children's (the tap's page worker).

    The child's own peak is the fallback when ``ru_maxrss`` cannot be trusted. Its
    children's peaks are added to it: ``ru_maxrss`` from ``wait4`` is the larger of a
    process's and its children's, never their sum, and both hold memory at once.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self._interval = interval
        self._done = threading.Event()
        self.kb = 0
        self._children: dict[int, int] = {}

    @property
    def children_kb(self) -> int:
        """The sum of the peaks seen of each of the child's own children."""
        return sum(self._children.values())

    @override
    def run(self) -> None:
        while not self._done.is_set():
            value = status_kb(self._pid, "VmHWM")
            if value is None:
                return
            self.kb = max(self.kb, value)
            for child in children_of(self._pid):
                peak = status_kb(child, "VmHWM") or 0
                self._children[child] = max(self._children.get(child, 0), peak)
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
    own_hwm_kb = status_kb("self", "VmHWM") or 0
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
    own_kb = usage.ru_maxrss if usage.ru_maxrss > own_hwm_kb else high_water.kb
    rss_kb = own_kb + high_water.children_kb
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
def warm_the_bytecode_cache() -> None:
    """Have every process of the suite use compiled modules, as an installed program does.

    `make` keeps bytecode under ``PYTHONPYCACHEPREFIX`` (its pip installs wrote the
    site-packages' there too), so with the suite started directly and that variable unset
    (or ``PYTHONDONTWRITEBYTECODE`` set, as on some CI machines) every run of the tap would
    compile singer-sdk and its own modules again (~0.35 s), and the plain loop
    ``requests`` (~0.08 s). So the suite uses `make`'s cache, and fills it before the first
    timed run: one run of the tap's ``--about`` and one import of ``requests``.
    """
    if not os.environ.get("PYTHONPYCACHEPREFIX"):
        home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(home) / "tap-udemy-business" / "pycache")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for command in ([TAP, "--about"], [PYTHON, "-c", "import requests"]):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


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
        command.extend(
            f"--{name.replace('_', '-')}={options[name]}"
            for name in ("rate_limit_rps", "rate_limit_burst", "rate_limit_retry_after")
            if options.get(name) is not None
        )
        if options.get("rate_limit_schedule"):
            changes = ",".join(f"{at:g}:{rps:g}" for at, rps in options["rate_limit_schedule"])
            command.append(f"--rate-limit-schedule={changes}")
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
        result.limit = {key: stats[key] for key in LIMIT_STATS if key in stats}
        return result


# -- clients ---------------------------------------------------------------------------------
class Clients:
    """Builds the command lines of the tap and of the plain loops for one portal."""

    def __init__(self, workdir: Path, catalogs: dict[str, Path]) -> None:
        """Keep the scratch directory (configs) and the catalogs (made once)."""
        self.workdir = workdir
        self.catalogs = catalogs

    def tap(self, portal: Portal, catalog: str = "all_fields", **settings: Any) -> list[str]:
        """The tap with default settings (only the API coordinates and ``start_date``).

        ``settings`` are added to the config (``max_concurrent_requests=32``).
        """
        config = {
            **settings,
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
    #: What a scenario keeps about its rows for its targets, by variant.
    extra: dict[str, Any] = field(default_factory=dict)
    #: Run only the rows whose variant contains one of these (``--row``); empty: all.
    only: tuple[str, ...] = ()

    def wanted(self, variant: str) -> bool:
        """Whether ``--row`` selects this row (every row when it was not given)."""
        return not self.only or any(text.lower() in variant.lower() for text in self.only)

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


# -- the table -------------------------------------------------------------------------------
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


@contextlib.contextmanager
def open_portal(
    suite: Suite,
    *,
    learners: int,
    latency_ms: float = 0.0,
    plain: bool = False,
    warm_catalogs: Sequence[str] = ("all_fields",),
    **faults: Any,
) -> Iterator[Portal]:
    """A portal with ``learners`` learners, the clients' pages rendered in advance.

    ``plain``: render the plain loop's query at start. ``warm_catalogs``: run the tap once with
    each catalog, untimed, then have the portal learn (and render) every query it sent, so
    the timed runs meet a warm cache whatever windows the tap reads. ``faults``: the rate
    limit's options (``rate_limit_rps``, ``rate_limit_burst``, ``rate_limit_schedule``...).
    """
    today = dt.datetime.now(dt.UTC).date()
    started = time.perf_counter()
    portal = Portal(
        learners=learners,
        latency_ms=latency_ms,
        start_date=(today - dt.timedelta(days=HISTORY_DAYS)).isoformat(),
        plain=plain,
        **faults,
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
