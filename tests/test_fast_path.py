"""The per-page loop (`fast_path.py`) against singer-sdk's own loop: the same messages.

Both loops run over real HTTP against the sandbox, on every record shape. singer-sdk's
clock (which stamps `time_extracted`) is frozen and the taps' start time pinned (which
makes `version`), so whole messages compare: any difference is one the loops made.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import subprocess
import sys
import typing as t
from contextlib import redirect_stdout

import pytest
from singer_sdk.streams import core as sdk_stream_core

from tap_udemy_business import fast_path
from tap_udemy_business.client import UdemyStream
from tap_udemy_business.remote_pages import PageWorker
from tap_udemy_business.streams import CoursesStream
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import ALL_STREAMS, SyncResult, catalog_selecting

if t.TYPE_CHECKING:
    from pathlib import Path

    from singer_sdk import Stream

    from tap_udemy_business.records import Record
    from tap_udemy_business.sandbox import SandboxPortal

FROZEN = dt.datetime(2026, 11, 30, 12, 34, 56, 789012, tzinfo=dt.UTC)
INITIALIZED_AT_MS = 1_764_505_296_789
SDK_LOOP = "singer-sdk's own loop"
#: A range no installed singer-sdk is in: the version guard sends every stream to the SDK.
NO_VERSION = ((0, 0, 0), (0, 0, 1))


def sync(
    config: dict[str, t.Any],
    catalog: dict[str, t.Any] | None = None,
    tap_class: type[TapUdemyBusiness] = TapUdemyBusiness,
) -> SyncResult:
    """A sync in this process with the taps' start time pinned (it makes `version`)."""
    tap = tap_class(config=config, catalog=catalog, parse_env_config=False)
    for stream in tap.streams.values():
        stream._initialized_at = INITIALIZED_AT_MS
    out = io.StringIO()
    with redirect_stdout(out):
        tap.sync_all()
    return SyncResult.from_lines(out.getvalue())


def sdk_loop_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for r in caplog.records if SDK_LOOP in (m := r.getMessage())]


def sdk_loop_line(stream: str, reason: str) -> str:
    return f"Stream '{stream}': records go through {SDK_LOOP}, one at a time: {reason}"


