"""`aggregate_span`: one request (and so one row) of the aggregate endpoints per day, ISO
week or calendar month, on every record shape."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest

from .conftest import as_emitted, assert_same_rows, key_of, run_tap

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal

AGGREGATES = ("user_activity", "user_course_activity", "user_path_activity")


def calendar_windows(first: dt.date, last: dt.date, span: str) -> list[tuple[dt.date, dt.date]]:
    """Weeks from Monday to Sunday, or calendar months, covering first..last (last cut)."""
    start = first - dt.timedelta(days=first.weekday()) if span == "week" else first.replace(day=1)
    out = []
    while start <= last:
        if span == "week":
            following = start + dt.timedelta(days=7)
        else:
            following = (start + dt.timedelta(days=32)).replace(day=1)
        out.append((start, min(following - dt.timedelta(days=1), last)))
        start = following
    return out


def truth_by_window(portal: SandboxPortal, stream: str, span: str) -> list[dict[str, t.Any]]:
    """The portal's rows for each window, stamped as the tap stamps them."""
    today = portal.dataset.today
    rows = []
    yesterday = today - dt.timedelta(days=1)
    for start, end in calendar_windows(today - dt.timedelta(days=400), yesterday, span):
        for record in portal.ground_truth(stream, from_date=start, to_date=end):
            stamped = {**record, "from_date": start.isoformat(), "to_date": end.isoformat()}
            rows.append(as_emitted(stream, stamped))
    return rows


@pytest.mark.parametrize("span", ["week", "month"])
def test_a_row_is_a_learners_totals_over_one_calendar_window(
    dialect_portal: SandboxPortal, span: str
) -> None:
    dialect_portal.clear_requests()
    result = run_tap({**dialect_portal.tap_config(), "aggregate_span": span})
    for stream in AGGREGATES:
        expected = truth_by_window(dialect_portal, stream, span)
        assert expected, stream
        assert_same_rows(stream, result.records[stream], expected)
        keys = [key_of(stream, r) for r in result.records[stream]]
        assert len(keys) == len(set(keys)), stream
    yesterday = dialect_portal.dataset.today - dt.timedelta(days=1)
    reads = [
        r
        for r in dialect_portal.requests
        if r.query.get("page_size") == "100"
        and any(r.path.endswith(f"/{s.replace('_', '-')}/") for s in AGGREGATES)
    ]
    assert reads
    for request in reads:
        start = dt.date.fromisoformat(request.query["from_date"])
        end = dt.date.fromisoformat(request.query["to_date"])
        assert (start, end) in calendar_windows(start, yesterday, span)[:1], request.raw_query


def test_a_week_read_again_after_the_clock_moves_merges_into_the_same_keys(
    fresh_dialect_portal: SandboxPortal,
) -> None:
    portal = fresh_dialect_portal
    config = {**portal.tap_config(), "aggregate_span": "week"}
    first = run_tap(config)
    for stream in AGGREGATES:
        bookmark = first.final_state["bookmarks"][stream]["replication_key_value"]
        assert dt.date.fromisoformat(bookmark).weekday() == 0, (stream, bookmark)
    portal.advance(days=3)
    second = run_tap(config, state=first.final_state)
    for stream in AGGREGATES:
        merged = {key_of(stream, r): r for r in first.records[stream]}
        merged.update({key_of(stream, r): r for r in second.records.get(stream, [])})
        assert_same_rows(stream, merged.values(), truth_by_window(portal, stream, "week"))
        # The lookback re-reads whole weeks, from a Monday, the last week read included.
        reread = [dt.date.fromisoformat(r["from_date"]) for r in second.records[stream]]
        assert all(day.weekday() == 0 for day in reread), stream
        assert min(reread).isoformat() <= max(r["from_date"] for r in first.records[stream])
