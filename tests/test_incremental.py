"""Incremental syncs: bookmarks, lookback, and new days appearing on the portal."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import typing as t
from contextlib import redirect_stdout

import pytest
from singer_sdk.exceptions import InvalidStreamSortException

from tap_udemy_business import fast_path
from tap_udemy_business.reporting import ReportingStream, WindowPlan
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import (
    REPORTING_STREAMS,
    SyncResult,
    assert_same_rows,
    catalog_selecting,
    ground_truth_by_day,
    key_of,
    run_tap,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_udemy_business.sandbox import SandboxPortal


def _bookmark(state: dict[str, t.Any], stream: str) -> str:
    return t.cast("str", state["bookmarks"][stream]["replication_key_value"])


def test_second_sync_reads_new_days_and_only_the_lookback(
    fresh_dialect_portal: SandboxPortal,
) -> None:
    fresh_portal = fresh_dialect_portal
    config = {**fresh_portal.tap_config(), "lookback_days": 2}
    first = run_tap(config)
    yesterday = fresh_portal.dataset.today - dt.timedelta(days=1)
    for stream in ("user_activity", "user_progress"):
        assert _bookmark(first.final_state, stream) <= yesterday.isoformat()
        assert first.final_state["bookmarks"][stream]["replication_key"] == "from_date"

    fresh_portal.advance(days=3)
    fresh_portal.clear_requests()
    second = run_tap(config, state=first.final_state)

    for stream in REPORTING_STREAMS:
        if not first.records.get(stream):
            continue
        bookmark = dt.date.fromisoformat(_bookmark(first.final_state, stream))
        earliest_reread = (bookmark - dt.timedelta(days=2)).isoformat()
        assert all(r["from_date"] >= earliest_reread for r in second.records.get(stream, [])), (
            stream
        )
        # An upserting target keeps one row per key: the merge must be the ground truth,
        # no row lost (two rows under one key) and none doubled (one row under two keys).
        merged = {key_of(stream, r): r for r in first.records[stream]}
        merged.update({key_of(stream, r): r for r in second.records.get(stream, [])})
        assert_same_rows(stream, merged.values(), ground_truth_by_day(fresh_portal, stream))
        first_keys = {key_of(stream, r) for r in first.records[stream]}
        new_rows = [
            r for r in second.records.get(stream, []) if key_of(stream, r) not in first_keys
        ]
        if stream != "user_path_activity":
            assert new_rows, f"advancing the clock 3 days should add {stream} rows"

    day_windows = {
        r.query["from_date"]
        for r in fresh_portal.requests
        if "analytics" in r.path and r.query.get("page_size") == "100"
    }
    assert (
        min(day_windows)
        >= (
            dt.date.fromisoformat(_bookmark(first.final_state, "user_progress"))
            - dt.timedelta(days=2)
        ).isoformat()
    )


def test_start_and_end_date_bound_the_days_read(portal: SandboxPortal) -> None:
    today = portal.dataset.today
    start = today - dt.timedelta(days=6)
    end = today - dt.timedelta(days=3)
    result = run_tap(
        {**portal.tap_config(), "start_date": start.isoformat(), "end_date": end.isoformat()}
    )
    for stream in REPORTING_STREAMS:
        for record in result.records.get(stream, []):
            assert start.isoformat() <= record["from_date"] <= end.isoformat()
    assert result.records["user_progress"]


def test_state_is_emitted_while_a_long_stream_runs(portal: SandboxPortal) -> None:
    config = {**portal.tap_config(), "page_size": 10}
    result = run_tap(config, catalog=catalog_selecting(config, ("user_activity",)))
    states_mid_progress = [
        s
        for s in result.states[:-1]
        if "user_activity" in s.get("bookmarks", {})
        and s["bookmarks"]["user_activity"].get("replication_key_value")
    ]
    assert len(states_mid_progress) >= 2


def _bookmarks(states: list[dict[str, t.Any]], stream: str) -> list[str]:
    """The stream's bookmark in each STATE message that has one, in order."""
    values = [s.get("bookmarks", {}).get(stream, {}).get("replication_key_value") for s in states]
    return [v for v in values if v is not None]


