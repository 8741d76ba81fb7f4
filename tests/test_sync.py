"""The real tap against the sandbox over HTTP: completeness, schemas, keys, requests sent."""

from __future__ import annotations

import base64
import datetime as dt
import json
import typing as t
from urllib.parse import parse_qs

import jsonschema
import pytest

from tap_udemy_business.sandbox.server import ENDPOINT_PATHS
from tap_udemy_business.schema_files import schema_path

from .conftest import (
    ALL_STREAMS,
    SyncResult,
    assert_same_rows,
    catalog_selecting,
    expected_records,
    key_of,
    put_back,
    run_tap,
    stream_declarations,
    sync_with_converted_field,
)

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal


@pytest.fixture(scope="module")
def full_sync(dialect_portal: SandboxPortal) -> tuple[SyncResult, list[t.Any]]:
    dialect_portal.clear_requests()
    result = run_tap({**dialect_portal.tap_config(), "max_retries": 1, "page_size": 7})
    return result, list(dialect_portal.requests)


def test_every_stream_emits_exactly_the_ground_truth(
    dialect_portal: SandboxPortal, full_sync: tuple[SyncResult, list[t.Any]]
) -> None:
    result, _ = full_sync
    for stream in ALL_STREAMS:
        expected = expected_records(dialect_portal, stream)
        assert expected, f"the sandbox has no {stream} rows: the test would prove nothing"
        assert_same_rows(stream, result.records.get(stream, []), expected)


def test_records_validate_against_their_schemas(full_sync: tuple[SyncResult, list[t.Any]]) -> None:
    result, _ = full_sync
    for stream in ALL_STREAMS:
        schema = json.loads(schema_path(stream).read_text())
        assert result.schemas[stream]["schema"]["properties"].keys() == schema["properties"].keys()
        validator = jsonschema.Draft202012Validator(schema)
        for record in result.records[stream]:
            errors = list(validator.iter_errors(record))
            assert not errors, (stream, errors[0].message)


def test_keys_are_unique_within_a_sync(full_sync: tuple[SyncResult, list[t.Any]]) -> None:
    result, _ = full_sync
    for stream in ALL_STREAMS:
        keys = [key_of(stream, r) for r in result.records[stream]]
        assert len(keys) == len(set(keys)), stream
        assert result.schemas[stream]["key_properties"]


def test_anonymized_learners_keep_distinct_keys(full_sync: tuple[SyncResult, list[t.Any]]) -> None:
    result, _ = full_sync
    for stream in ("user_activity", "user_course_activity", "user_progress"):
        anonymized = [r for r in result.records[stream] if r["user_email"] == "Anonymized User"]
        assert len({r["learner_key"] for r in anonymized}) >= 2, stream


def test_requests_carry_auth_page_size_fields_and_one_of_each_parameter(
    portal: SandboxPortal, full_sync: tuple[SyncResult, list[t.Any]]
) -> None:
    _, requests_served = full_sync
    assert requests_served
    assert all(r.auth_ok for r in requests_served)
    assert all(r.status == 200 for r in requests_served)
    for served in requests_served:
        assert served.query.get("page_size") in {"7", "1"}
        assert [k for k in served.query if k.startswith("fields[")], served.raw_query
    later_pages = [r for r in requests_served if r.query.get("page") not in (None, "1")]
    assert later_pages, "the sandbox data should need more than one page somewhere"


def test_reporting_requests_are_one_day_windows(full_sync: tuple[SyncResult, list[t.Any]]) -> None:
    _, requests_served = full_sync
    day_queries = [
        r
        for r in requests_served
        if "analytics" in r.path
        and "user-progress" not in r.path
        and r.query.get("page_size") == "7"
    ]
    assert day_queries
    assert all(r.query["from_date"] == r.query["to_date"] for r in day_queries)


def test_later_pages_send_no_parameter_twice(portal: SandboxPortal) -> None:
    """Following `next` must not re-append the first page's parameters (requests pitfall)."""
    config = {**portal.tap_config(), "page_size": 5, "max_concurrent_requests": 1}
    portal.clear_requests()
    result = run_tap(config, catalog=catalog_selecting(config, {"courses"}))
    assert len(result.records["courses"]) == len(portal.ground_truth("courses"))
    served = portal.requests
    assert len(served) > 2
    for request in served:
        pairs = parse_qs(request.raw_query)
        assert all(len(values) == 1 for values in pairs.values()), request.raw_query


def test_authorization_header_is_basic_and_pinned(portal: SandboxPortal) -> None:
    from tap_udemy_business.auth import PinnedBasicAuth
    from tap_udemy_business.errors import UnsafeLinkError

    auth = PinnedBasicAuth("id-1", "secret-2", portal.base_url)
    token = auth.header_for(f"{portal.base_url}/x?page=2").removeprefix("Basic ")
    assert base64.b64decode(token).decode() == "id-1:secret-2"
    assert "secret-2" not in repr(auth)
    for elsewhere in (f"https://127.0.0.1:{portal.port}/x", "http://127.0.0.2/x", "http://[::1]/x"):
        with pytest.raises(UnsafeLinkError):
            auth.header_for(elsewhere)


