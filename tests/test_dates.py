"""Strings under a date format that are no date: null for the target, kept, reported once."""

from __future__ import annotations

import logging
import typing as t

import pytest

from tap_udemy_business.records import RecordChecker

from .conftest import assert_same_rows, put_back, sync_with_converted_field

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "seen": {"type": ["string", "null"], "format": "date-time"},
        "day": {"type": ["string", "null"], "format": "date"},
        "undocumented_fields": {"type": ["object", "null"]},
    },
    "required": ["id"],
}


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27T10:11:12Z",
        "2026-11-27T10:11:12.123456+02:00",
        "2026-11-27 10:11:12",
        "2026-11-27",
        "2018-05-10T22:44:51Z ",  # the guide's own example, trailing space and all
    ],
)
def test_dates_and_timestamps_pass_as_sent(value: str) -> None:
    checker = RecordChecker(SCHEMA, key_fields=("id",))
    (record,) = checker.check([{"id": 1, "seen": value, "day": value}], "u")
    assert record == {"id": 1, "seen": value, "day": value}
    assert not checker.undated


@pytest.mark.parametrize(
    "value", ["not a date", "0000-00-00 00:00:00", "2026-13-01", "27/11/2026", "", "2026-11-27\n"]
)
def test_a_string_that_is_no_date_becomes_null_and_is_kept(value: str) -> None:
    checker = RecordChecker(SCHEMA, key_fields=("id",))
    good = {"id": 2, "seen": "2026-11-27T10:11:12Z"}
    bad, fine = checker.check([{"id": 1, "seen": value}, dict(good)], "u")
    assert bad == {"id": 1, "seen": None, "undocumented_fields": {"seen": value}}
    assert fine == good
    assert checker.undated == {"seen": 1}


def test_one_warning_per_field_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    checker = RecordChecker(SCHEMA, key_fields=("id",))
    for page in range(3):
        checker.check([{"id": page, "seen": "soon", "day": "never"}], "u")
    with caplog.at_level(logging.WARNING):
        checker.report("s", logging.getLogger("test"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "3 values of 'day' were no date" in lines[0]
    assert "3 values of 'seen' were no date" in lines[1]
    assert not any("soon" in line or "never" in line for line in lines)  # counts, no values


def test_over_http_a_sync_with_broken_timestamps_completes_and_keeps_them(
    fresh_portal: SandboxPortal, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(stamp: t.Any) -> t.Any:
        return "0000-00-00 00:00:00" if isinstance(stamp, str) and stamp[18] in "02468" else stamp

    got, expected = sync_with_converted_field(
        fresh_portal, "user_course_activity", "course_enroll_date", broken
    )
    odd = [r for r in expected if r["course_enroll_date"] == "0000-00-00 00:00:00"]
    assert odd, "no timestamp was broken: the test would prove nothing"
    nulled = [r for r in got if r["course_enroll_date"] is None]
    assert len(nulled) == len(odd)
    assert_same_rows("user_course_activity", put_back(got, "course_enroll_date"), expected)
    warnings = [m for r in caplog.records if "course_enroll_date" in (m := r.getMessage())]
    assert len(warnings) == 1
    assert f"{len(odd)} values of 'course_enroll_date' were no date" in warnings[0]
