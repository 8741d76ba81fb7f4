"""learner_key on the rows no field identifies: anonymized learners without an id."""

from __future__ import annotations

import typing as t

from tap_udemy_business.keys import LearnerKeys

FACTS = ("course_enroll_date", "user_external_id", "lms_user_id")


def _anonymized(**fields: t.Any) -> dict[str, t.Any]:
    return {
        "user_email": "Anonymized User",
        "user_name": "Anonymized",
        "course_id": 7,
        "course_enroll_date": None,
        "user_external_id": None,
        "lms_user_id": None,
        **fields,
    }


def _stamped(rows: list[dict[str, t.Any]], window: str = "2026-11-01") -> list[str]:
    keys = LearnerKeys(["course_id"], FACTS)
    page = [dict(row) for row in rows]
    keys.stamp(page, {}, window)
    return [row["learner_key"] for row in page]


def test_indistinguishable_anonymized_rows_get_suffixes_in_the_apis_order() -> None:
    rows = [_anonymized(), _anonymized(), _anonymized(course_id=8), _anonymized()]
    first, second, other_course, third = _stamped(rows)
    assert first.startswith("a:")
    assert (second, third) == (f"{first}~2", f"{first}~3")
    assert other_course.startswith("a:")
    assert "~" not in other_course  # the course is part of the key: no repeat there
    assert _stamped(rows) == [first, second, other_course, third]  # read again: same keys


def test_facts_tell_anonymized_learners_apart_and_the_window_only_when_there_are_none() -> None:
    a, b = _stamped([_anonymized(course_enroll_date="2026-01-02T10:00:00Z"), _anonymized()])
    assert a != b
    assert "~" not in b
    (enrolled,) = _stamped([_anonymized(course_enroll_date="2026-01-02T10:00:00Z")], "2026-11-02")
    assert enrolled == a  # facts known: the window does not matter
    (bare,) = _stamped([_anonymized()], "2026-11-02")
    assert bare != b  # no facts at all: the window is hashed in, rows of two windows never merge


def test_a_learner_id_or_a_real_email_names_the_learner_even_when_a_row_repeats() -> None:
    rows = [
        _anonymized(user_id=10007),
        _anonymized(user_id=10007.0),
        {"user_email": "Ana.Lopez@example.com", "course_id": 7},
        {"user_email": " ana.lopez@example.com", "course_id": 7},
    ]
    by_id, same_id, email, same_email = _stamped(rows)
    assert by_id == same_id == "u:10007"
    assert email.startswith("e:")
    assert same_email == email  # trimmed, case-insensitive; a repeated row keeps its key
    assert "ana" not in email.lower().removeprefix("e:")  # the address is not in the key
