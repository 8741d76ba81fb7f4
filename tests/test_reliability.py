"""Retries, fatal errors, secrets and resuming, against the sandbox's fault switches."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import os
import signal
import subprocess
import sys
import typing as t

import pytest
import requests

from tap_udemy_business import retries
from tap_udemy_business.client import UdemyStream
from tap_udemy_business.sandbox import FaultParams, SandboxPortal
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import (
    ALL_STREAMS,
    SMALL,
    SyncResult,
    assert_same_rows,
    catalog_selecting,
    expected_records,
    key_of,
    run_tap,
)

if t.TYPE_CHECKING:
    from pathlib import Path

SENTINEL_ID = "sentinel-client-id-7Q2"
SENTINEL_SECRET = "sentinel-secret-Zx81-do-not-leak"
PROGRESS_STREAMS = ("courses", "user_progress")


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry after milliseconds rather than seconds; what is retried stays the same."""
    monkeypatch.setattr(retries, "RETRY_BASE_SECONDS", 0.005)


def _assert_complete(portal: SandboxPortal, result: SyncResult, streams: tuple[str, ...]) -> None:
    for stream in streams:
        assert_same_rows(stream, result.records.get(stream, []), expected_records(portal, stream))


@pytest.mark.parametrize(
    "faults",
    [
        FaultParams(error_rate=1.0, error_statuses=(500,), max_faults_per_url=2),
        FaultParams(error_rate=1.0, error_statuses=(502, 503), max_faults_per_url=2),
        FaultParams(error_rate=1.0, error_statuses=(524,), max_faults_per_url=1),
        FaultParams(truncated_json_rate=1.0, max_faults_per_url=1),
        FaultParams(invalid_json_rate=1.0, max_faults_per_url=1),
        FaultParams(drop_rate=1.0, max_faults_per_url=1),
        FaultParams(
            seed=5, error_rate=0.3, drop_rate=0.1, invalid_json_rate=0.1, max_faults_per_url=3
        ),
    ],
    ids=["500", "502-503", "524", "truncated", "invalid-json", "dropped", "mixed"],
)
def test_transient_failures_are_retried_to_a_complete_sync(
    fresh_dialect_portal: SandboxPortal,
    faults: FaultParams,
    quick_retries: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fresh_portal = fresh_dialect_portal
    fresh_portal.faults = faults
    config = {**fresh_portal.tap_config(), "page_size": 10}
    result = run_tap(config, catalog=catalog_selecting(config, PROGRESS_STREAMS))
    _assert_complete(fresh_portal, result, PROGRESS_STREAMS)
    retry_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert retry_lines
    assert all("http://127.0.0.1" in line and "waiting" in line for line in retry_lines)


@pytest.mark.slow
def test_slow_responses_time_out_and_are_retried(
    fresh_portal: SandboxPortal, quick_retries: None
) -> None:
    fresh_portal.faults = FaultParams(slow_rate=1.0, slow_seconds=3.0, max_faults_per_url=1)
    config = {**fresh_portal.tap_config(), "request_timeout": 1, "page_size": 100}
    result = run_tap(config, catalog=catalog_selecting(config, ("courses",)))
    _assert_complete(fresh_portal, result, ("courses",))


@pytest.mark.slow
def test_rate_limit_is_honoured_and_the_sync_completes(fresh_portal: SandboxPortal) -> None:
    fresh_portal.faults = FaultParams(rate_limit_rps=20, rate_limit_burst=4)
    config = {**fresh_portal.tap_config(), "page_size": 5, "start_date": "2026-11-22"}
    streams = ("courses", "user_activity")
    result = run_tap(config, catalog=catalog_selecting(config, streams))
    _assert_complete_from(fresh_portal, result, "user_activity", "2026-11-22")
    throttled = [r for r in fresh_portal.requests if r.status == 429]
    assert throttled, "the limit should have been hit at least once"
    assert len(throttled) < len(fresh_portal.requests) / 2, "the tap must slow down, not hammer"


def _assert_complete_from(
    portal: SandboxPortal, result: SyncResult, stream: str, first_day: str
) -> None:
    expected = [r for r in expected_records(portal, stream) if r["from_date"] >= first_day]
    assert expected
    assert_same_rows(stream, result.records.get(stream, []), expected)


def test_retry_after_as_an_http_date_is_understood() -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert retries.retry_after_seconds("3") == 3.0
    assert retries.retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", lambda: now) == 30.0
    assert retries.retry_after_seconds(None) == retries.DEFAULT_RETRY_AFTER_SECONDS
    assert retries.retry_after_seconds("soon") == retries.DEFAULT_RETRY_AFTER_SECONDS


@pytest.mark.parametrize(
    "value", ["-5", "nan", "NaN", "inf", "-inf", "Wed, 21 Oct 2015 07:27:00 GMT"]
)
def test_a_retry_after_that_means_nothing_is_a_short_wait_never_none(value: str) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    wait = retries.retry_after_seconds(value, lambda: now)
    assert wait == retries.SHORT_RETRY_AFTER_SECONDS
    assert wait > 0


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [(1, 0.0, 0.5), (1, 1.0, 1.0), (3, 0.5, 3.0), (7, 0.0, 30.0), (7, 1.0, 60.0), (30, 1.0, 60.0)],
)
def test_the_backoff_doubles_to_a_minute_with_jitter(
    attempt: int, draw: float, expected: float
) -> None:
    # The jitter's draw is injected: half to all of 1, 2, 4 ... seconds, capped at 60.
    assert retries.backoff_seconds(attempt, lambda: draw) == expected


