"""Plain Singer, no Meltano: `tap-udemy-business --config c.json | target-jsonl --config t.json`.

The tap's console script and a third-party Singer target (target-jsonl, built on singer-python,
in a virtualenv of its own since its pins clash with the tap's) are joined by an OS pipe, as a
shell would. What the target wrote must equal the sandbox's ground truth; the last STATE the
target echoes, handed back to the tap with `--state`, makes the next run incremental.

target-jsonl's venv is made once and kept in the test cache outside the checkout
(`conftest.cache_dir()`); making it needs the network (pip), so the whole file is marked so.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from tap_udemy_business.sandbox import DatasetParams, SandboxPortal
from tap_udemy_business.settings import DEFAULT_LOOKBACK_DAYS

from .conftest import (
    ALL_STREAMS,
    BLOCK_STREAMS,
    REPORTING_STREAMS,
    assert_same_rows,
    cache_dir,
    exclusive,
    expected_records,
    ground_truth_by_day,
    key_of,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.network, pytest.mark.slow]

TARGET_REQUIREMENT = "target-jsonl==0.1.4"
TAP = Path(sys.executable).parent / "tap-udemy-business"
DATASET = DatasetParams(
    seed=31, learners=25, courses=6, items_per_course=5, learning_paths=2, history_days=12
)
TIMEOUT = 300


def bootstrap_target_jsonl() -> Path:
    """Make target-jsonl's venv in the test cache (once) and return target-jsonl."""
    version = f"py{sys.version_info[0]}{sys.version_info[1]}"
    with exclusive("target-jsonl-venv"):
        return _bootstrap_target_jsonl(cache_dir() / f"target-jsonl-venv-{version}")


def _bootstrap_target_jsonl(venv: Path) -> Path:
    target = venv / "bin" / "target-jsonl"
    marker = venv / "installed.txt"
    if target.exists() and marker.exists() and marker.read_text() == TARGET_REQUIREMENT:
        return target
    python = sys.executable  # the interpreter running the tests: known to work
    for command in (
        [python, "-m", "venv", "--clear", str(venv)],
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            TARGET_REQUIREMENT,
        ],
    ):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stderr[-4000:]}"
    marker.write_text(TARGET_REQUIREMENT)
    return target


@pytest.fixture(scope="module")
def target_jsonl() -> Path:
    return bootstrap_target_jsonl()


@pytest.fixture(scope="module")
def pipe_portal() -> Iterator[SandboxPortal]:
    with SandboxPortal(dataset=DATASET) as running:
        yield running


def pipe(
    target: Path, workdir: Path, portal: SandboxPortal, state: dict[str, t.Any] | None = None
) -> tuple[dict[str, list[dict[str, t.Any]]], dict[str, t.Any]]:
    """Run tap | target through an OS pipe; return the files' records and the target's state."""
    out_dir = workdir / "out"
    out_dir.mkdir(parents=True)
    tap_config = workdir / "tap.json"
    tap_config.write_text(json.dumps(portal.tap_config()))
    target_config = workdir / "target.json"
    target_config.write_text(
        json.dumps({"destination_path": str(out_dir), "do_timestamp_file": False})
    )
    tap_args = [str(TAP), "--config", str(tap_config)]
    if state is not None:
        state_file = workdir / "state.json"
        state_file.write_text(json.dumps(state))
        tap_args += ["--state", str(state_file)]
    tap_log = (workdir / "tap.log").open("w")
    tap = subprocess.Popen(tap_args, stdout=subprocess.PIPE, stderr=tap_log, cwd=workdir)
    target_proc = subprocess.run(
        [str(target), "--config", str(target_config)],
        stdin=tap.stdout,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=workdir,
    )
    assert tap.stdout is not None
    tap.stdout.close()
    tap_code = tap.wait(timeout=TIMEOUT)
    tap_log.close()
    assert tap_code == 0, f"tap failed:\n{(workdir / 'tap.log').read_text()[-4000:]}"
    assert target_proc.returncode == 0, f"target-jsonl failed:\n{target_proc.stderr[-4000:]}"
    states = [json.loads(line) for line in target_proc.stdout.splitlines() if line.strip()]
    assert states, "target-jsonl echoed no state"
    records = {
        path.stem: [json.loads(line) for line in path.read_text().splitlines()]
        for path in out_dir.glob("*.jsonl")
    }
    return records, states[-1]


def test_tap_piped_into_target_jsonl_writes_the_ground_truth(
    target_jsonl: Path, pipe_portal: SandboxPortal, tmp_path: Path
) -> None:
    records, state = pipe(target_jsonl, tmp_path, pipe_portal)
    assert set(records) == set(ALL_STREAMS)
    for stream in ALL_STREAMS:
        truth = expected_records(pipe_portal, stream)
        assert truth, f"the sandbox has no {stream} rows: the test would prove nothing"
        written = records[stream]
        assert len(written) == len(truth), stream
        keys = [key_of(stream, r) for r in written]
        assert len(set(keys)) == len(keys), f"{stream}: duplicated keys"
        # Field by field and exactly (canonical JSON): unicode, nulls, numbers and nested
        # objects survive; each truth row is written once. (Block-read streams carry their
        # block as from_date/to_date, not the day; `learner_key` is the tap's own.)
        assert_same_rows(stream, written, truth)
    yesterday = (pipe_portal.dataset.today - dt.timedelta(days=1)).isoformat()
    for stream in REPORTING_STREAMS:
        bookmark = state["bookmarks"][stream]["replication_key_value"]
        newest = max(r["from_date"] for r in records[stream])
        assert bookmark == newest, stream
        if stream not in BLOCK_STREAMS:
            assert bookmark == yesterday, stream


def test_state_echoed_by_the_target_makes_the_next_run_incremental(
    target_jsonl: Path, tmp_path: Path
) -> None:
    with SandboxPortal(dataset=DATASET) as portal:
        _, state = pipe(target_jsonl, tmp_path / "first", portal)
        old_today = portal.dataset.today
        portal.advance(3)
        portal.clear_requests()
        records, new_state = pipe(target_jsonl, tmp_path / "second", portal, state=state)
        for stream in REPORTING_STREAMS:
            bookmark = dt.date.fromisoformat(state["bookmarks"][stream]["replication_key_value"])
            resume = (bookmark - dt.timedelta(days=DEFAULT_LOOKBACK_DAYS)).isoformat()
            path = f"/{stream.replace('_', '-')}/"
            asked = [
                r.query["from_date"]
                for r in portal.requests
                if r.path.endswith(path) and "from_date" in r.query
            ]
            assert asked, f"no {stream} request in the second run"
            assert min(asked) == resume, (stream, min(asked), resume)
            # Exactly the rows of the days from `resume` on, each once.
            truth = [r for r in ground_truth_by_day(portal, stream) if r["from_date"] >= resume]
            got = records.get(stream, [])
            assert truth, f"no {stream} rows from {resume} on: the test would prove nothing"
            keys = [key_of(stream, r) for r in got]
            assert len(set(keys)) == len(keys), f"{stream}: duplicated keys"
            assert_same_rows(stream, got, truth)
        assert any(r["from_date"] >= old_today.isoformat() for r in records["user_activity"])
        yesterday = (portal.dataset.today - dt.timedelta(days=1)).isoformat()
        assert new_state["bookmarks"]["user_activity"]["replication_key_value"] == yesterday
