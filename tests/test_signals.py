"""SIGINT and SIGTERM stop a sync at once, with whole lines and a final STATE to resume from.

Each test drives the real CLI in a subprocess against a sandbox portal, stops it at a
moment it can be seen to be in (a Retry-After wait announced on stderr, a request the
portal holds, a write blocked on a full pipe), and then checks four things: the exit
status is the signal's (130, 143), it came long before the wait would have ended (a
`wait(timeout=...)` well below the 60 s the server asks for or holds: a bound on hanging,
not a measurement), every line on stdout is whole JSON ending with a STATE, and a
second run from that STATE loses no row.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from tap_udemy_business.sandbox import FaultParams, SandboxPortal

from .conftest import (
    ALL_STREAMS,
    POLL,
    REPORTING_STREAMS,
    SyncResult,
    assert_same_rows,
    expected_records,
    key_of,
    run_tap,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

#: Far longer than any test waits for the tap to exit: a tap that waits it out has hung.
SERVER_WAIT_SECONDS = 60
#: How long a stopped tap may take to exit before the test calls it hung.
EXIT_BOUND_SECONDS = 30
STOPS = [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
STOP_IDS = ["SIGTERM-143", "SIGINT-130"]


def _config(portal: SandboxPortal, tmp_path: Path, **settings: t.Any) -> Path:
    start = portal.dataset.today - dt.timedelta(days=12)
    config = {**portal.tap_config(), "start_date": start.isoformat(), **settings}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def _start(config_file: Path, **popen: t.Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tap_udemy_business", "--config", str(config_file)],
        **{"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen},
    )


class _Lines:
    """Reads a pipe to its end in a thread; the test waits for lines it expects."""

    def __init__(self, stream: t.IO[bytes]) -> None:
        self.lines: list[bytes] = []
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: t.IO[bytes]) -> None:
        for line in stream:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, wanted: Callable[[bytes], bool]) -> bytes:
        """The first line (from now on) that `wanted` accepts; fails if the pipe ends first."""
        while True:
            line = self._queue.get(timeout=120)
            assert line is not None, "the pipe ended before the expected line"
            if wanted(line):
                return line

    def text(self) -> str:
        self._thread.join(timeout=EXIT_BOUND_SECONDS)
        return b"".join(self.lines).decode()


def _wait_stopped(process: subprocess.Popen[bytes]) -> int:
    """The exit status of a signalled tap; fails if it is still running well after."""
    try:
        return process.wait(timeout=EXIT_BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the tap did not stop within {EXIT_BOUND_SECONDS} s of the signal: hung")


def _whole_lines(stdout: str) -> SyncResult:
    """Every line parses as one JSON message, and the last one is a STATE."""
    lines = stdout.splitlines(keepends=True)
    assert lines, "the tap printed nothing"
    for number, line in enumerate(lines, start=1):
        assert line.endswith("\n"), f"line {number} is cut short: {line[-200:]!r}"
        try:
            json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not one JSON message: {line[:200]!r}…{line[-200:]!r}")
    result = SyncResult.from_lines(stdout)
    assert result.messages[-1]["type"] == "STATE", "the last line must be the final STATE"
    return result


def _assert_resumes_without_loss(
    portal: SandboxPortal, config_file: Path, first: SyncResult
) -> None:
    """A second run from the first run's final STATE brings every row the first missed."""
    assert any(first.records.values()), "the first run emitted no record before the signal"
    portal.faults = FaultParams()
    # In this process: what is proven is the first run's STATE, not the CLI a second time.
    resumed = run_tap(json.loads(config_file.read_text()), state=first.final_state)
    start = json.loads(config_file.read_text())["start_date"]
    for stream in ALL_STREAMS:
        merged = {key_of(stream, r): r for r in first.records.get(stream, [])}
        merged.update({key_of(stream, r): r for r in resumed.records.get(stream, [])})
        expected = expected_records(portal, stream)
        if stream in REPORTING_STREAMS:
            expected = [r for r in expected if r["from_date"] >= start]
        assert_same_rows(stream, merged.values(), expected)


@pytest.mark.parametrize(("signum", "status"), STOPS, ids=STOP_IDS)
def test_a_signal_during_a_retry_after_wait_stops_at_once_and_resumes_without_loss(
    fresh_portal: SandboxPortal, tmp_path: Path, signum: int, status: int
) -> None:
    # A dozen requests go through, then every one is told to come back in 60 s.
    fresh_portal.faults = FaultParams(rate_limit_rps=1 / SERVER_WAIT_SECONDS, rate_limit_burst=12)
    config_file = _config(fresh_portal, tmp_path, page_size=5)
    process = _start(config_file)
    assert process.stdout is not None
    assert process.stderr is not None
    stdout, stderr = _Lines(process.stdout), _Lines(process.stderr)
    retry = stderr.wait_for(lambda line: b"Retrying" in line and b"429" in line)
    assert f"waiting {SERVER_WAIT_SECONDS}".encode() in retry, retry
    process.send_signal(signum)
    assert _wait_stopped(process) == status
    assert f"Sync stopped by {signal.Signals(signum).name}" in stderr.text()
    first = _whole_lines(stdout.text())
    _assert_resumes_without_loss(fresh_portal, config_file, first)