@pytest.mark.parametrize(("status", "header", "honoured"), [(503, "7", True), (503, None, False)])
def test_retry_after_is_honoured_on_503_as_on_429(
    portal: SandboxPortal, status: int, header: str | None, honoured: bool
) -> None:
    from singer_sdk.exceptions import RetriableAPIError

    tap = TapUdemyBusiness(config=portal.tap_config(), parse_env_config=False)
    stream = tap.streams["courses"]
    assert isinstance(stream, UdemyStream)
    response = requests.Response()
    response.status_code = status
    if header is not None:
        response.headers["Retry-After"] = header
    error = RetriableAPIError(f"{status}", response)
    wait = stream.retry_wait(error, attempt=1)
    if honoured:
        assert wait == 7.0
    else:
        assert wait <= retries.RETRY_BASE_SECONDS  # the first exponential step, jittered


def test_an_http_date_retry_after_is_read_by_the_session_s_clock(portal: SandboxPortal) -> None:
    from singer_sdk.exceptions import RetriableAPIError

    tap = TapUdemyBusiness(config=portal.tap_config(), parse_env_config=False)
    stream = tap.streams["courses"]
    assert isinstance(stream, UdemyStream)
    tap.api_session.clock = lambda: dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "Wed, 21 Oct 2015 07:28:30 GMT"
    assert stream.retry_wait(RetriableAPIError("429", response), attempt=1) == 30.0


def _cli(
    config: dict[str, t.Any],
    tmp_path: Path,
    *,
    state: dict[str, t.Any] | None = None,
    loglevel: str = "INFO",
) -> subprocess.CompletedProcess[str]:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    args = [sys.executable, "-m", "tap_udemy_business", "--config", str(config_file)]
    if state is not None:
        state_file = tmp_path / "state.json"
        state_file.write_text(json.dumps(state))
        args += ["--state", str(state_file)]
    env = {**os.environ, "TAP_UDEMY_BUSINESS_LOGLEVEL": loglevel}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, check=False)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"client_secret": "wrong-secret"}, "check client_id and client_secret"),
        ({"organization_id": 1}, "check organization_id and portal_name"),
    ],
)
def test_fatal_errors_are_one_clear_line_and_exit_non_zero(
    portal: SandboxPortal, tmp_path: Path, change: dict[str, t.Any], expected: str
) -> None:
    done = _cli({**portal.tap_config(), **change}, tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "Sync failed" in line]
    assert len(errors) == 1
    assert expected in errors[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, "credentials have expired or lack the scope"),
        (302, "redirect from"),
        (301, "redirect from"),
    ],
)
def test_forbidden_and_redirected_answers_stop_the_sync(
    fresh_portal: SandboxPortal, tmp_path: Path, status: int, expected: str
) -> None:
    fresh_portal.endpoint_status["user_activity"] = status
    done = _cli(fresh_portal.tap_config(), tmp_path)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "Sync failed" in line]
    assert len(errors) == 1
    assert expected in errors[0]
    assert "Traceback" not in done.stderr
    assert all(r.host.startswith("127.0.0.1") for r in fresh_portal.requests)
    records = SyncResult.from_lines(done.stdout)
    assert records.records["courses"], "streams before the failure keep their records"
    assert records.final_state["bookmarks"]["courses"] is not None


