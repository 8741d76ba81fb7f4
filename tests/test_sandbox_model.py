"""Tests of the sandbox's deterministic data model (tap_udemy_business/sandbox/model.py).

The model is the ground truth the tap is tested against, so these tests check it against the
design's contract: schemas, determinism, filters and period semantics, the clock, the consistency
rules between endpoints, and the size/complexity guarantees (by counting, never by timing).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from tap_udemy_business.sandbox.dialects import DIALECTS, UNKNOWN_FIELD
from tap_udemy_business.sandbox.model import (
    CLASS_NAMES,
    ENDPOINTS,
    FIELD_SETS,
    Dataset,
    DatasetParams,
    Filters,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
LEARNER_ENDPOINTS = ("user_activity", "user_course_activity", "user_progress", "user_path_activity")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TWO_DP_FIELDS = {
    "completion_ratio",
    "num_video_consumed_minutes",
    "course_duration",
    "item_completion_ratio",
    "path_consumed_minutes",
}


def all_rows(ds: Dataset, endpoint: str, **filters: Any) -> list[dict[str, Any]]:
    sel = ds.select(endpoint, Filters(**filters))
    return sel.rows(0, sel.count)


def day_of(ts: str | None) -> date | None:
    return None if ts is None else date.fromisoformat(ts[:10])


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return Dataset(DatasetParams())


@pytest.fixture(scope="module")
def yesterday(ds: Dataset) -> date:
    return ds.today - timedelta(days=1)


@pytest.fixture(scope="module")
def history(ds: Dataset) -> dict[str, list[dict[str, Any]]]:
    return {endpoint: all_rows(ds, endpoint) for endpoint in ENDPOINTS}


# -- interface, determinism --------------------------------------------------------------------
def test_interface_constants() -> None:
    assert ENDPOINTS == (
        "courses",
        "learning_paths",
        "user_activity",
        "user_course_activity",
        "user_progress",
        "user_path_activity",
    )
    assert CLASS_NAMES["courses"] == "course"
    assert CLASS_NAMES["user_activity"] == "aggregate_organization_user_activity"
    assert set(CLASS_NAMES) == set(ENDPOINTS) == set(FIELD_SETS)
    for endpoint, sets in FIELD_SETS.items():
        assert set(sets) == {"@min", "@default", "@all"}
        assert set(sets["@min"]) < set(sets["@default"]) < set(sets["@all"]), endpoint
        assert sets["@min"][0] == "_class"
        assert len(set(sets["@all"])) == len(sets["@all"])
    assert DatasetParams() == DatasetParams(
        seed=7,
        learners=200,
        courses=40,
        items_per_course=20,
        max_enrollments=4,
        learning_paths=6,
        history_days=90,
        today=date(2026, 11, 28),
        anonymized_ratio=0.10,
        late_ratio=0.05,
    )
    assert hash(Filters(from_date=date(2026, 1, 1))) == hash(Filters(from_date=date(2026, 1, 1)))


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="courses"):
        DatasetParams(courses=0)
    with pytest.raises(ValueError, match="ratio"):
        DatasetParams(late_ratio=1.5)
    with pytest.raises(ValueError, match="unknown endpoint"):
        Dataset(DatasetParams(learners=3)).select("users")


def test_two_instances_give_identical_rows(history: dict[str, list[dict[str, Any]]]) -> None:
    other = Dataset(DatasetParams())
    for endpoint in ENDPOINTS:
        assert orjson.dumps(all_rows(other, endpoint)) == orjson.dumps(history[endpoint])


def test_rows_are_byte_identical_in_another_process(ds: Dataset) -> None:
    script = (
        "import orjson, sys\n"
        "from tap_udemy_business.sandbox.model import Dataset, DatasetParams, Filters\n"
        "ds = Dataset(DatasetParams(learners=60))\n"
        "out = {}\n"
        "for ep in ('courses', 'learning_paths', 'user_activity', 'user_course_activity',"
        " 'user_progress', 'user_path_activity'):\n"
        "    sel = ds.select(ep, Filters())\n"
        "    out[ep] = sel.rows(0, sel.count)\n"
        "sys.stdout.buffer.write(orjson.dumps(out))\n"
    )
    # A different hash seed proves nothing depends on Python's randomized str hashing.
    env = {"PYTHONHASHSEED": "12345", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    here = Dataset(DatasetParams(learners=60))
    expected = {ep: all_rows(here, ep) for ep in ENDPOINTS}
    assert out == orjson.dumps(expected)
    assert ds.params.learners == 200  # the module fixture is not affected


def test_seed_changes_the_data(history: dict[str, list[dict[str, Any]]]) -> None:
    other = Dataset(DatasetParams(seed=8))
    assert all_rows(other, "courses") != history["courses"]
    assert all_rows(other, "user_progress") != history["user_progress"]


# -- schemas and shapes ------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_record_validates_against_its_schema(
    endpoint: str,
    ds: Dataset,
    history: dict[str, list[dict[str, Any]]],
    yesterday: date,
) -> None:
    schema = json.loads((SCHEMAS / f"{endpoint}.json").read_text())
    validator = Draft202012Validator(schema)
    props = schema["properties"]
    rows = history[endpoint]
    assert rows, endpoint
    for row in rows:
        assert list(row) == ds.field_sets(endpoint)["@all"]
        # The model sends what the schemas document, plus one field no source documents.
        assert set(row) - set(props) <= {UNKNOWN_FIELD}
        assert row["_class"] == CLASS_NAMES[endpoint]
        stamped = {
            **{k: v for k, v in row.items() if k != UNKNOWN_FIELD},
            "from_date": "2026-08-30",
            "to_date": yesterday.isoformat(),
            "learner_key": "e:0",
        }
        errors = [e.message for e in validator.iter_errors(stamped)]
        assert not errors, (endpoint, errors[:3], row)
        for key, value in row.items():
            spec = props.get(key, {})
            if value is None:
                continue
            if spec.get("format") == "date-time":
                assert DATE_TIME.match(value), (key, value)
            elif spec.get("format") == "date":
                assert DATE.match(value), (key, value)
            if key in TWO_DP_FIELDS:
                assert isinstance(value, (int, float)), (key, value)
                assert round(value, 2) == value, (key, value)


def test_learner_rows_carry_undocumented_flag_and_realistic_people(
    history: dict[str, list[dict[str, Any]]],
) -> None:
    people = history["user_activity"]
    for endpoint in LEARNER_ENDPOINTS:
        assert all(isinstance(r["user_is_deactivated"], bool) for r in history[endpoint])
    assert any(r["user_is_deactivated"] for r in people)
    emails = [r["user_email"] for r in people if r["user_email"] != "Anonymized User"]
    assert len(emails) == len(set(emails))
    assert any("+" in e for e in emails)
    assert any(not e.isascii() for e in emails)
    names = [r["user_name"] for r in people if r["user_name"]]
    assert any(re.search(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]", n) for n in names)
    assert {r["user_role"] for r in people} >= {"student", "admin", "owner"}
    assert any(r["user_external_id"] is None for r in people)
    assert any(r["lms_user_id"] is None for r in people)
    assert any(r["lms_user_id"] is not None for r in people)


def test_catalog_looks_real(history: dict[str, list[dict[str, Any]]]) -> None:
    courses = history["courses"]
    ids = [c["id"] for c in courses]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert len({c["title"] for c in courses}) == len(courses)
    categories = {c["categories"][0] for c in courses}
    assert {"Development", "IT & Software", "Leadership"} & categories
    assert all(c["description"].startswith("<p>") for c in courses)
    assert any(not c["title"].isascii() for c in courses)
    for c in courses:
        assert c["num_lectures"] + c["num_quizzes"] == DatasetParams().items_per_course
        assert c["num_videos"] <= c["num_lectures"]
        assert len(c["images"]) == 11
        assert all(v.startswith("https://") for v in c["images"].values())
        assert all(set(p) == {"type", "label", "file"} for p in c["promo_video_url"] or [])
        assert c["instructors"]
    paths = history["learning_paths"]
    assert [p["id"] for p in paths] == sorted(p["id"] for p in paths)


# -- counts and random access ------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_count_and_slices_agree_with_a_full_read(
    ds: Dataset,
    endpoint: str,
    history: dict[str, list[dict[str, Any]]],
) -> None:
    sel = ds.select(endpoint, Filters())
    full = history[endpoint]
    assert sel.count == len(full) > 0
    step = max(1, sel.count // 7)
    for start in range(0, sel.count, step):
        for size in (1, 12, 100):
            assert sel.rows(start, start + size) == full[start : start + size]
    assert sel.rows(sel.count, sel.count + 5) == []
    assert sel.rows(-3, 2) == full[:2]
    assert sel.rows(5, 5) == []


def test_row_order_is_learner_enrollment_item(history: dict[str, list[dict[str, Any]]]) -> None:
    for endpoint in (
        "user_activity",
        "user_course_activity",
        "user_progress",
        "user_path_activity",
    ):
        key = "id" if endpoint == "user_activity" else "user_id"
        ids = [r[key] for r in history[endpoint]]
        assert ids == sorted(ids), endpoint
    assert len({r["id"] for r in history["user_activity"]}) == len(history["user_activity"])
    items = [(r["user_id"], r["course_id"], r["item_id"]) for r in history["user_progress"]]
    assert len(set(items)) == len(items)
    last: dict[tuple[int, int], int] = {}
    for user, course, item in items:  # items of one enrollment come in item order
        assert item > last.get((user, course), -1)
        last[user, course] = item
    paths = [(r["user_id"], r["path_id"]) for r in history["user_path_activity"]]
    assert paths == sorted(paths)


# -- filters and periods -----------------------------------------------------------------------
def test_one_day_windows_partition_the_history(
    ds: Dataset,
    yesterday: date,
    history: dict[str, list[dict[str, Any]]],
) -> None:
    start = ds.today - timedelta(days=ds.params.history_days)
    by_day: list[dict[str, Any]] = []
    day = start
    while day <= yesterday:
        rows = all_rows(ds, "user_progress", from_date=day, to_date=day)
        for row in rows:
            for field in ("item_start_time", "item_completion_time"):
                assert day_of(row[field]) in (None, day)
        by_day.extend(rows)
        day += timedelta(days=1)

    def item_state(r: dict[str, Any]) -> bytes:  # last access is as of the period's end
        return orjson.dumps({k: v for k, v in r.items() if k != "course_last_accessed_date"})

    assert sorted(map(item_state, by_day)) == sorted(map(item_state, history["user_progress"]))


def test_bounds_are_inclusive_and_to_date_is_capped(ds: Dataset, yesterday: date) -> None:
    a = ds.today - timedelta(days=30)
    b = ds.today - timedelta(days=10)

    def count(endpoint: str, f: date | None, t: date | None) -> int:
        return ds.select(endpoint, Filters(from_date=f, to_date=t)).count

    assert count("user_progress", a, b) == (
        count("user_progress", a, a) + count("user_progress", a + timedelta(days=1), b)
    )
    assert count("user_progress", a, b) == (
        count("user_progress", a, b - timedelta(days=1)) + count("user_progress", b, b)
    )
    assert count("user_progress", b, a) == 0
    assert count("user_progress", ds.today, None) == 0  # today has not been reported yet
    far = ds.today + timedelta(days=40)
    for endpoint in LEARNER_ENDPOINTS:
        capped = all_rows(ds, endpoint, to_date=far)
        assert capped == all_rows(ds, endpoint)
        assert capped == all_rows(ds, endpoint, to_date=yesterday)
    sel = ds.select("user_activity", Filters(to_date=far))
    assert sel.to_date == yesterday
    assert {r["report_date"] for r in sel.rows(0, sel.count)} == {f"{yesterday}T00:00:00Z"}
    early = ds.today - timedelta(days=400)
    assert all_rows(ds, "user_progress", from_date=early) == all_rows(ds, "user_progress")


def test_course_and_email_filters(ds: Dataset, history: dict[str, list[dict[str, Any]]]) -> None:
    course_id = Counter(r["course_id"] for r in history["user_progress"]).most_common(1)[0][0]
    for endpoint in ("user_course_activity", "user_progress"):
        rows = all_rows(ds, endpoint, course_id=course_id)
        assert rows
        assert rows == [r for r in history[endpoint] if r["course_id"] == course_id]
        assert all_rows(ds, endpoint, course_id=1) == []
    for endpoint in ("user_activity", "user_path_activity", "courses", "learning_paths"):
        assert all_rows(ds, endpoint, course_id=course_id) == history[endpoint]
    email = next(r["user_email"] for r in history["user_course_activity"] if "+" in r["user_email"])
    for endpoint in LEARNER_ENDPOINTS:
        expected = [r for r in history[endpoint] if r["user_email"] == email]
        assert all_rows(ds, endpoint, user_email=email) == expected
        assert all_rows(ds, endpoint, user_email=email.upper()) == []
        anonymized = [r for r in history[endpoint] if r["user_email"] == "Anonymized User"]
        assert all_rows(ds, endpoint, user_email="Anonymized User") == anonymized
    assert all_rows(ds, "user_activity", user_email=email)
    for endpoint in ("courses", "learning_paths"):
        assert all_rows(ds, endpoint, user_email=email) == history[endpoint]
    both = all_rows(ds, "user_progress", user_email=email, course_id=course_id)
    assert both == [
        r
        for r in history["user_progress"]
        if r["user_email"] == email and r["course_id"] == course_id
    ]


def test_anonymized_learners(history: dict[str, list[dict[str, Any]]]) -> None:
    for endpoint in LEARNER_ENDPOINTS:
        anonymized = [r for r in history[endpoint] if r["user_email"] == "Anonymized User"]
        assert anonymized, endpoint
        for row in anonymized:
            assert (row["user_name"], row["user_surname"]) == ("Anonymized", "User")
            assert row["user_external_id"] is None
            assert isinstance(row.get("user_id", row.get("id")), int)
    ids = [r["id"] for r in history["user_activity"] if r["user_email"] == "Anonymized User"]
    assert len(ids) >= 2
    assert len(set(ids)) == len(ids)


def test_about_ten_percent_are_anonymized() -> None:
    ds = Dataset(DatasetParams(learners=5000))
    anonymized = sum(ds.learner(i).anonymized for i in range(5000))
    assert 420 <= anonymized <= 580  # 10 % of 5000 = 500


# -- the clock ---------------------------------------------------------------------------------
def test_advance_reveals_rows_and_keeps_the_past() -> None:
    ds = Dataset(DatasetParams(learners=150, late_ratio=0.3))
    today0 = ds.today
    y0 = today0 - timedelta(days=1)
    past = Filters(from_date=today0 - timedelta(days=40), to_date=today0 - timedelta(days=3))
    recent = Filters(from_date=today0 - timedelta(days=6), to_date=y0)
    before = {ep: ds.select(ep, past) for ep in LEARNER_ENDPOINTS}
    before_rows = {ep: sel.rows(0, sel.count) for ep, sel in before.items()}
    recent_sel = ds.select("user_progress", recent)
    recent_rows = recent_sel.rows(0, recent_sel.count)
    whole = ds.select("user_progress", Filters()).count
    late = {
        (10001 + ds.enrollments.learner[e], ds.courses[ds.enrollments.course[e]].id)
        for e in range(len(ds.enrollments.course))
        if ds.enrollments.lag[e]
    }
    assert late

    ds.advance(days=3)
    assert ds.today == today0 + timedelta(days=3)
    assert ds.select("user_progress", Filters()).count > whole
    # A closed past period reads the same once its late rows have arrived.
    for endpoint in LEARNER_ENDPOINTS:
        assert all_rows(ds, endpoint, **vars(past)) == before_rows[endpoint]
        # Selections taken before the advance are snapshots and do not move either.
        assert before[endpoint].rows(0, before[endpoint].count) == before_rows[endpoint]
    # A period ending yesterday may gain late rows (and their enrollment's last access moves
    # on), and nothing else changes.
    after = all_rows(ds, "user_progress", **vars(recent))
    assert recent_sel.rows(0, recent_sel.count) == recent_rows

    def on_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if (r["user_id"], r["course_id"]) not in late]

    assert on_time(after) == on_time(recent_rows)
    assert len(after) > len(recent_rows)
    # Reading again changes nothing.
    assert all_rows(ds, "user_progress", **vars(recent)) == after
    with pytest.raises(ValueError, match="forward"):
        ds.advance(-1)


# -- consistency between endpoints -------------------------------------------------------------
def periods(ds: Dataset) -> list[Filters]:
    today = ds.today
    return [
        Filters(),
        Filters(from_date=today - timedelta(days=14), to_date=today - timedelta(days=8)),
        Filters(from_date=today - timedelta(days=2), to_date=today - timedelta(days=2)),
        Filters(from_date=today - timedelta(days=60), to_date=today - timedelta(days=31)),
    ]


def in_period(ts: str | None, f: date, t: date) -> bool:
    day = day_of(ts)
    return day is not None and f <= day <= t


def test_user_activity_sums_course_activity_and_progress(ds: Dataset) -> None:
    for filters in periods(ds):
        sel = ds.select("user_activity", filters)
        f, t = sel.from_date, sel.to_date
        assert f is not None
        assert t is not None
        activity = sel.rows(0, sel.count)
        courses: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in all_rows(ds, "user_course_activity", **vars(filters)):
            courses[row["user_id"]].append(row)
        lectures: Counter[int] = Counter(
            r["user_id"]
            for r in all_rows(ds, "user_progress", **vars(filters))
            if r["item_completion_time"] is not None and r["item_type"] != "Quiz"
        )
        assert activity
        assert {r["id"] for r in activity} == set(courses)
        for row in activity:
            mine = courses[row["id"]]
            assert row["report_date"] == f"{t}T00:00:00Z"
            assert row["num_video_consumed_minutes"] == round(
                sum(c["num_video_consumed_minutes"] for c in mine), 2
            )
            assert row["num_new_enrolled_courses"] == sum(
                in_period(c["course_enroll_date"], f, t) for c in mine
            )
            assert row["num_new_assigned_courses"] == sum(
                in_period(c["course_enroll_date"], f, t) and c["is_assigned"] == "Yes" for c in mine
            )
            assert row["num_new_started_courses"] == sum(
                in_period(c["course_start_date"], f, t) for c in mine
            )
            assert row["num_completed_courses"] == sum(
                in_period(c["course_completion_date"], f, t) for c in mine
            )
            assert row["num_completed_lectures"] == lectures[row["id"]]
            assert 0 <= row["num_web_visited_days"] <= (t - f).days + 1
            assert row["last_date_visit"] >= max(c["course_last_accessed_date"] for c in mine)


def test_completion_ratio_matches_completed_items(ds: Dataset) -> None:
    items = ds.params.items_per_course
    for filters in periods(ds):
        sel = ds.select("user_course_activity", filters)
        t = sel.to_date
        done: Counter[tuple[int, int]] = Counter(
            (r["user_id"], r["course_id"])
            for r in all_rows(ds, "user_progress", to_date=t)
            if r["item_completion_time"] is not None
        )
        rows = sel.rows(0, sel.count)
        assert rows
        for row in rows:
            completed = done[row["user_id"], row["course_id"]]
            assert row["completion_ratio"] == round(completed * 100 / items, 2)
            assert (row["course_completion_date"] is not None) == (completed == items)
            assert row["course_first_completion_date"] == row["course_completion_date"]
            assert row["num_video_consumed_minutes"] <= row["course_duration"]
            assert (row["assigned_by"] is None) == (row["is_assigned"] == "No")


def test_path_activity_agrees_with_course_activity(ds: Dataset) -> None:
    paths = {
        p["id"]: [i["id"] for s in p["sections"] for i in s["items"]]
        for p in all_rows(ds, "learning_paths")
    }
    items = ds.params.items_per_course
    seen = completed_paths = 0
    for filters in periods(ds):
        sel = ds.select("user_path_activity", filters)
        t = sel.to_date
        in_period_rows = all_rows(ds, "user_course_activity", **vars(filters))
        minutes = {
            (r["user_id"], r["course_id"]): r["num_video_consumed_minutes"] for r in in_period_rows
        }
        until_t = {
            (r["user_id"], r["course_id"]): r
            for r in all_rows(ds, "user_course_activity", to_date=t)
        }
        for row in sel.rows(0, sel.count):
            seen += 1
            user, courses = row["user_id"], paths[row["path_id"]]
            first = until_t[user, courses[0]]  # members enrolled in the path's first course
            assert row["path_enrolled_date"] == first["course_enroll_date"]
            assert row["is_path_assigned"] == (first["is_assigned"] == "Yes")
            assert any((user, c) in minutes for c in courses)  # active in the period
            assert row["path_consumed_minutes"] == round(
                sum(minutes.get((user, c), 0.0) for c in courses), 2
            )
            completed = sum(
                round(until_t[user, c]["completion_ratio"] * items / 100)
                for c in courses
                if (user, c) in until_t
            )
            assert row["completion_ratio"] == round(completed * 100 / (items * len(courses)), 2)
            finished = all(
                (user, c) in until_t and until_t[user, c]["completion_ratio"] == 100
                for c in courses
            )
            assert (row["path_completion_date"] is not None) == finished
            completed_paths += finished
    assert seen > 20
    assert completed_paths  # the demo data has someone finishing a path


def test_paths_and_activity_reference_the_catalog(
    history: dict[str, list[dict[str, Any]]],
) -> None:
    courses = {c["id"]: c for c in history["courses"]}
    for path in history["learning_paths"]:
        members = [i for s in path["sections"] for i in s["items"]]
        assert len(members) >= 2
        assert 2 <= len(path["sections"]) <= 4
        assert path["number_of_content_items"] == len(members)
        for item in members:
            assert item["type"] == "course"
            assert courses[item["id"]]["title"] == item["title"]
    paths = {p["id"]: p for p in history["learning_paths"]}
    for row in history["user_path_activity"]:
        assert paths[row["path_id"]]["title"] == row["path_title"]
    for endpoint in ("user_course_activity", "user_progress"):
        for row in history[endpoint]:
            course = courses[row["course_id"]]
            assert row["course_title"] == course["title"]
            assert row["course_category"] == course["categories"][0]


def test_progress_items_exist_in_their_course(
    ds: Dataset,
    history: dict[str, list[dict[str, Any]]],
) -> None:
    courses = {c["id"]: c for c in history["courses"]}
    catalog_items = {
        (c.id, c.item_id(j)): ("Lecture", "Non-video lecture", "Quiz")[c.kinds[j]]
        for c in ds.courses
        for j in range(len(c.kinds))
    }
    per_course: dict[int, set[int]] = defaultdict(set)
    for row in history["user_progress"]:
        assert catalog_items[row["course_id"], row["item_id"]] == row["item_type"]
        per_course[row["course_id"]].add(row["item_id"])
    for course_id, seen in per_course.items():
        c = courses[course_id]
        assert len(seen) <= c["num_lectures"] + c["num_quizzes"]


def test_course_minutes_are_the_video_watched_in_progress(
    ds: Dataset,
    history: dict[str, list[dict[str, Any]]],
) -> None:
    # Minutes consumed = each video item's length times its completion ratio (centi-minutes).
    course_by_id = {c.id: c for c in ds.courses}
    watched: Counter[tuple[int, int]] = Counter()
    for row in history["user_progress"]:
        course = course_by_id[row["course_id"]]
        j = next(j for j in range(len(course.kinds)) if course.item_id(j) == row["item_id"])
        ratio = round(row["item_completion_ratio"] * 100)
        watched[row["user_id"], row["course_id"]] += course.durations[j] * ratio // 10000
    partial = 0
    for row in history["user_course_activity"]:
        expected = watched[row["user_id"], row["course_id"]] / 100
        assert row["num_video_consumed_minutes"] == expected
        if row["completion_ratio"] == 100:
            assert row["num_video_consumed_minutes"] == row["course_duration"]
        partial += 0 < row["completion_ratio"] < 100
    assert partial


def test_progress_item_states(history: dict[str, list[dict[str, Any]]]) -> None:
    for row in history["user_progress"]:
        result = row["item_final_result"]
        if row["item_type"] != "Quiz":
            assert result is None
        elif row["item_completion_time"] is not None:
            correct, total = map(int, result.split("/"))
            assert 0 <= correct <= total
        if row["item_completion_time"] is None:
            assert 0 < row["item_completion_ratio"] < 100
        else:
            assert row["item_completion_ratio"] == 100.0
            assert row["item_start_time"] is None or (
                row["item_start_time"] <= row["item_completion_time"]
            )
    assert any(r["item_start_time"] is None for r in history["user_progress"])
    assert any(r["item_final_result"] for r in history["user_progress"])
    assert any(r["item_type"] == "Non-video lecture" for r in history["user_progress"])


# -- size and complexity (counted, not timed) ---------------------------------------------------
@pytest.mark.slow
def test_scales_to_millions_of_rows_with_flat_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    ds = Dataset(DatasetParams(learners=50_000, items_per_course=30))
    enrollments = len(ds.enrollments.course)  # built once: O(enrollments), not O(rows)
    tracemalloc.start()
    try:
        sel = ds.select("user_progress", Filters())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sel.count > 1_000_000
    assert peak < 8_000_000  # a million rendered rows would need gigabytes
    assert len(sel._index.units) <= enrollments
    calls = 0
    render = ds.render_progress

    def counting(*args: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return render(*args)

    monkeypatch.setattr(ds, "render_progress", counting)
    for start in (0, sel.count // 3, sel.count - 100):
        rows = sel.rows(start, start + 100)
        assert len(rows) == 100
    assert calls == 300  # only the requested rows are rendered
    day = ds.today - timedelta(days=4)
    one_day = ds.select("user_progress", Filters(from_date=day, to_date=day))
    assert 0 < one_day.count < sel.count // 20
    last = one_day.rows(one_day.count - 1, one_day.count)[0]
    assert day_of(last["item_completion_time"] or last["item_start_time"]) in (day, None)


def test_the_model_caches_no_query() -> None:
    """The portal's page cache is the one cache: a selection is made afresh, equal each time."""
    ds = Dataset(DatasetParams(learners=30))
    first = ds.select("user_progress", Filters())
    again = ds.select("user_progress", Filters())
    assert again is not first
    assert again.count == first.count > 0
    assert again.rows(0, again.count) == first.rows(0, first.count)


