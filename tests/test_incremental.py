"""Incremental syncs: bookmarks, lookback, and new days appearing on the portal."""

from __future__ import annotations

import datetime as dt
import typing as t

from .conftest import REPORTING_STREAMS, assert_same_rows, ground_truth_by_day, key_of, run_tap

if t.TYPE_CHECKING:
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
    result = run_tap({**portal.tap_config(), "page_size": 10})
    states_mid_progress = [
        s
        for s in result.states[:-1]
        if "user_activity" in s.get("bookmarks", {})
        and s["bookmarks"]["user_activity"].get("replication_key_value")
    ]
    assert len(states_mid_progress) >= 2
