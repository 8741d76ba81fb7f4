"""The reporting windows: the first page dates the API, then a fixed plan is read as made."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import typing as t
from contextlib import redirect_stdout

import pytest

from tap_udemy_business import progress
from tap_udemy_business.reporting import PROBE_GROUPS, ReportingStream, WindowPlan, windows
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import SyncResult, catalog_selecting

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_udemy_business.sandbox import SandboxPortal

STREAMS = ("user_activity", "user_progress")


def sync_recording_plans(
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, t.Any],
    local_today: dt.date,
    streams: t.Collection[str] = STREAMS,
) -> tuple[SyncResult, dict[str, WindowPlan]]:
    """A sync whose machine clock says `local_today`; the plan each stream made, by name."""
    plans: dict[str, WindowPlan] = {}
    planned = ReportingStream.plan

    def plan(stream: ReportingStream, context: Context | None) -> WindowPlan:
        made = planned(stream, context)
        plans[stream.name] = made
        return made

    monkeypatch.setattr(ReportingStream, "plan", plan)
    tap = TapUdemyBusiness(
        config=config, catalog=catalog_selecting(config, streams), parse_env_config=False
    )
    tap.api_session.clock = lambda: dt.datetime.combine(local_today, dt.time(12), dt.UTC)
    out = io.StringIO()
    with redirect_stdout(out):
        tap.sync_all()
    return SyncResult.from_lines(out.getvalue()), plans


@pytest.mark.parametrize("ahead", [3, -3], ids=["api-ahead", "api-behind"])
def test_the_first_page_dates_the_api_then_the_plan_is_read_whole_and_only_it(
    fresh_dialect_portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch, ahead: int
) -> None:
    """Whichever clock is ahead, reporting ends on the API's yesterday, decided up front."""
    portal = fresh_dialect_portal
    local_today = portal.dataset.today
    if ahead > 0:
        portal.advance(days=ahead)  # the API's calendar is ahead of this machine's
    else:
        local_today += dt.timedelta(days=-ahead)  # this machine is ahead of the API
    api_yesterday = portal.dataset.today - dt.timedelta(days=1)
    config = {**portal.tap_config(), "page_size": 5}
    portal.clear_requests()
    result, plans = sync_recording_plans(monkeypatch, config, local_today)

    for name, path in (("user_activity", "user-activity"), ("user_progress", "user-progress")):
        plan = plans[name]
        assert isinstance(plan.windows, tuple)
        assert plan.last == api_yesterday
        assert plan.windows[-1][1] == api_yesterday
        served = [r for r in portal.requests if path in r.path]
        # The first request is the first window's first page, by this machine's clock.
        local_yesterday = local_today - dt.timedelta(days=1)
        span = "day" if name == "user_activity" else "block"
        guessed = next(windows(plan.first, local_yesterday, span))
        opening, *rest = served
        assert (opening.query["page"], opening.query["page_size"]) == ("1", "5")
        assert window_of(opening) == (guessed[0].isoformat(), guessed[1].isoformat())
        # Every request after the probes reads a window of the plan, and every window of
        # the plan is read once (concurrently: in any order on the wire), the first one
        # by that first page unless it was empty or the API's date cut it otherwise.
        reads = [r for r in rest if r.query["page_size"] == "5"]
        assert all(r.query["page_size"] == "1" for r in rest[: len(rest) - len(reads)])
        first_pages = [window_of(r) for r in reads if r.query["page"] == "1"]
        if plan.opening is not None:
            assert plan.opening[0] == guessed == plan.windows[0]
            first_pages.append(window_of(opening))
        else:
            assert guessed != plan.windows[0]
        planned = [(s.isoformat(), e.isoformat()) for s, e in plan.windows]
        assert sorted(first_pages) == planned
        # Records come out in the plan's order.
        emitted = [(r["from_date"], r["to_date"]) for r in result.records[name]]
        assert emitted
        assert emitted == sorted(emitted, key=planned.index)


def window_of(request: t.Any) -> tuple[str, str]:
    """The window a request asks for."""
    return request.query["from_date"], request.query["to_date"]


def test_empty_stretches_are_left_out_of_the_plan_one_probe_a_group(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = portal.dataset.today
    start = today - dt.timedelta(days=130)  # the sandbox's history is its last 20 days
    config = {**portal.tap_config(), "start_date": start.isoformat()}
    portal.clear_requests()
    result, plans = sync_recording_plans(monkeypatch, config, today, ("user_activity",))
    plan = plans["user_activity"]
    days = (plan.last - plan.first).days + 1
    groups = -(-days // PROBE_GROUPS["day"])
    assert groups > 2
    # The first window's page (empty: no probe is saved) then one probe a group, the first
    # group's without the window already read.
    opening, *_ = portal.requests
    assert window_of(opening) == (start.isoformat(), start.isoformat())
    assert opening.query["page_size"] != "1"
    probes = [r for r in portal.requests if r.query.get("page_size") == "1"]
    assert len(probes) == groups
    assert window_of(probes[0]) == (
        (start + dt.timedelta(days=1)).isoformat(),
        (start + dt.timedelta(days=PROBE_GROUPS["day"] - 1)).isoformat(),
    )
    assert plan.first == start
    assert plan.windows[0][0] > start + dt.timedelta(days=PROBE_GROUPS["day"] * 2)
    assert plan.windows[-1][1] == today - dt.timedelta(days=1)
    assert min(r["from_date"] for r in result.records["user_activity"]) >= (
        plan.windows[0][0].isoformat()
    )


def test_the_progress_percentage_counts_the_planned_windows(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(progress, "DEFAULT_INTERVAL_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    config = {**portal.tap_config(), "page_size": 3}
    today = portal.dataset.today
    _, plans = sync_recording_plans(monkeypatch, config, today, ("user_activity",))
    windows = len(plans["user_activity"].windows)
    shown = [
        match.group(1)
        for r in caplog.records
        if (match := re.search(r"Progress of 'user_activity'.*\((\d+%) done\)", r.getMessage()))
    ]
    # Each line: windows wholly read before the current one, out of the planned windows.
    possible = [f"{done / windows:.0%}" for done in range(windows)]
    assert shown
    assert set(shown) <= set(possible)
    assert shown[-1] == possible[-1]
    assert shown == sorted(shown, key=possible.index)
