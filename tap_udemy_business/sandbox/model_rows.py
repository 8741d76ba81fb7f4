"""The analytics endpoints' rows, rendered on demand from a learner's enrollments.

Each function renders one row of one endpoint, as the model's own (`sandbox` dialect) `@all`
record, from nothing but the dataset's seed-derived columns and the period asked for: no row
is stored anywhere, so a query over millions of rows renders only the page asked for.
`Selection` (in `model_selection.py`) decides which rows exist; this module what they say.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from tap_udemy_business.sandbox.model_catalog import ITEM_TYPES, KIND_QUIZ
from tap_udemy_business.sandbox.model_catalog_records import is_pro_path

if TYPE_CHECKING:
    from tap_udemy_business.sandbox.model import Dataset
    from tap_udemy_business.sandbox.model_activity import EnrollmentView, Period
    from tap_udemy_business.sandbox.model_catalog import Course


@lru_cache(maxsize=8192)
def iso_day(ordinal: int) -> str:
    """A day ordinal as `YYYY-MM-DD` (memoized: a few hundred distinct days per dataset)."""
    return date.fromordinal(ordinal).isoformat()


def timestamp(day: int, sec: int) -> str:
    """A day ordinal and a second of that day as the API's `YYYY-MM-DDTHH:MM:SSZ`."""
    return f"{iso_day(day)}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"


def user_fields(ds: Dataset, i: int) -> dict[str, Any]:
    """The learner fields every learner row starts with, for learner `i`."""
    learner = ds.learner(i)
    return {
        "lms_user_id": learner.lms_user_id,
        "user_email": learner.email,
        "user_name": learner.name,
        "user_surname": learner.surname,
        "user_role": learner.role,
        "user_external_id": learner.external_id,
        "user_is_deactivated": learner.deactivated,
    }


def course_fields(course: Course) -> dict[str, Any]:
    """The course fields of the rows about one course."""
    return {
        "course_id": course.id,
        "course_title": course.title,
        "course_category": course.category,
        "course_subcategory": course.subcategory,
    }


def progress_row(ds: Dataset, enr: EnrollmentView, j: int) -> dict[str, Any]:
    """A user_progress row: item `j` of enrollment `enr`."""
    course = enr.course
    day, start, end = enr.item_times(j)
    ih = enr.item_hash(j)
    kind = course.kinds[j]
    result = None
    if kind == KIND_QUIZ and end is not None:
        questions = 5 + (ih >> 40) % 11
        result = f"{questions - (ih >> 44) % (questions // 2 + 1)}/{questions}"
    return {
        "_class": "user_progress",
        "user_id": 10001 + enr.learner,
        **user_fields(ds, enr.learner),
        **course_fields(course),
        "item_id": course.item_id(j),
        "item_type": ITEM_TYPES[kind],
        "item_title": ds.item_title(course.index, j),
        # Udemy sometimes cannot tell when an item was started.
        "item_start_time": None if (ih >> 50) % 50 == 0 else timestamp(day, start),
        "item_completion_time": None if end is None else timestamp(day, end),
        "item_completion_ratio": 100.0 if end is not None else enr.partial_ratio() / 100,
        "item_final_result": result,
        # The course's last access as recorded with this item (its own last touch), so
        # an item's row reads the same whichever period it is requested in.
        "course_last_accessed_date": timestamp(day, start if end is None else end),
    }


def course_activity_row(ds: Dataset, e: int, period: Period) -> dict[str, Any]:
    """A user_course_activity row: enrollment `e` aggregated over the period."""
    enr = ds.view(e, period)
    course = enr.course
    last_day, last_sec = enr.last_time()
    completion = enr.completion_time()
    done = None if completion is None else timestamp(*completion)
    start = None
    if enr.m:
        day, sec, _ = enr.item_times(0)
        start = timestamp(day, sec)
    return {
        "_class": "user_course_activity",
        "user_id": 10001 + enr.learner,
        **user_fields(ds, enr.learner),
        **course_fields(course),
        "course_duration": course.video_prefix[-1] / 100,
        "completion_ratio": round(enr.done() * 100 / len(course.kinds), 2),
        "num_video_consumed_minutes": enr.watched(*enr.span(period.start)) / 100,
        "course_enroll_date": timestamp(enr.day, enr.enroll_sec()),
        "course_start_date": start,
        "course_completion_date": done,
        "course_first_completion_date": done,
        "course_last_accessed_date": timestamp(last_day, last_sec),
        "last_activity_date": iso_day(last_day),
        "is_assigned": "Yes" if enr.assigned else "No",
        "assigned_by": ds.learner(enr.assigned - 1).email if enr.assigned else None,
    }