def test_queries_meaning_the_same_rows_normalize_to_one_key() -> None:
    ds = Dataset(DatasetParams(learners=30))
    yesterday = ds.today - timedelta(days=1)
    course = ds.courses[0].id
    assert ds.query("user_progress", Filters()) == ds.query(
        "user_progress", Filters(to_date=yesterday + timedelta(days=9))
    )
    long_ago = ds.today - timedelta(days=5000)
    assert ds.query("user_activity", Filters(from_date=long_ago)) == ds.query(
        "user_activity", Filters(from_date=long_ago - timedelta(days=1))
    )
    unknown = ds.query("user_progress", Filters(course_id=-5))
    assert unknown == ds.query("user_progress", Filters(course_id=-6))
    assert ds.selection(unknown).count == 0
    assert ds.query("user_progress", Filters(course_id=course)) != unknown
    assert ds.query("courses", Filters(from_date=yesterday)) == ds.query("courses")
    before = ds.query("user_progress")
    ds.advance(1)
    assert ds.query("user_progress") != before  # the clock is part of the key


def test_tiny_and_empty_datasets() -> None:
    tiny = Dataset(
        DatasetParams(learners=1, courses=1, items_per_course=1, learning_paths=1, history_days=3)
    )
    for endpoint in ENDPOINTS:
        sel = tiny.select(endpoint, Filters())
        assert len(sel.rows(0, sel.count)) == sel.count
    assert tiny.select("courses", Filters()).count == 1
    empty = Dataset(DatasetParams(learners=0))
    for endpoint in LEARNER_ENDPOINTS:
        assert empty.select(endpoint, Filters()).count == 0
    assert empty.select("learning_paths", Filters()).rows(0, 10)[0]["editors"] == []