class _HoldingProxy:
    """Forwards requests to a portal, except one it holds unanswered until the test ends.

    The held request is the first that `hold(path, query)` accepts; `held` is set as it
    arrives, so the test knows the tap is waiting on a response in flight.
    """

    def __init__(self, portal: SandboxPortal, hold: Callable[[str, dict[str, str]], bool]) -> None:
        self.held = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # the head and the body are two writes: send both now

            def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
                """Quiet."""

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if hold(path, dict(parse_qsl(query))) and not proxy.held.is_set():
                    proxy.held.set()
                    proxy.release.wait()
                    self.close_connection = True
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=60)
                upstream.request("GET", self.path, headers=dict(self.headers))
                answer = upstream.getresponse()
                body = answer.read()
                upstream.close()
                self.send_response_only(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs=POLL, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def holding_proxy(fresh_portal: SandboxPortal) -> Iterator[_HoldingProxy]:
    """Holds the first full page of a user_activity window (read by a worker thread)."""
    proxy = _HoldingProxy(
        fresh_portal,
        hold=lambda path, query: (
            path.endswith("/analytics/user-activity/") and query.get("page_size") == "5"
        ),
    )
    yield proxy
    proxy.close()


@pytest.mark.parametrize(("signum", "status"), STOPS, ids=STOP_IDS)
def test_a_signal_during_a_request_in_flight_stops_at_once_and_resumes_without_loss(
    fresh_portal: SandboxPortal,
    holding_proxy: _HoldingProxy,
    tmp_path: Path,
    signum: int,
    status: int,
) -> None:
    config_file = _config(
        fresh_portal,
        tmp_path,
        api_url=holding_proxy.base_url,
        page_size=5,
        request_timeout=10 * SERVER_WAIT_SECONDS,
    )
    process = _start(config_file)
    assert process.stdout is not None
    assert process.stderr is not None
    stdout, stderr = _Lines(process.stdout), _Lines(process.stderr)
    assert holding_proxy.held.wait(timeout=120), "the tap never asked for a user_activity page"
    process.send_signal(signum)
    assert _wait_stopped(process) == status
    assert f"Sync stopped by {signal.Signals(signum).name}" in stderr.text()
    first = _whole_lines(stdout.text())
    # The resumed run reads the portal itself; the proxy only ever held one request.
    json_config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**json_config, "api_url": fresh_portal.base_url}))
    _assert_resumes_without_loss(fresh_portal, config_file, first)


def _main_thread_is_blocked_writing(pid: int) -> bool:
    """Whether the process's main thread sleeps in a pipe write (Linux's wchan)."""
    with open(f"/proc/{pid}/wchan", encoding="ascii") as wchan:  # noqa: PTH123
        return "pipe_write" in wchan.read()


def _wait_until(condition: Callable[[], bool]) -> None:
    """Wait for a state of the kernel the test can observe but not be notified of."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes and wchan: Linux")
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "PYTHONUNBUFFERED"])
def test_a_signal_while_stdout_is_blocked_by_a_slow_target_leaves_every_line_whole(
    fresh_portal: SandboxPortal, tmp_path: Path, unbuffered: bool
) -> None:
    import fcntl

    # Containers often set PYTHONUNBUFFERED: stdout's binary layer is then the raw file,
    # whose writes a signal cuts short.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"

    config_file = _config(fresh_portal, tmp_path)
    read_end, write_end = os.pipe()
    # One page of pipe: a page of records is many times that, so a target that stops
    # reading leaves the tap blocked in the middle of writing a line.
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    with (tmp_path / "stderr.txt").open("wb") as stderr_file:
        process = _start(config_file, stdout=write_end, stderr=stderr_file, env=env)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as target:
        consumed: list[bytes] = []
        while not consumed or not consumed[-1].startswith(b'{"type":"RECORD"'):
            line = target.readline()
            assert line, "the tap ended before its first record"
            consumed.append(line)
        # The target stops reading; the tap fills the pipe and blocks mid-write.
        _wait_until(lambda: _main_thread_is_blocked_writing(process.pid))
        process.send_signal(signal.SIGTERM)
        rest = target.read()  # the target reads on, and the interrupted write completes
    status = _wait_stopped(process)
    first = _whole_lines((b"".join(consumed) + rest).decode())
    assert status == 143
    assert "Sync stopped by SIGTERM" in (tmp_path / "stderr.txt").read_text()
    _assert_resumes_without_loss(fresh_portal, config_file, first)