def activity_row(ds: Dataset, i: int, period: Period) -> dict[str, Any]:
    """A user_activity row: learner `i`'s activity summed over the period."""
    tab = ds.enrollments
    f = period.start
    learner = ds.learner(i)
    enrolled = assigned = started = completed = lectures = centi = 0
    web_days: set[int] = set()
    last: tuple[int, int] | None = None
    for e in range(tab.start[i], tab.start[i + 1]):
        enr = ds.view(e, period)
        if not enr.visible():
            continue
        lo, hi = enr.span(f)
        if f <= enr.day:
            enrolled += 1
            assigned += enr.assigned > 0
            if not enr.lag:
                web_days.add(enr.day)
        started += enr.m > 0 and not lo
        completed += enr.completion_time() is not None and lo <= hi == enr.n - 1
        lectures += enr.completed_lectures(lo, hi)
        centi += enr.watched(lo, hi)
        if hi >= lo and not enr.lag:  # late (offline mobile) activity is not a web visit
            web_days.update(range(enr.day + 1 + lo * enr.gap, enr.day + 2 + hi * enr.gap, enr.gap))
        touch = enr.last_time()
        last = touch if last is None or touch > last else last
    return {
        "_class": "aggregate_organization_user_activity",
        "id": learner.user_id,
        **user_fields(ds, i),
        "user_joined_date": timestamp(learner.join_day, learner.join_sec),
        "report_date": timestamp(period.end, 0),
        "num_new_enrolled_courses": enrolled,
        "num_new_assigned_courses": assigned,
        "num_new_started_courses": started,
        "num_completed_courses": completed,
        "num_completed_lectures": lectures,
        "num_video_consumed_minutes": centi / 100,
        "num_web_visited_days": len(web_days),
        "last_date_visit": None if last is None else timestamp(*last),
    }


def path_activity_row(ds: Dataset, unit: int, period: Period) -> dict[str, Any]:
    """A user_path_activity row: a learner's activity in one path's courses."""
    i, p = divmod(unit, len(ds.paths))
    tab = ds.enrollments
    path = ds.paths[p]
    by_course = {tab.course[e]: e for e in range(tab.start[i], tab.start[i + 1])}
    enrs = ds.path_enrollments(by_course, p, period)
    first = enrs[0]
    visible = [enr for enr in enrs if enr.visible()]
    finished = [c for c in (enr.completion_time() for enr in enrs) if c is not None]
    items = len(first.course.kinds) * len(path.courses)
    return {
        "_class": "user_path_activity",
        "user_id": 10001 + i,
        **user_fields(ds, i),
        "path_id": path.id,
        "path_title": path.title,
        "is_pro_path": is_pro_path(path),
        "is_private_path": (path.h >> 54) % 4 == 0,
        "completion_ratio": round(sum(enr.done() for enr in enrs) * 100 / items, 2),
        "path_enrolled_date": timestamp(first.day, first.enroll_sec()),
        "path_consumed_minutes": sum(enr.watched(*enr.span(period.start)) for enr in enrs) / 100,
        "path_completion_date": (
            timestamp(*max(finished)) if len(finished) == len(path.courses) else None
        ),
        "is_path_assigned": first.assigned > 0,
        "path_first_activity_date": timestamp(*min((enr.day, enr.enroll_sec()) for enr in visible)),
        "path_last_activity_date": timestamp(*max(enr.last_time() for enr in visible)),
    }