@pytest.mark.slow
def test_the_bookmark_never_moves_backwards_lookback_included(
    fresh_dialect_portal: SandboxPortal,
) -> None:
    portal = fresh_dialect_portal
    config = {**portal.tap_config(), "lookback_days": 3, "page_size": 5}
    first = run_tap(config)
    portal.advance(days=2)
    second = run_tap(config, state=first.final_state)
    yesterday = (portal.dataset.today - dt.timedelta(days=1)).isoformat()
    for stream in REPORTING_STREAMS:
        start = _bookmark(first.final_state, stream)
        for run in (first, second):
            seen = _bookmarks(run.states, stream)
            assert seen == sorted(seen), f"{stream}: the bookmark went back: {seen}"
        seen = _bookmarks(second.states, stream)
        assert min(seen) == start, f"{stream}: the second run's STATEs start below {start}"
        reread = [r for r in second.records.get(stream, []) if r["from_date"] < start]
        if stream != "user_progress":  # read in 31-day blocks, which start on the bookmark
            assert reread, f"{stream}: the lookback read nothing before the bookmark"
    for stream in ("user_activity", "user_course_activity"):
        assert _bookmark(second.final_state, stream) == yesterday, stream
    # Every stream's last RECORD is followed by a STATE, even one that moved no bookmark
    # (user_progress: its block starts before the bookmark): a target that keeps the state
    # it saw after the last record must see one.
    types = [(m["type"], m.get("stream")) for m in second.messages]
    for stream in REPORTING_STREAMS:
        last = max(i for i, kind in enumerate(types) if kind == ("RECORD", stream))
        assert ("STATE", None) in types[last:], stream
    assert types[-1] == ("STATE", None)


@pytest.mark.parametrize("loop", ["page loop", "sdk loop"])
def test_records_out_of_bookmark_order_fail_the_sync(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    """The SDK's sort check is on: windows read backwards are refused, not bookmarked."""
    if loop == "sdk loop":
        monkeypatch.setattr(fast_path, "VERIFIED_SDK_VERSIONS", ((0, 0, 0), (0, 0, 1)))
    planned = ReportingStream.plan

    def backwards(stream: ReportingStream, context: Context | None) -> WindowPlan:
        plan = planned(stream, context)
        return dataclasses.replace(plan, windows=plan.windows[::-1])

    monkeypatch.setattr(ReportingStream, "plan", backwards)
    config = portal.tap_config()
    tap = TapUdemyBusiness(
        config=config,
        catalog=catalog_selecting(config, {"user_activity"}),
        parse_env_config=False,
    )
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(InvalidStreamSortException, match="Unsorted data"):
        tap.sync_all()
    written = SyncResult.from_lines(out.getvalue())
    days = [r["from_date"] for r in written.records["user_activity"]]
    # The latest window, whole, then the first record of the one before it: refused.
    assert len(set(days)) == 2
    assert days[-1] < days[0]
    assert days.count(days[-1]) == 1
    assert _bookmarks(written.states, "user_activity") == [days[0]]


def test_records_out_of_order_within_the_lookback_fail_the_sync_too(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows before the bookmark leave it alone, but their order is still checked."""
    planned = ReportingStream.plan

    def swapped(stream: ReportingStream, context: Context | None) -> WindowPlan:
        plan = planned(stream, context)
        first, second, *rest = plan.windows
        return dataclasses.replace(plan, windows=(second, first, *rest))

    monkeypatch.setattr(ReportingStream, "plan", swapped)
    yesterday = (portal.dataset.today - dt.timedelta(days=1)).isoformat()
    state = {
        "bookmarks": {
            "user_activity": {"replication_key": "from_date", "replication_key_value": yesterday}
        }
    }
    config = {**portal.tap_config(), "lookback_days": 3}
    tap = TapUdemyBusiness(
        config=config,
        state=state,
        catalog=catalog_selecting(config, {"user_activity"}),
        parse_env_config=False,
    )
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(InvalidStreamSortException, match="Unsorted data"):
        tap.sync_all()
    written = SyncResult.from_lines(out.getvalue())
    days = [r["from_date"] for r in written.records["user_activity"]]
    assert days[0] > days[-1]
    assert days[0] < yesterday  # both windows are before the bookmark, which stayed put
    assert set(_bookmarks(written.states, "user_activity")) == {yesterday}