def test_a_malformed_bookmark_is_one_clear_line(portal: SandboxPortal, tmp_path: Path) -> None:
    state = {
        "bookmarks": {
            "user_activity": {
                "replication_key": "from_date",
                "replication_key_value": "last tuesday",
            }
        }
    }
    done = _cli(portal.tap_config(), tmp_path, state=state)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "Sync failed" in line]
    assert len(errors) == 1
    assert "bookmark for 'user_activity' is not a date" in errors[0]
    assert "Traceback" not in done.stderr


def test_a_next_link_to_another_host_is_refused(
    fresh_portal: SandboxPortal, tmp_path: Path
) -> None:
    fresh_portal.faults = FaultParams(foreign_next_rate=1.0)
    done = _cli(
        {**fresh_portal.tap_config(), "page_size": 2, "max_concurrent_requests": 1}, tmp_path
    )
    assert done.returncode == 1
    assert "another host" in done.stderr or "Refused to send credentials" in done.stderr
    assert all(r.host.startswith("127.0.0.1") for r in fresh_portal.requests)


@pytest.mark.slow
def test_secrets_never_reach_any_output(tmp_path: Path, quick_retries: None) -> None:
    token = base64.b64encode(f"{SENTINEL_ID}:{SENTINEL_SECRET}".encode()).decode()
    with SandboxPortal(
        dataset=SMALL,
        client_id=SENTINEL_ID,
        client_secret=SENTINEL_SECRET,
        faults=FaultParams(seed=3, error_rate=0.2, max_faults_per_url=1),
    ) as portal:
        outputs = [
            _cli(
                {**portal.tap_config(), "page_size": 25, "start_date": "2026-11-22"},
                tmp_path,
                loglevel="DEBUG",
            ),
            _cli(
                {**portal.tap_config(), "client_secret": SENTINEL_SECRET + "x"},
                tmp_path,
                loglevel="DEBUG",
            ),
        ]
    assert outputs[0].returncode == 0, outputs[0].stderr[-2000:]
    assert outputs[1].returncode == 1
    for done in outputs:
        for text in (done.stdout, done.stderr):
            assert SENTINEL_SECRET not in text
            assert SENTINEL_ID not in text
            assert token not in text
            assert token[:20] not in text


@pytest.mark.parametrize("kill_after_lines", [40, 400, 1200])
@pytest.mark.slow
def test_a_killed_sync_resumes_from_its_last_state_without_loss(
    fresh_dialect_portal: SandboxPortal, tmp_path: Path, kill_after_lines: int
) -> None:
    fresh_portal = fresh_dialect_portal
    fresh_portal.faults = FaultParams(latency_ms=2)
    config = {**fresh_portal.tap_config(), "page_size": 5}
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_udemy_business", "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if len(lines) >= kill_after_lines:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    first = SyncResult.from_lines("".join(line for line in lines if line.endswith("\n")))
    assert lines, "the tap printed nothing before the kill"
    second = _cli(config, tmp_path, state=first.final_state or None)
    assert second.returncode == 0, second.stderr[-2000:]
    resumed = SyncResult.from_lines(second.stdout)
    for stream in ALL_STREAMS:
        merged = {key_of(stream, r): r for r in first.records.get(stream, [])}
        merged.update({key_of(stream, r): r for r in resumed.records.get(stream, [])})
        assert_same_rows(stream, merged.values(), expected_records(fresh_portal, stream))
        bookmark = first.final_state.get("bookmarks", {}).get(stream, {})
        if bookmark.get("replication_key_value"):
            resumed_from = dt.date.fromisoformat(bookmark["replication_key_value"])
            earliest = (resumed_from - dt.timedelta(days=3)).isoformat()
            assert all(r["from_date"] >= earliest for r in resumed.records.get(stream, []))