def test_user_progress_is_read_in_blocks_that_hold_each_row(
    full_sync: tuple[SyncResult, list[t.Any]],
) -> None:
    result, requests_served = full_sync
    windows = {
        (r.query["from_date"], r.query["to_date"])
        for r in requests_served
        if "user-progress" in r.path and r.query.get("page_size") == "7"
    }
    assert all(
        (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days < 31
        for start, end in windows
    )
    for record in result.records["user_progress"]:
        assert (record["from_date"], record["to_date"]) in windows
        activity = record["item_completion_time"] or record["item_start_time"]
        if activity:
            assert record["from_date"] <= activity[:10] <= record["to_date"]


def test_fields_are_asked_for_under_the_records_own_type(
    dialect_portal: SandboxPortal, full_sync: tuple[SyncResult, list[t.Any]]
) -> None:
    """A `fields[...]` key naming another type gets the smaller default field set: the tap
    learns the type from its first request and asks every later one right, that first page
    again only if it was asked for under a wrong type."""
    _, served = full_sync
    classes = {
        path: dialect_portal.dataset.class_name(endpoint)
        for endpoint, path in ENDPOINT_PATHS.items()
    }
    for path, record_class in classes.items():
        asked = [r for r in served if r.path.endswith(path)]
        assert asked, path
        first, *rest = asked
        # A one-record probe of empty history may go out before any record has told the
        # type (its count is the same under any key); every read of records asks right.
        for request in rest:
            if request.query["page_size"] != "1":
                assert request.query.get(f"fields[{record_class}]") == "@all", request.raw_query
        right = first.query.get(f"fields[{record_class}]") == "@all"
        again = [r for r in rest if page_of(r) == page_of(first)]
        assert len(again) <= (0 if right else 1), path
    if dialect_portal.dataset.params.dialect == "observed":
        guessed = {s.path: s.record_class for s in stream_declarations()}
        assert any(guessed[path] != record_class for path, record_class in classes.items())


def test_a_first_page_asked_for_under_a_wrong_type_is_read_again_and_a_right_one_is_not(
    dialect_portal: SandboxPortal,
) -> None:
    """The first page doubles as the request that learns the records' type: kept when its
    `fields[...]` key was right, asked for again under the right key when it was not."""
    stream, path = "user_course_activity", ENDPOINT_PATHS["user_course_activity"]
    start = dialect_portal.dataset.today - dt.timedelta(days=3)
    config = {**dialect_portal.tap_config(), "start_date": start.isoformat()}
    dialect_portal.clear_requests()
    result = run_tap(config, catalog=catalog_selecting(config, (stream,)))
    record_class = dialect_portal.dataset.class_name(stream)
    guessed = next(s.record_class for s in stream_declarations() if s.name == stream)
    first_window = {"from_date": start.isoformat(), "to_date": start.isoformat(), "page": "1"}
    asked = [
        r.query.get(f"fields[{record_class}]")
        for r in dialect_portal.requests
        if r.path.endswith(path) and first_window.items() <= r.query.items()
    ]
    if dialect_portal.dataset.params.dialect == "observed":
        assert guessed != record_class  # else the test would prove half of what it says
    assert asked == (["@all"] if guessed == record_class else [None, "@all"])
    expected = expected_records(dialect_portal, stream)
    expected = [r for r in expected if r["from_date"] >= start.isoformat()]
    assert expected, "no rows in the window: the test would prove nothing"
    assert_same_rows(stream, result.records[stream], expected)


def page_of(request: t.Any) -> tuple[str | None, ...]:
    """Which page of which window a request asks for, whatever its `fields[...]` key."""
    return tuple(request.query.get(name) for name in ("from_date", "to_date", "page"))


def test_a_value_of_no_declared_type_is_kept_reported_and_never_stops_the_sync(
    fresh_portal: SandboxPortal, caplog: pytest.LogCaptureFixture
) -> None:
    """A portal that sends `course_duration` as text on some rows: all rows still arrive."""

    def odd(duration: t.Any) -> t.Any:
        return "n/a" if isinstance(duration, (int, float)) and int(duration) % 3 == 0 else duration

    got, expected = sync_with_converted_field(
        fresh_portal, "user_course_activity", "course_duration", odd
    )
    odd_rows = [r for r in expected if r["course_duration"] == "n/a"]
    assert odd_rows, "no row got an odd value: the test would prove nothing"
    assert len(got) == len(expected)
    set_aside = [r for r in got if (r.get("undocumented_fields") or {}).get("course_duration")]
    assert len(set_aside) == len(odd_rows)
    assert all(r["course_duration"] is None for r in set_aside)
    # Moved back where it came from, every emitted row is the portal's row.
    assert_same_rows("user_course_activity", put_back(got, "course_duration"), expected)
    warnings = [r.getMessage() for r in caplog.records if "course_duration" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert f"{len(odd_rows)} values of 'course_duration'" in warnings[0]
    assert f"({len(odd_rows)} string)" in warnings[0]
