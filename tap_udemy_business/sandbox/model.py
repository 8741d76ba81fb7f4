"""Deterministic, lazily generated data of the sandbox portal (see docs/sandbox-design.md).

Nothing here is random at request time and no result set is ever materialised:

* the catalog (courses, paths) is small and built once from the seed (`model_catalog`);
* each learner's enrollments are derived from `(seed, learner)` and kept as a handful of compact
  integer columns (O(enrollments), a few bytes each), never as rows (`model_activity`);
* an enrollment's items are pure arithmetic: item `j` happens on `enroll_day + 1 + j * gap`, so the
  number of its rows inside a period is O(1) to count;
* a period's state is "as of its end day", and a late (offline-synced) enrollment is cut off
  `lag` days before yesterday: so a closed period reads the same forever once its lag has passed;
* a query (`Dataset.select`) keeps only the enrollments/learners that have rows plus a prefix-count
  array (`array` module), so `Selection.rows(start, stop)` is a bisect and renders only the rows
  asked for. Queries live in a bounded LRU.

Day numbers are `date.toordinal()` integers internally; rows carry ISO strings.
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from tap_udemy_business.sandbox import model_catalog as cat
from tap_udemy_business.sandbox.dialects import DEFAULT_DIALECT, DIALECTS, SANDBOX_CLASSES
from tap_udemy_business.sandbox.model_activity import (
    EnrollmentParams,
    Enrollments,
    EnrollmentView,
    Period,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ENDPOINTS: Final = (
    "courses",
    "learning_paths",
    "user_activity",
    "user_course_activity",
    "user_progress",
    "user_path_activity",
)
#: The `_class` of each endpoint's records in the model's own (`sandbox`) dialect.
CLASS_NAMES: Final[dict[str, str]] = SANDBOX_CLASSES
_USER = [
    "lms_user_id",
    "user_email",
    "user_name",
    "user_surname",
    "user_role",
    "user_external_id",
    "user_is_deactivated",
]
_COURSE = ["course_id", "course_title", "course_category", "course_subcategory"]
_ALL: dict[str, list[str]] = {
    "courses": [
        "_class",
        "id",
        "title",
        "headline",
        "description",
        "url",
        "estimated_content_length",
        "categories",
        "topics",
        "num_lectures",
        "num_videos",
        "num_quizzes",
        "promo_video_url",
        "video_preview_urls",
        "instructors",
        "requirements",
        "what_you_will_learn",
        "images",
        "locale",
        "level",
        "is_custom",
        "is_imported",
        "accreditations",
        "last_update_date",
    ],
    "learning_paths": [
        "_class",
        "id",
        "title",
        "description",
        "url",
        "created",
        "last_modified",
        "editors",
        "folders",
        "locales",
        "sections",
        "categories",
        "is_pro_path",
        "number_of_content_items",
        "estimated_content_length",
    ],
    "user_activity": [
        "_class",
        "id",
        *_USER,
        "user_joined_date",
        "report_date",
        "num_new_enrolled_courses",
        "num_new_assigned_courses",
        "num_new_started_courses",
        "num_completed_courses",
        "num_completed_lectures",
        "num_video_consumed_minutes",
        "num_web_visited_days",
        "last_date_visit",
    ],
    "user_course_activity": [
        "_class",
        "user_id",
        *_USER,
        *_COURSE,
        "course_duration",
        "completion_ratio",
        "num_video_consumed_minutes",
        "course_enroll_date",
        "course_start_date",
        "course_completion_date",
        "course_first_completion_date",
        "course_last_accessed_date",
        "last_activity_date",
        "is_assigned",
        "assigned_by",
    ],
    "user_progress": [
        "_class",
        "user_id",
        *_USER,
        *_COURSE,
        "item_id",
        "item_type",
        "item_title",
        "item_start_time",
        "item_completion_time",
        "item_completion_ratio",
        "item_final_result",
        "course_last_accessed_date",
    ],
    "user_path_activity": [
        "_class",
        "user_id",
        *_USER,
        "path_id",
        "path_title",
        "is_pro_path",
        "is_private_path",
        "completion_ratio",
        "path_enrolled_date",
        "path_consumed_minutes",
        "path_completion_date",
        "is_path_assigned",
        "path_first_activity_date",
        "path_last_activity_date",
    ],
}
_MIN: dict[str, list[str]] = {
    "courses": ["_class", "id", "title"],
    "learning_paths": ["_class", "id", "title"],
    "user_activity": ["_class", "id", "user_email"],
    "user_course_activity": ["_class", "user_id", "user_email", "course_id", "course_title"],
    "user_progress": ["_class", "user_id", "user_email", "course_id", "item_id", "item_title"],
    "user_path_activity": ["_class", "user_id", "user_email", "path_id", "path_title"],
}
_DEFAULT_EXTRA: dict[str, list[str]] = {
    "courses": [
        "url",
        "estimated_content_length",
        "categories",
        "num_lectures",
        "instructors",
        "locale",
        "level",
        "last_update_date",
    ],
    "learning_paths": [
        "url",
        "created",
        "last_modified",
        "categories",
        "number_of_content_items",
        "estimated_content_length",
    ],
    "user_activity": [
        "user_name",
        "user_surname",
        "user_role",
        "report_date",
        "num_new_enrolled_courses",
        "num_completed_courses",
        "num_video_consumed_minutes",
        "last_date_visit",
    ],
    "user_course_activity": [
        "user_role",
        "completion_ratio",
        "num_video_consumed_minutes",
        "course_enroll_date",
        "course_completion_date",
        "is_assigned",
    ],
    "user_progress": [
        "item_type",
        "item_start_time",
        "item_completion_time",
        "item_completion_ratio",
        "item_final_result",
    ],
    "user_path_activity": [
        "completion_ratio",
        "path_enrolled_date",
        "path_consumed_minutes",
        "path_completion_date",
        "is_path_assigned",
    ],
}
FIELD_SETS: Final[dict[str, dict[str, list[str]]]] = {
    endpoint: {
        "@min": list(_MIN[endpoint]),
        # @default keeps the @all order so a partial record reads like a full one.
        "@default": [f for f in fields if f in _MIN[endpoint] or f in _DEFAULT_EXTRA[endpoint]],
        "@all": list(fields),
    }
    for endpoint, fields in _ALL.items()
}

_QUERY_CACHE_SIZE = 32  # queries whose row index is kept (a few hundred KB each at most)
_BEFORE_HISTORY = 60  # admins joined before the history; nothing is older than this
_NO_SUCH_COURSE = -1  # course filter naming no catalog course: an empty result


@dataclass(frozen=True)
class DatasetParams:
    """Everything the generated data depends on; equal params give byte-identical rows."""

    seed: int = 7
    learners: int = 200
    courses: int = 40
    items_per_course: int = 20
    max_enrollments: int = 4
    learning_paths: int = 6
    history_days: int = 90
    today: date = date(2026, 11, 28)
    anonymized_ratio: float = 0.10
    late_ratio: float = 0.05
    #: The record shapes served: `sandbox`, `guide` or `observed` (see `dialects.py`).
    dialect: str = DEFAULT_DIALECT

    def __post_init__(self) -> None:
        """Reject sizes the generator cannot honour, early and with a clear message."""
        if self.dialect not in DIALECTS:
            msg = f"dialect must be one of {', '.join(DIALECTS)}"
            raise ValueError(msg)
        if self.learners < 0 or self.learning_paths < 0:
            msg = "learners and learning_paths must be >= 0"
            raise ValueError(msg)
        if self.courses < 1 or self.items_per_course < 1 or self.max_enrollments < 1:
            msg = "courses, items_per_course and max_enrollments must be >= 1"
            raise ValueError(msg)
        if self.history_days < 1:
            msg = "history_days must be >= 1"
            raise ValueError(msg)
        if not (0 <= self.anonymized_ratio <= 1 and 0 <= self.late_ratio <= 1):
            msg = "anonymized_ratio and late_ratio must be within [0, 1]"
            raise ValueError(msg)


@dataclass(frozen=True)
class Filters:
    """Request filters; hashable so normalized filters can key the query cache."""

    from_date: date | None = None
    to_date: date | None = None
    course_id: int | None = None
    user_email: str | None = None


class _Index(NamedTuple):
    """What a query found: one unit per group of rows, plus cumulative row counts.

    Groups hold several rows only for user_progress (an enrollment's items); elsewhere every
    unit is one row and `cum` is None.
    """

    units: array[int]
    cum: array[int] | None
    total: int


_EMPTY = _Index(array("q"), None, 0)


@lru_cache(maxsize=8192)
def _day(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def _ts(day: int, sec: int) -> str:
    return f"{_day(day)}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"


class Selection:
    """The result of one query: a row count and random access to its rows, rendered on demand.

    A selection is a snapshot for the clock at `select` time: advancing the clock later does
    not change it (a new `select` sees the new days).
    """

    def __init__(self, ds: Dataset, endpoint: str, period: Period | None, index: _Index) -> None:
        """Keep the query's index: the units that have rows and their prefix counts."""
        self._ds = ds
        self.endpoint = endpoint
        self._period = period
        self._index = index
        self.count = index.total

    @property
    def from_date(self) -> date | None:
        """Effective first day of the period (None for catalog endpoints)."""
        return date.fromordinal(self._period.start) if self._period else None

    @property
    def to_date(self) -> date | None:
        """Effective last day of the period, after capping at yesterday."""
        return date.fromordinal(self._period.end) if self._period else None

    def rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Full (`@all`) records `start`..`stop`-1 in API order, as fresh dicts."""
        start = max(0, start)
        stop = min(self.count, stop)
        if start >= stop:
            return []
        shape = self._ds.dialect.shape
        return [shape(self.endpoint, row) for row in self._model_rows(start, stop)]

    def _model_rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        ds = self._ds
        period = self._period
        if period is None:
            render_catalog = ds.catalog_renderer(self.endpoint)
            return [render_catalog(i) for i in range(start, stop)]
        if self._index.cum is not None:
            return self._progress_rows(period, start, stop)
        render = ds.renderer(self.endpoint)
        units = self._index.units
        return [render(units[k], period) for k in range(start, stop)]

    def _progress_rows(self, period: Period, start: int, stop: int) -> list[dict[str, Any]]:
        """Bisect to the enrollment holding row `start`, then walk its items (and the next)."""
        ds = self._ds
        units = self._index.units
        cum = self._index.cum
        assert cum is not None  # noqa: S101 (only called for indexes with prefix counts)
        out: list[dict[str, Any]] = []
        k = bisect_right(cum, start)
        pos = start
        while pos < stop:
            enr = ds.view(units[k], period)
            lo, _ = enr.span(period.start)
            first_row = cum[k - 1] if k else 0
            end = min(stop, cum[k])
            j = lo + pos - first_row
            out.extend(ds.render_progress(enr, j + d) for d in range(end - pos))
            pos = end
            k += 1
        return out


class Dataset:
    """The sandbox portal's data: a clock plus lazily generated, deterministic records."""

    def __init__(self, params: DatasetParams | None = None) -> None:
        """Build the (small) catalog now; learners' enrollments on the first analytics query."""
        self.params = params or DatasetParams()
        p = self.params
        self.dialect = DIALECTS[p.dialect]
        self._field_sets = {
            endpoint: {
                name: self.dialect.fields(endpoint, names, minimal=name == "@min")
                for name, names in sets.items()
            }
            for endpoint, sets in FIELD_SETS.items()
        }
        self.base = cat.mix(p.seed & cat.MASK64)
        self._lock = threading.RLock()
        self._today = p.today.toordinal()
        self._today0 = p.today
        self.history_start = self._today - p.history_days
        # Learners join within the history and a little after the initial today.
        self._join_span = p.history_days + max(1, p.history_days // 6)
        self.courses = cat.build_courses(self.base, p.courses, p.items_per_course)
        self.paths = cat.build_paths(self.base, p.learning_paths, self.courses)
        path_first: dict[int, list[int]] = {}
        for path in self.paths:
            path_first.setdefault(path.courses[0], []).append(path.index)
        self._path_first = {c: tuple(ps) for c, ps in path_first.items()}
        self._course_index = {c.id: c.index for c in self.courses}
        self.learner = lru_cache(maxsize=16384)(self._build_learner)
        self.item_title = lru_cache(maxsize=65536)(self._item_title)
        self._enrollments: Enrollments | None = None
        self._emails: dict[str, list[int]] | None = None
        self._queries: OrderedDict[tuple[Any, ...], Selection] = OrderedDict()

    def class_name(self, endpoint: str) -> str:
        """The `_class` of the endpoint's records, which keys its `fields[...]` parameter."""
        return self.dialect.classes[endpoint]

    def field_sets(self, endpoint: str) -> dict[str, list[str]]:
        """The endpoint's `@min`, `@default` and `@all` field names, in this dialect."""
        return self._field_sets[endpoint]

    # -- clock -------------------------------------------------------------------------------
    @property
    def today(self) -> date:
        """The portal's current date; reporting data exists for the days before it."""
        return date.fromordinal(self._today)

    def advance(self, days: int = 1) -> None:
        """Move the clock forward, revealing the next days' activity (thread-safe)."""
        if days < 0:
            msg = "the clock only moves forward"
            raise ValueError(msg)
        with self._lock:
            self._today += days
            self._queries.clear()

    # -- lazily built indexes ----------------------------------------------------------------
    @property
    def enrollments(self) -> Enrollments:
        """The enrollment columns, built once on first use (O(enrollments), not O(rows))."""
        if self._enrollments is None:
            with self._lock:
                if self._enrollments is None:
                    p = self.params
                    self._enrollments = Enrollments(
                        EnrollmentParams(
                            p.learners,
                            p.courses,
                            p.items_per_course,
                            p.max_enrollments,
                            p.late_ratio,
                        ),
                        self.base,
                        self.history_start,
                        self.join_day,
                        tuple(path.courses for path in self.paths),
                    )
        return self._enrollments

    def learners_by_email(self, email: str) -> list[int]:
        """Indexes of the learners with this exact e-mail (all anonymized ones share theirs)."""
        if self._emails is None:
            with self._lock:
                if self._emails is None:
                    emails: dict[str, list[int]] = {}
                    for i in range(self.params.learners):
                        emails.setdefault(self.learner(i).email, []).append(i)
                    self._emails = emails
        return self._emails.get(email, [])

    def join_day(self, i: int) -> int:
        """Learner `i`'s join day (ordinal), without building the whole profile."""
        return cat.join_day(self.base, i, self.history_start, self._join_span)

    def view(self, e: int, period: Period) -> EnrollmentView:
        """Enrollment `e` as seen at the end of `period`."""
        return EnrollmentView(self.enrollments, self.courses, e, period)

    def _build_learner(self, i: int) -> cat.Learner:
        return cat.build_learner(
            self.base, i, self.history_start, self._join_span, self.params.anonymized_ratio
        )

    def _item_title(self, course: int, j: int) -> str:
        return cat.item_title(self.courses[course], j)

    # -- queries -----------------------------------------------------------------------------
    def select(self, endpoint: str, filters: Filters | None = None) -> Selection:
        """Index the rows of one endpoint for `filters` (cached; rows are rendered on demand)."""
        if endpoint not in CLASS_NAMES:
            msg = f"unknown endpoint {endpoint!r}"
            raise ValueError(msg)
        filters = filters or Filters()
        if endpoint == "courses":
            return Selection(self, endpoint, None, _Index(array("q"), None, len(self.courses)))
        if endpoint == "learning_paths":
            return Selection(self, endpoint, None, _Index(array("q"), None, len(self.paths)))
        with self._lock:
            y = self._today - 1
        # Open bounds cover the whole history; to_date never reaches today (daily refresh).
        f = self.history_start if filters.from_date is None else filters.from_date.toordinal()
        f = max(f, self.history_start - _BEFORE_HISTORY)  # nothing happens before: cache hits
        t = y if filters.to_date is None else min(filters.to_date.toordinal(), y)
        period = Period(f, t, y)
        course: int | None = None
        if endpoint in ("user_course_activity", "user_progress") and filters.course_id is not None:
            course = self._course_index.get(filters.course_id, _NO_SUCH_COURSE)
        key = (endpoint, period, course, filters.user_email)
        with self._lock:
            cached = self._queries.get(key)
            if cached is not None:
                self._queries.move_to_end(key)
                return cached
        selection = Selection(
            self, endpoint, period, self._index(endpoint, period, course, filters.user_email)
        )
        with self._lock:
            self._queries[key] = selection
            while len(self._queries) > _QUERY_CACHE_SIZE:
                self._queries.popitem(last=False)
        return selection

    def _index(
        self, endpoint: str, period: Period, course: int | None, email: str | None
    ) -> _Index:
        if period.start > period.end or course == _NO_SUCH_COURSE:
            return _EMPTY
        tab = self.enrollments
        if email is None:
            learners: range | list[int] = range(self.params.learners)
            ranges = [(0, len(tab.course))]
        else:
            learners = self.learners_by_email(email)
            ranges = [(tab.start[i], tab.start[i + 1]) for i in learners]
        if endpoint == "user_path_activity":
            return self._index_paths(learners, period)
        return self._index_enrollments(endpoint, period, course, ranges)

    def _index_enrollments(
        self, endpoint: str, period: Period, course: int | None, ranges: list[tuple[int, int]]
    ) -> _Index:
        """Index enrollment-based endpoints from one scan of the enrollment columns."""
        units = array("q")
        if endpoint == "user_progress":
            cum = array("q")
            total = 0
            for e, _, rows in self._scan(period, course, ranges):
                if rows:
                    total += rows
                    units.append(e)
                    cum.append(total)
            return _Index(units, cum, total)
        if endpoint == "user_course_activity":
            units.extend(e for e, _, _ in self._scan(period, course, ranges))
        else:  # user_activity: a learner is active when any enrollment is
            last = -1
            for _, learner, _ in self._scan(period, course, ranges):
                if learner != last:
                    units.append(learner)
                    last = learner
        return _Index(units, None, len(units))

    def _scan(
        self, period: Period, course: int | None, ranges: list[tuple[int, int]]
    ) -> Iterator[tuple[int, int, int]]:
        """Yield (enrollment, learner, item rows in period) for each enrollment active in it.

        O(1) per enrollment, whatever the number of its items: this is `_Enr.span` inlined,
        because it runs for every enrollment of every uncached query.
        """
        tab = self.enrollments
        f, t, y = period
        for lo, hi in ranges:
            for e, c, learner, day, g, n, lag in zip(
                range(lo, hi),
                tab.course[lo:hi],
                tab.learner[lo:hi],
                tab.day[lo:hi],
                tab.gap[lo:hi],
                tab.n[lo:hi],
                tab.lag[lo:hi],
                strict=True,
            ):
                if course is not None and c != course:
                    continue
                cut = t if not lag else min(t, y - lag)
                first = day + 1
                rows = 0
                if n and cut >= first:
                    j_lo = 0 if f <= first else (f - first + g - 1) // g
                    rows = max(0, min(n - 1, (cut - first) // g) - j_lo + 1)
                if rows or f <= day <= cut:
                    yield e, learner, rows

    def _index_paths(self, learners: range | list[int], period: Period) -> _Index:
        """Find each (learner, path) active in the period, as `learner * n_paths + path`."""
        tab = self.enrollments
        n_paths = len(self.paths)
        path_first = self._path_first
        units = array("q")
        for i in learners:
            lo, hi = tab.start[i], tab.start[i + 1]
            if not any(c in path_first for c in tab.course[lo:hi]):
                continue
            by_course = {tab.course[e]: e for e in range(lo, hi)}
            for p in sorted({p for c in by_course for p in path_first.get(c, ())}):
                enrs = self._path_enrollments(by_course, p, period)
                if any(enr.active(period.start) for enr in enrs):
                    units.append(i * n_paths + p)
        return _Index(units, None, len(units))

    def _path_enrollments(
        self, by_course: dict[int, int], p: int, period: Period
    ) -> list[EnrollmentView]:
        """The learner's enrollments in path `p`'s courses, first course first.

        Empty until the learner has (visibly) enrolled in the path's first course, which is
        what makes them a member of the path.
        """
        path = self.paths[p]
        first = self.view(by_course[path.courses[0]], period)
        if not first.visible():
            return []
        return [first] + [
            self.view(by_course[c], period) for c in path.courses[1:] if c in by_course
        ]

    # -- rendering ---------------------------------------------------------------------------
    def catalog_renderer(self, endpoint: str) -> Callable[[int], dict[str, Any]]:
        """The function rendering row `i` of a catalog endpoint."""
        return self.course_record if endpoint == "courses" else self.path_record

    def renderer(self, endpoint: str) -> Callable[[int, Period], dict[str, Any]]:
        """The function rendering one unit of an analytics endpoint (not user_progress)."""
        renderers: dict[str, Callable[[int, Period], dict[str, Any]]] = {
            "user_activity": self.render_activity,
            "user_course_activity": self.render_course_activity,
            "user_path_activity": self.render_path_activity,
        }
        return renderers[endpoint]

    def course_record(self, i: int) -> dict[str, Any]:
        """The `@all` record of catalog course `i` (by position, which is id order)."""
        return cat.course_record(self.courses[i], self._today0)

    def path_record(self, i: int) -> dict[str, Any]:
        """The `@all` record of learning path `i` (by position, which is id order)."""
        editors = [self.learner(a) for a in range(min(cat.ADMINS, self.params.learners))]
        return cat.path_record(self.paths[i], self.courses, editors, self._today0)

    def _user_fields(self, i: int) -> dict[str, Any]:
        learner = self.learner(i)
        return {
            "lms_user_id": learner.lms_user_id,
            "user_email": learner.email,
            "user_name": learner.name,
            "user_surname": learner.surname,
            "user_role": learner.role,
            "user_external_id": learner.external_id,
            "user_is_deactivated": learner.deactivated,
        }

    @staticmethod
    def _course_fields(course: cat.Course) -> dict[str, Any]:
        return {
            "course_id": course.id,
            "course_title": course.title,
            "course_category": course.category,
            "course_subcategory": course.subcategory,
        }

    def render_progress(self, enr: EnrollmentView, j: int) -> dict[str, Any]:
        """A user_progress row: item `j` of enrollment `enr`."""
        course = enr.course
        day, start, end = enr.item_times(j)
        ih = enr.item_hash(j)
        kind = course.kinds[j]
        result = None
        if kind == cat.KIND_QUIZ and end is not None:
            questions = 5 + (ih >> 40) % 11
            result = f"{questions - (ih >> 44) % (questions // 2 + 1)}/{questions}"
        return {
            "_class": "user_progress",
            "user_id": 10001 + enr.learner,
            **self._user_fields(enr.learner),
            **self._course_fields(course),
            "item_id": course.item_id(j),
            "item_type": cat.ITEM_TYPES[kind],
            "item_title": self.item_title(course.index, j),
            # Udemy sometimes cannot tell when an item was started.
            "item_start_time": None if (ih >> 50) % 50 == 0 else _ts(day, start),
            "item_completion_time": None if end is None else _ts(day, end),
            "item_completion_ratio": 100.0 if end is not None else enr.partial_ratio() / 100,
            "item_final_result": result,
            # The course's last access as recorded with this item (its own last touch), so
            # an item's row reads the same whichever period it is requested in.
            "course_last_accessed_date": _ts(day, start if end is None else end),
        }

    def render_course_activity(self, e: int, period: Period) -> dict[str, Any]:
        """A user_course_activity row: enrollment `e` aggregated over the period."""
        enr = self.view(e, period)
        course = enr.course
        last_day, last_sec = enr.last_time()
        completion = enr.completion_time()
        done = None if completion is None else _ts(*completion)
        start = None
        if enr.m:
            day, sec, _ = enr.item_times(0)
            start = _ts(day, sec)
        return {
            "_class": "user_course_activity",
            "user_id": 10001 + enr.learner,
            **self._user_fields(enr.learner),
            **self._course_fields(course),
            "course_duration": course.video_prefix[-1] / 100,
            "completion_ratio": round(enr.done() * 100 / len(course.kinds), 2),
            "num_video_consumed_minutes": enr.watched(*enr.span(period.start)) / 100,
            "course_enroll_date": _ts(enr.day, enr.enroll_sec()),
            "course_start_date": start,
            "course_completion_date": done,
            "course_first_completion_date": done,
            "course_last_accessed_date": _ts(last_day, last_sec),
            "last_activity_date": _day(last_day),
            "is_assigned": "Yes" if enr.assigned else "No",
            "assigned_by": self.learner(enr.assigned - 1).email if enr.assigned else None,
        }

    def render_activity(self, i: int, period: Period) -> dict[str, Any]:
        """A user_activity row: learner `i`'s activity summed over the period."""
        tab = self.enrollments
        f = period.start
        learner = self.learner(i)
        enrolled = assigned = started = completed = lectures = centi = 0
        web_days: set[int] = set()
        last: tuple[int, int] | None = None
        for e in range(tab.start[i], tab.start[i + 1]):
            enr = self.view(e, period)
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
                web_days.update(
                    range(enr.day + 1 + lo * enr.gap, enr.day + 2 + hi * enr.gap, enr.gap)
                )
            touch = enr.last_time()
            last = touch if last is None or touch > last else last
        return {
            "_class": "aggregate_organization_user_activity",
            "id": learner.user_id,
            **self._user_fields(i),
            "user_joined_date": _ts(learner.join_day, learner.join_sec),
            "report_date": _ts(period.end, 0),
            "num_new_enrolled_courses": enrolled,
            "num_new_assigned_courses": assigned,
            "num_new_started_courses": started,
            "num_completed_courses": completed,
            "num_completed_lectures": lectures,
            "num_video_consumed_minutes": centi / 100,
            "num_web_visited_days": len(web_days),
            "last_date_visit": None if last is None else _ts(*last),
        }

    def render_path_activity(self, unit: int, period: Period) -> dict[str, Any]:
        """A user_path_activity row: a learner's activity in one path's courses."""
        i, p = divmod(unit, len(self.paths))
        tab = self.enrollments
        path = self.paths[p]
        by_course = {tab.course[e]: e for e in range(tab.start[i], tab.start[i + 1])}
        enrs = self._path_enrollments(by_course, p, period)
        first = enrs[0]
        visible = [enr for enr in enrs if enr.visible()]
        finished = [c for c in (enr.completion_time() for enr in enrs) if c is not None]
        items = len(first.course.kinds) * len(path.courses)
        return {
            "_class": "user_path_activity",
            "user_id": 10001 + i,
            **self._user_fields(i),
            "path_id": path.id,
            "path_title": path.title,
            "is_pro_path": cat.is_pro_path(path),
            "is_private_path": (path.h >> 54) % 4 == 0,
            "completion_ratio": round(sum(enr.done() for enr in enrs) * 100 / items, 2),
            "path_enrolled_date": _ts(first.day, first.enroll_sec()),
            "path_consumed_minutes": sum(enr.watched(*enr.span(period.start)) for enr in enrs)
            / 100,
            "path_completion_date": (
                _ts(*max(finished)) if len(finished) == len(path.courses) else None
            ),
            "is_path_assigned": first.assigned > 0,
            "path_first_activity_date": _ts(*min((enr.day, enr.enroll_sec()) for enr in visible)),
            "path_last_activity_date": _ts(*max(enr.last_time() for enr in visible)),
        }
