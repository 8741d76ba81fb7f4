"""Strings under a date format that are no date: null for the target, kept, reported once."""

from __future__ import annotations

import logging
import typing as t

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_udemy_business.records import _ONE_STAMP, RecordChecker

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


_TWO = st.integers(0, 99).map("{:02d}".format)
_CANDIDATES = st.builds(
    "{}{:04d}-{}-{}{}{}".format,
    st.sampled_from(["", " "]),
    st.sampled_from([0, 1, 2026, 9999]),
    _TWO,
    _TWO,
    st.sampled_from(["", "T", "t", " "]).flatmap(
        lambda sep: (
            st.just("")
            if not sep
            else st.builds(
                "{}{}:{}{}{}".format,
                st.just(sep),
                _TWO,
                _TWO,
                st.sampled_from(["", ":00", ":59", ":60", ":61"]),
                st.sampled_from(["", ".5", ".123456", ".1234567"]),
            )
        )
    ),
    st.sampled_from(["", "Z", "z", "+02:00", "-2400", "+05:75", " "]),
)


@given(
    values=st.lists(_CANDIDATES | st.just("2026-11-27T10:11:12Z"), min_size=1, max_size=8),
    one_without=st.booleans(),
)
def test_a_page_of_dates_is_judged_as_each_value_alone(
    values: list[str], *, one_without: bool
) -> None:
    """The page's one match (canonical form, then `_STAMP`) decides as each value alone would.

    With a record that lacks the field, the page is looked at field by field instead.
    """
    checker = RecordChecker(SCHEMA, key_fields=("id",))
    page: list[dict[str, t.Any]] = [
        {"id": n, "seen": value, "day": None} for n, value in enumerate(values)
    ]
    if one_without:
        page.append({"id": len(values)})
    checked = checker.check(page, "u")
    for record, value in zip(checked, values, strict=False):
        is_date = _ONE_STAMP.fullmatch(value) is not None
        assert record["seen"] == (value if is_date else None), value
    assert checker.undated["seen"] == sum(_ONE_STAMP.fullmatch(v) is None for v in values)


@pytest.mark.parametrize(
    ("value", "is_date"),
    [
        ("2026-02-30T10:00:00Z", True),  # no calendar check: left to targets, as before
        ("2026-11-27T10:11:60Z", True),  # a leap second
        ("2026-11-27T10:11:12.1234567Z", True),  # more than microseconds
        ("2026-11-27T24:00:00Z", False),
        ("0000-01-01T00:00:00Z", False),
        ("2026-11-27T10:60:00Z", False),
    ],
)
def test_values_of_the_canonical_shape_get_the_verdict_of_the_full_pattern(
    value: str, *, is_date: bool
) -> None:
    checker = RecordChecker(SCHEMA, key_fields=("id",))
    good = "2026-11-27T10:11:12Z"
    page = [{"id": 1, "seen": good, "day": None}, {"id": 2, "seen": value, "day": None}]
    first, second = checker.check(page, "u")
    assert first["seen"] == good
    assert second["seen"] == (value if is_date else None)
