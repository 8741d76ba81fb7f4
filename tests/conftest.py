"""Shared fixtures: a sandbox portal on loopback, and a way to run the real tap against it.

Also the test tiers' rules: tests write nothing into the checkout (what is costly to remake, such
as virtualenvs, goes to `cache_dir()`, outside it; a session fixture checks the tree), and a test
using a fixture that needs the network or PostgreSQL must carry that marker (`make check` leaves
those out).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import functools
import io
import json
import os
import subprocess
import sys
import typing as t
from collections import Counter
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tap_udemy_business import api_session
from tap_udemy_business.keys import LEARNER_KEY
from tap_udemy_business.sandbox import DatasetParams, SandboxPortal
from tap_udemy_business.sandbox.dialects import DIALECTS
from tap_udemy_business.schema_files import schema_path
from tap_udemy_business.tap import TapUdemyBusiness

ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Where tests keep what is costly to remake (virtualenvs of pinned tools), outside the
    checkout: `$XDG_CACHE_HOME/tap-udemy-business`, by default `~/.cache/tap-udemy-business`."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base.resolve() / "tap-udemy-business"
    assert not path.is_relative_to(ROOT), f"the test cache {path} is inside the checkout"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def exclusive(name: str) -> t.Iterator[None]:
    """Hold a lock of `cache_dir()` (e.g. while making a cached venv), across processes:
    concurrent sessions or xdist workers make it once, one after the other."""
    with (cache_dir() / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Hypothesis keeps its example database out of the checkout too (not `./.hypothesis`).
set_hypothesis_home_dir(cache_dir() / "hypothesis")

#: What a fixture needs beyond this machine (the markers `make check` deselects).
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "meltano": ("network",),  # pip installs Meltano, `meltano install` its plugins
    "target_jsonl": ("network",),  # pip installs target-jsonl
    "postgres": ("postgres",),  # a PostgreSQL server
}


#: Why a test may not run: it uses a fixture of `FIXTURE_MARKERS` without the marker.
UNMARKED = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that uses a network or PostgreSQL fixture without saying so by a marker,
    since `make check` would then run it.

    The whole session is refused, except in a pytest-xdist worker, whose refusal the
    controller reports as an INTERNALERROR without the reason: there, each such test fails
    instead, before its fixtures are set up, with the reason.
    """
    unmarked: dict[pytest.Item, list[str]] = {}
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for marker in FIXTURE_MARKERS.get(fixture, ()):
                if item.get_closest_marker(marker) is None:
                    problem = f"{item.nodeid} uses `{fixture}`: mark it {marker}"
                    unmarked.setdefault(item, []).append(problem)
    if not unmarked:
        return
    if not hasattr(config, "workerinput"):
        raise pytest.UsageError("\n".join(p for problems in unmarked.values() for p in problems))
    for item, problems in unmarked.items():
        item.stash[UNMARKED] = "\n".join(problems)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test refused in an xdist worker (see above) before its fixtures start anything."""
    if (problem := item.stash.get(UNMARKED, None)) is not None:
        pytest.fail(problem, pytrace=False)


#: `git status --porcelain --ignored` entries that are not the tests' doing: the bytecode
#: Python writes on import and pytest's own cache (`--lf`).
NOT_WRITTEN_BY_TESTS = ("__pycache__/", ".pytest_cache/")


def _ignored_files_in_checkout() -> set[str] | None:
    """The checkout's git-ignored entries, where what tests would write goes (`.meltano/`,
    venvs, `build/`, `output/`, ...); None outside a git checkout. (Untracked files that are not
    ignored are checked by .ci/run, on a clean clone: here, in a tree people are editing, a new
    source file would be taken for the tests' doing.)"""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:  # no git
        return None
    if done.returncode != 0:  # not a checkout (an sdist)
        return None
    return {
        line[3:]
        for line in done.stdout.splitlines()
        if line.startswith("!! ") and not line.endswith(NOT_WRITTEN_BY_TESTS)
    }


@pytest.fixture(scope="session", autouse=True)
def checkout_stays_clean() -> t.Iterator[None]:
    """No test leaves a file or folder in the checkout: venvs, Meltano's `.meltano/`, wheels,
    build dirs and outputs go to tmp_path or `cache_dir()`."""
    before = _ignored_files_in_checkout()
    yield
    after = _ignored_files_in_checkout()
    if before is not None and after is not None:
        written = sorted(after - before)
        assert not written, f"the tests wrote into the checkout ({ROOT}): {written}"


#: The tap's CLI as `python -m tap_udemy_business` runs it, retrying after milliseconds rather
#: than seconds (what the in-process tests' `quick_retries` does): what is retried, and what
#: each retry prints, stay the same.
TAP_CLI_QUICK_RETRIES = (
    sys.executable,
    "-c",
    (
        "import runpy; from tap_udemy_business import retries; retries.RETRY_BASE_SECONDS = 0.005;"
        " runpy.run_module('tap_udemy_business', run_name='__main__', alter_sys=True)"
    ),
)

#: `serve_forever` keyword arguments for the tests' own HTTP servers: `shutdown()` waits for the
#: loop's next poll, by default half a second per server stopped.
POLL: dict[str, t.Any] = {"poll_interval": 0.02}

REPORTING_STREAMS = ("user_activity", "user_course_activity", "user_progress", "user_path_activity")
ALL_STREAMS = ("courses", "learning_paths", *REPORTING_STREAMS)
SMALL = DatasetParams(
    seed=11, learners=40, courses=12, items_per_course=8, learning_paths=3, history_days=20
)


@dataclass
class SyncResult:
    """What one run of the tap wrote to stdout, sorted by message type."""

    messages: list[dict[str, t.Any]]
    records: dict[str, list[dict[str, t.Any]]] = field(default_factory=dict)
    schemas: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    states: list[dict[str, t.Any]] = field(default_factory=list)

    @classmethod
    def from_lines(cls, text: str) -> SyncResult:
        messages = [json.loads(line) for line in text.splitlines() if line.strip()]
        result = cls(messages)
        for message in messages:
            if message["type"] == "RECORD":
                result.records.setdefault(message["stream"], []).append(message["record"])
            elif message["type"] == "SCHEMA":
                result.schemas[message["stream"]] = message
            elif message["type"] == "STATE":
                result.states.append(message["value"])
        return result

    @property
    def final_state(self) -> dict[str, t.Any]:
        return self.states[-1] if self.states else {}


def run_tap(
    config: dict[str, t.Any],
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
) -> SyncResult:
    """Run the tap in-process (a real sync over HTTP) and parse what it printed."""
    tap = TapUdemyBusiness(config=config, state=state, catalog=catalog, parse_env_config=False)
    out = io.StringIO()
    with redirect_stdout(out):
        tap.sync_all()
    return SyncResult.from_lines(out.getvalue())


def catalog_selecting(config: dict[str, t.Any], streams: t.Collection[str]) -> dict[str, t.Any]:
    """The tap's catalog with only `streams` selected."""
    catalog = TapUdemyBusiness(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def as_emitted(stream: str, record: dict[str, t.Any]) -> dict[str, t.Any]:
    """A ground-truth record as the tap emits it: undocumented fields folded away."""
    documented = json.loads(schema_path(stream).read_text())["properties"]
    shaped = {k: v for k, v in record.items() if k in documented}
    extra = {k: v for k, v in sorted(record.items()) if k not in documented}
    if extra:
        shaped["undocumented_fields"] = extra
    return shaped


#: Streams read in blocks of days: their `from_date`/`to_date` are the block, not the day.
BLOCK_STREAMS = ("user_progress",)


def without_window(stream: str, record: dict[str, t.Any]) -> dict[str, t.Any]:
    """A record minus the window stamps where the window is not part of what it means."""
    if stream not in BLOCK_STREAMS:
        return record
    return {k: v for k, v in record.items() if k not in {"from_date", "to_date"}}


def comparable(stream: str, record: dict[str, t.Any]) -> str:
    """A record's content as canonical JSON, minus what the tap derives (its key, the
    block a row was read in), to compare emitted rows with the portal's own."""
    content = {k: v for k, v in without_window(stream, record).items() if k != LEARNER_KEY}
    return json.dumps(content, sort_keys=True)


def assert_same_rows(
    stream: str, got: t.Iterable[dict[str, t.Any]], expected: t.Iterable[dict[str, t.Any]]
) -> None:
    """The two collections hold the same rows, each as often: none lost, none doubled."""
    have = Counter(comparable(stream, r) for r in got)
    want = Counter(comparable(stream, r) for r in expected)
    missing, extra = want - have, have - want
    assert not missing, f"{stream}: {sum(missing.values())} rows lost, e.g. {next(iter(missing))}"
    assert not extra, f"{stream}: {sum(extra.values())} rows unexpected, e.g. {next(iter(extra))}"


def ground_truth_by_day(portal: SandboxPortal, stream: str) -> list[dict[str, t.Any]]:
    """The portal's own records for every reporting day, stamped like the tap stamps them."""
    today = portal.dataset.today
    first = today - dt.timedelta(days=400)
    rows: list[dict[str, t.Any]] = []
    for day in days(first, today - dt.timedelta(days=1)):
        for record in portal.ground_truth(stream, from_date=day, to_date=day):
            stamped = {**record, "from_date": day.isoformat(), "to_date": day.isoformat()}
            rows.append(as_emitted(stream, stamped))
    return rows


def expected_records(portal: SandboxPortal, stream: str) -> list[dict[str, t.Any]]:
    """Everything a complete sync of `stream` must emit, as the tap emits it."""
    if stream in REPORTING_STREAMS:
        return ground_truth_by_day(portal, stream)
    return [as_emitted(stream, r) for r in portal.ground_truth(stream)]


@dataclass(frozen=True)
class StreamDeclaration:
    """What a stream type declares in its class body, typed: singer-sdk declares `name` and
    `path` as instance attributes and `primary_keys` as a property, so a type checker will not
    read them from the class."""

    name: str
    path: str
    primary_keys: tuple[str, ...]
    record_class: str


@functools.cache
def stream_declarations() -> tuple[StreamDeclaration, ...]:
    """Every stream type's declaration, in `STREAM_TYPES` order."""
    from tap_udemy_business.streams import STREAM_TYPES

    attributes = [f.name for f in dataclasses.fields(StreamDeclaration)]
    return tuple(
        StreamDeclaration(**{name: getattr(stream_type, name) for name in attributes})
        for stream_type in STREAM_TYPES
    )


def declaration_of(stream: str) -> StreamDeclaration:
    return next(s for s in stream_declarations() if s.name == stream)


def key_of(stream: str, record: dict[str, t.Any]) -> tuple[t.Any, ...]:
    """The stream's primary key values of a record."""
    return tuple(record[k] for k in declaration_of(stream).primary_keys)


@pytest.fixture(scope="session")
def portal() -> t.Iterator[SandboxPortal]:
    """A small portal shared by read-only tests (never advanced, no faults)."""
    with SandboxPortal(dataset=SMALL) as running:
        yield running


@pytest.fixture
def fresh_portal() -> t.Iterator[SandboxPortal]:
    """A portal of its own, for tests that move its clock or switch faults on."""
    with SandboxPortal(dataset=SMALL) as running:
        yield running


def small(dialect: str) -> DatasetParams:
    """The small test dataset, served in one of the record shapes (`dialects.py`)."""
    return dataclasses.replace(SMALL, dialect=dialect)


@pytest.fixture(scope="session", params=tuple(DIALECTS))
def dialect_portal(request: pytest.FixtureRequest) -> t.Iterator[SandboxPortal]:
    """A read-only portal per record shape: the tests that matter run on each."""
    with SandboxPortal(dataset=small(request.param)) as running:
        yield running


@pytest.fixture(params=tuple(DIALECTS))
def fresh_dialect_portal(request: pytest.FixtureRequest) -> t.Iterator[SandboxPortal]:
    """A portal of its own per record shape, for tests that move its clock or add faults."""
    with SandboxPortal(dataset=small(request.param)) as running:
        yield running


@pytest.fixture
def tap_config(portal: SandboxPortal) -> dict[str, t.Any]:
    return {**portal.tap_config(), "max_retries": 2, "request_timeout": 10}


def sync_with_converted_field(
    portal: SandboxPortal, stream: str, name: str, convert: t.Callable[[t.Any], t.Any]
) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """Sync `stream` from a portal that sends `convert(value)` as `name`: (emitted, truth)."""
    base = portal.dataset.dialect
    converted = {**base.converted, stream: {**base.converted.get(stream, {}), name: convert}}
    portal.dataset.dialect = dataclasses.replace(base, converted=converted)
    config = portal.tap_config()
    result = run_tap(config, catalog=catalog_selecting(config, {stream}))
    return result.records[stream], expected_records(portal, stream)


def put_back(records: list[dict[str, t.Any]], name: str) -> list[dict[str, t.Any]]:
    """Records with the value the tap set aside under `name` moved back into its field."""
    restored = []
    for record in records:
        extra = dict(record.get("undocumented_fields") or {})
        if name in extra:
            restored.append({**record, name: extra.pop(name), "undocumented_fields": extra})
        else:
            restored.append(record)
    return restored


@pytest.fixture(autouse=True)
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sync uses the page worker, as on the usual machine, however many CPUs CI has.

    With one CPU the tap parses pages itself; tests of that case say so.
    """
    monkeypatch.setattr(api_session, "available_cpus", lambda: 2)