def partly_selected(config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The whole catalog, with a few fields of every stream deselected."""
    catalog = TapUdemyBusiness(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        optional = [
            m
            for m in entry["metadata"]
            if m["breadcrumb"] and m["metadata"].get("inclusion") == "available"
        ]
        for metadata in optional[::3]:
            metadata["metadata"]["selected"] = False
    return catalog


@pytest.fixture
def frozen_sdk_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk_stream_core, "utc_now", lambda: FROZEN)


@pytest.mark.usefixtures("frozen_sdk_clock")
@pytest.mark.parametrize(
    ("selection", "page_worker"),
    [("all fields", True), ("all fields", False), ("some fields deselected", True)],
)
@pytest.mark.slow
def test_the_page_loop_writes_exactly_what_the_sdk_loop_writes(
    dialect_portal: SandboxPortal,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    selection: str,
    page_worker: bool,
) -> None:
    """With the page worker or without, every stream's messages are the SDK loop's."""
    caplog.set_level(logging.INFO)
    # A STATE every 9 records, pages of 4: STATEs fall inside pages, at odd offsets.
    monkeypatch.setattr(UdemyStream, "STATE_MSG_FREQUENCY", 9)
    config = {
        **dialect_portal.tap_config(),
        "page_size": 4,
        "emit_activate_version_messages": True,
        "page_worker": page_worker,
    }
    catalog = partly_selected(config) if selection != "all fields" else None
    parsed_by_worker: list[str] = []
    parse = PageWorker.parse

    def counted(self: PageWorker, body: bytes, url: str, stream: str) -> t.Any:
        parsed_by_worker.append(url)
        return parse(self, body, url, stream)

    monkeypatch.setattr(PageWorker, "parse", counted)

    pages = sync(config, catalog)
    assert sdk_loop_lines(caplog) == [], "the page loop should have run for every stream"
    # Deselected fields are popped from records in the tap: those reads parse there.
    assert bool(parsed_by_worker) == (page_worker and catalog is None)
    monkeypatch.setattr(fast_path, "VERIFIED_SDK_VERSIONS", NO_VERSION)
    sdk = sync(config, catalog)
    reasons = sdk_loop_lines(caplog)
    assert len(reasons) == len(ALL_STREAMS)
    assert all("is outside the versions the per-page loop was verified with" in r for r in reasons)

    assert pages.messages == sdk.messages
    records = [m for m in pages.messages if m["type"] == "RECORD"]
    assert len(records) > 300
    assert {m["time_extracted"] for m in records} == {FROZEN.isoformat()}
    assert {m.get("version") for m in records if m["stream"] == "courses"} == {
        INITIALIZED_AT_MS // 1000
    }
    # The 9th course is the first of its page (pages of 4): its STATE is inside the page.
    course_records = [
        i for i, m in enumerate(pages.messages) if m in records and m["stream"] == "courses"
    ]
    ninth = course_records[8]
    assert [m["type"] for m in pages.messages[ninth : ninth + 3]] == ["RECORD", "STATE", "RECORD"]
    if catalog is not None:
        assert all("user_email" not in m["record"] for m in records if m["stream"] != "courses")


class TitledCourses(CoursesStream):
    """Courses as a subclass might post-process them: odd ids only, titles in capitals."""

    def post_process(self, row: Record, context: t.Any = None) -> Record | None:
        del context
        if row["id"] % 2 == 0:
            return None
        return {**row, "title": row["title"].upper()}


class TitledTap(TapUdemyBusiness):
    def discover_streams(self) -> list[Stream]:
        return [
            TitledCourses(tap=self) if stream.name == "courses" else stream
            for stream in super().discover_streams()
        ]


def test_a_post_process_override_is_applied_to_what_is_emitted(
    portal: SandboxPortal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = {**portal.tap_config(), "page_size": 5}
    result = sync(config, catalog_selecting(config, {"courses", "user_activity"}), TitledTap)
    truth = portal.ground_truth("courses")
    assert any(r["id"] % 2 == 0 for r in truth), "no even id: the filter would prove nothing"
    assert [(r["id"], r["title"]) for r in result.records["courses"]] == [
        (r["id"], r["title"].upper()) for r in truth if r["id"] % 2
    ]
    assert sdk_loop_lines(caplog) == [
        sdk_loop_line("courses", "TitledCourses overrides post_process()")
    ]
    assert result.records["user_activity"], "the other streams keep the page loop, and run"


def test_stream_maps_and_flattening_take_the_sdk_loop(
    portal: SandboxPortal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = {
        **portal.tap_config(),
        "stream_maps": {"courses": {"title": "title.upper()"}},
    }
    result = sync(config, catalog_selecting(config, {"courses", "learning_paths"}))
    assert {r["title"] for r in result.records["courses"]} == {
        r["title"].upper() for r in portal.ground_truth("courses")
    }
    assert sdk_loop_lines(caplog) == [sdk_loop_line("courses", "stream maps are configured")]
    caplog.clear()
    flat = sync(
        {**portal.tap_config(), "flattening_enabled": True, "flattening_max_depth": 1},
        catalog_selecting(config, {"learning_paths"}),
    )
    assert flat.records["learning_paths"]
    assert sdk_loop_lines(caplog) == [sdk_loop_line("learning_paths", "flattening is enabled")]


@pytest.mark.parametrize(
    ("installed", "verified"),
    [
        ("0.54.9", True),
        ("0.54.12", True),
        ("0.54.9.post1", True),
        ("0.54.8", False),
        ("0.54.9rc1", False),
        ("0.55.0", False),
        ("0.55.0a1", False),
        ("1.0", False),
        ("unknown", False),
    ],
)
def test_the_verified_range_is_what_the_constant_says(installed: str, verified: bool) -> None:
    assert fast_path.VERIFIED_SDK_VERSIONS == ((0, 54, 9), (0, 55, 0))
    assert fast_path.sdk_version_verified(installed) is verified


def test_every_hook_the_page_loop_stands_in_for_exists_in_the_sdk() -> None:
    """A hook renamed by a new singer-sdk would silently stop being checked."""
    from singer_sdk import Stream

    assert all(callable(getattr(Stream, hook, None)) for hook in fast_path.PER_RECORD_HOOKS)


def test_a_sync_through_the_cli_prints_no_deprecation_warning(
    portal: SandboxPortal, tmp_path: Path
) -> None:
    import json

    config = tmp_path / "config.json"
    config.write_text(json.dumps({**portal.tap_config(), "start_date": "2026-11-20"}))
    done = subprocess.run(
        [sys.executable, "-W", "default", "-m", "tap_udemy_business", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"type":"RECORD"' in done.stdout
    assert "Deprecat" not in done.stderr, done.stderr[-2000:]