# -- dialects: the shapes of each source ------------------------------------------------------
@pytest.fixture(scope="module")
def shaped() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every endpoint's whole history in every dialect (small data)."""
    out = {}
    for dialect in DIALECTS:
        data = Dataset(DatasetParams(learners=60, courses=10, history_days=30, dialect=dialect))
        out[dialect] = {endpoint: all_rows(data, endpoint) for endpoint in ENDPOINTS}
    return out


def test_each_dialect_sends_the_shapes_its_source_shows(
    shaped: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    guide, observed, own = shaped["guide"], shaped["observed"], shaped["sandbox"]
    for endpoint in ("user_course_activity", "user_progress", "user_path_activity"):
        assert all("user_id" not in r for r in guide[endpoint]), endpoint
        assert all(isinstance(r["user_id"], int) for r in own[endpoint]), endpoint
    assert all("user_id" in r for r in observed["user_course_activity"])
    assert all(
        "user_id" not in r for r in observed["user_progress"] + observed["user_path_activity"]
    )
    assert all({"id", "report_date"} <= set(r) for r in guide["user_activity"])
    assert all(not {"id", "report_date"} & set(r) for r in observed["user_activity"])
    assert {r["is_assigned"] for r in guide["user_course_activity"]} == {"Yes", "No"}
    assert {r["is_assigned"] for r in observed["user_course_activity"]} == {True, False}
    quiz = [r["item_final_result"] for r in guide["user_progress"] if r["item_final_result"]]
    assert quiz
    assert all(isinstance(v, str) and "/" in v for v in quiz)
    scores = [r["item_final_result"] for r in observed["user_progress"] if r["item_final_result"]]
    assert scores
    assert all(isinstance(v, (int, float)) for v in scores)
    assert {r["_class"] for r in observed["user_progress"]} != {"user_progress"}
    assert all("primary_category" in r for r in observed["courses"])
    for dialect, rows in shaped.items():
        for endpoint in LEARNER_ENDPOINTS:
            anonymized = [r for r in rows[endpoint] if r["user_email"] == "Anonymized User"]
            assert anonymized, (dialect, endpoint)
            assert all(r["user_name"] == "Anonymized" for r in anonymized)
            assert all(UNKNOWN_FIELD in r for r in rows[endpoint])
        minutes = [r["num_video_consumed_minutes"] for r in rows["user_course_activity"]]
        assert any(type(m) is int for m in minutes), dialect
        assert any(type(m) is float for m in minutes), dialect


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_dialects_rows_fit_the_tap_schemas_once_the_tap_adds_its_fields(
    dialect: str, shaped: dict[str, dict[str, list[dict[str, Any]]]]
) -> None:
    for endpoint, rows in shaped[dialect].items():
        schema = json.loads((SCHEMAS / f"{endpoint}.json").read_text())
        validator = Draft202012Validator(schema)
        added = {"learner_key": "e:0", "from_date": "2026-11-01", "to_date": "2026-11-01"}
        for row in rows:
            stamped = {k: v for k, v in row.items() if k in schema["properties"]}
            if endpoint in LEARNER_ENDPOINTS:
                stamped.update(added)
            errors = [e.message for e in validator.iter_errors(stamped)]
            assert not errors, (dialect, endpoint, errors[:3])
