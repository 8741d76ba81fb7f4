"""The page worker (`page_worker.py`, `remote_pages.py`): when it runs, how it fails.

That its output is the tap's own, message for message, is `test_fast_path.py`'s parity
test (with the worker and without); every other sync of the suite runs through it too.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import typing as t

import pytest

from tap_udemy_business import api_session, page_worker
from tap_udemy_business.errors import UdemyFatalError
from tap_udemy_business.remote_pages import HeldPage, PageWorker, WorkerDiedError
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import catalog_selecting, run_tap

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[PageWorker]:
    """Every page worker started, in order."""
    workers: list[PageWorker] = []
    init = PageWorker.__init__

    def record(self: PageWorker) -> None:
        init(self)
        workers.append(self)

    monkeypatch.setattr(PageWorker, "__init__", record)
    return workers


def progress_only(portal: SandboxPortal) -> dict[str, t.Any]:
    return catalog_selecting(portal.tap_config(), ["user_progress"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_sync_starts_one_worker_which_ends_with_the_tap(
    portal: SandboxPortal, started: list[PageWorker]
) -> None:
    """The CLI stops it as it exits; a tap used as a library, once it is collected."""
    result = run_tap(portal.tap_config())
    assert len(started) == 1, "one worker serves every stream of a sync"
    pid = started.pop().pid
    gc.collect()
    assert not alive(pid)
    assert set(result.records) >= {"courses", "user_progress", "user_activity"}


@pytest.mark.parametrize(
    ("setting", "cpus"), [(False, 2), (True, 1)], ids=["page_worker off", "one CPU"]
)
def test_no_worker_runs_when_it_is_off_or_could_not_help(
    portal: SandboxPortal,
    monkeypatch: pytest.MonkeyPatch,
    started: list[PageWorker],
    setting: bool,
    cpus: int,
) -> None:
    with_worker = run_tap(portal.tap_config(), catalog=progress_only(portal))
    assert len(started) == 1
    monkeypatch.setattr(api_session, "available_cpus", lambda: cpus)
    without = run_tap(
        {**portal.tap_config(), "page_worker": setting}, catalog=progress_only(portal)
    )
    assert len(started) == 1, "no second worker"
    assert without.records == with_worker.records
    assert len(without.records["user_progress"]) > 100


def test_a_worker_that_cannot_start_leaves_the_pages_to_the_tap(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    expected = run_tap(portal.tap_config(), catalog=progress_only(portal))
    monkeypatch.setattr("tap_udemy_business.remote_pages.sys.executable", "/nonexistent/python")
    with caplog.at_level(logging.WARNING):
        result = run_tap(portal.tap_config(), catalog=progress_only(portal))
    lines = [r.getMessage() for r in caplog.records if "page worker" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("The page worker could not be started (")
    assert lines[0].endswith("pages are parsed in the tap's process.")
    assert result.records == expected.records


def test_a_worker_killed_mid_sync_fails_it_with_one_clear_error_keeping_what_was_written(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch, started: list[PageWorker]
) -> None:
    written_pages: list[int] = []
    lines = HeldPage.lines

    def kill_before_the_fourth(self: HeldPage) -> t.Any:
        if len(written_pages) == 3:
            os.kill(self.worker.pid, signal.SIGKILL)
        if len(self):
            written_pages.append(len(self))
        return lines(self)

    monkeypatch.setattr(HeldPage, "lines", kill_before_the_fourth)
    catalog = progress_only(portal)
    with pytest.raises(WorkerDiedError) as raised:
        run_tap(
            {**portal.tap_config(), "max_concurrent_requests": 1, "page_size": 10}, catalog=catalog
        )
    message = str(raised.value)
    assert f"(pid {started[0].pid}) ended during the sync (exit code -9)" in message
    assert "set page_worker to false" in message
    assert "\n" not in message


def test_records_written_before_the_worker_died_are_on_stdout(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every page whose lines came back is written; the CLI then adds the final STATE."""
    lines = HeldPage.lines
    asked: list[int] = []
    came_back: list[int] = []

    def kill_before_the_third(self: HeldPage) -> t.Any:
        if len(asked) == 2:
            os.kill(self.worker.pid, signal.SIGKILL)
        if len(self):
            asked.append(len(self))
        answer = lines(self)
        if len(self):
            came_back.append(len(self))
        return answer

    monkeypatch.setattr(HeldPage, "lines", kill_before_the_third)
    tap = TapUdemyBusiness(
        config={**portal.tap_config(), "max_concurrent_requests": 1, "page_size": 10},
        catalog=progress_only(portal),
        parse_env_config=False,
    )
    with pytest.raises(WorkerDiedError):
        tap.sync_all()
    out = capsys.readouterr().out
    records = [line for line in out.splitlines() if '"type":"RECORD"' in line]
    assert sum(asked[:2]) > 0
    assert len(records) == sum(came_back) >= sum(asked[:2])
    # Lines made before the kill may still come back (they were in the pipe); no more.
    assert len(came_back) <= len(asked) < 6


def test_a_stream_the_worker_cannot_check_fails_at_the_next_answer() -> None:
    """`open_stream` does not wait for the worker; its failure is not lost for that."""
    worker = PageWorker()
    try:
        worker.open_stream("broken", {"properties": {"a": {"type": "no such type"}}}, ["a"], None)
        with pytest.raises(UdemyFatalError, match="The page worker failed on a stream's schema"):
            worker.forget("broken")
    finally:
        worker.close()


def test_a_read_that_ends_leaves_none_of_its_pages_in_the_worker() -> None:
    """Pages parsed and never emitted (probes, pages of a failed read) are dropped."""
    worker = page_worker.Worker()
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    body = b'{"count": 1, "next": null, "previous": null, "results": [{"id": 1}]}'
    for name in ("a", "b"):
        assert worker.answer(
            {"op": "stream", "name": name, "schema": schema, "keys": ["id"], "learner": None}, b""
        ) == ({}, b"")
    for number, name in enumerate(["a", "a", "b"]):
        answer, _ = worker.answer({"op": "parse", "id": number, "url": "u", "stream": name}, body)
        assert answer["size"] == 1
    worker.answer({"op": "forget", "stream": "a"}, b"")
    assert list(worker.pages) == [2]
    worker.answer({"op": "forget", "stream": "b"}, b"")
    assert worker.pages == {}


def test_frames_larger_than_a_pipe_cross_whole() -> None:
    reading, writing = os.pipe()
    blob = bytes(range(256)) * 4096  # 1 MiB: sixteen times a pipe's buffer
    writer = threading.Thread(
        target=lambda: page_worker.write_frame(writing, {"op": "x", "n": 1}, blob)
    )
    writer.start()
    try:
        assert page_worker.read_frame(reading) == ({"op": "x", "n": 1}, blob)
    finally:
        writer.join()
        os.close(writing)
    assert page_worker.read_frame(reading) is None, "a pipe closed between frames: the end"
    os.close(reading)


def test_a_pipe_closed_inside_a_frame_is_an_error() -> None:
    reading, writing = os.pipe()
    os.write(writing, b"\x05\x00\x00\x00\x00\x00\x00\x00{")
    os.close(writing)
    with pytest.raises(EOFError, match="in the middle of a frame"):
        page_worker.read_frame(reading)
    os.close(reading)
