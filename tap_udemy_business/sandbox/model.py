"""Deterministic, lazily generated data of the sandbox portal (see docs/sandbox-design.md).

Nothing here is random at request time and no result set is ever materialised:

* the catalog (courses, paths) is small and built once from the seed (`model_catalog`), and
  rendered as records by `model_catalog_records`;
* each learner's enrollments are derived from `(seed, learner)` and kept as a handful of compact
  integer columns (O(enrollments), a few bytes each), never as rows (`model_activity`);
* an enrollment's items are pure arithmetic: item `j` happens on `enroll_day + 1 + j * gap`, so the
  number of its rows inside a period is O(1) to count;
* a period's state is "as of its end day", and a late (offline-synced) enrollment is cut off
  `lag` days before yesterday: so a closed period reads the same forever once its lag has passed;
* a query (`Dataset.select`) keeps only the enrollments/learners that have rows plus a prefix-count
  array (`model_selection`), so `Selection.rows(start, stop)` is a bisect and renders only the
  rows asked for (`model_rows`). The model caches no query: the portal's page cache does.

Day numbers are `date.toordinal()` integers internally; rows carry ISO strings.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from tap_udemy_business.sandbox import model_catalog as cat
from tap_udemy_business.sandbox import model_catalog_records as records
from tap_udemy_business.sandbox import model_rows as rows
from tap_udemy_business.sandbox.dialects import DEFAULT_DIALECT, DIALECTS
from tap_udemy_business.sandbox.model_activity import (
    EnrollmentParams,
    Enrollments,
    EnrollmentView,
    Period,
)
from tap_udemy_business.sandbox.model_fields import CLASS_NAMES, ENDPOINTS, FIELD_SETS
from tap_udemy_business.sandbox.model_selection import (
    NO_SUCH_COURSE,
    Filters,
    Query,
    Selection,
    build_index,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CLASS_NAMES",
    "ENDPOINTS",
    "FIELD_SETS",
    "Dataset",
    "DatasetParams",
    "Filters",
    "Query",
    "Selection",
]

_BEFORE_HISTORY = 60  # admins joined before the history; nothing is older than this
_COURSE_FILTERED = frozenset({"user_course_activity", "user_progress"})


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
        #: The paths each course starts, by course index: who is in which path.
        self.path_first = {c: tuple(ps) for c, ps in path_first.items()}
        self._course_index = {c.id: c.index for c in self.courses}
        self.learner = lru_cache(maxsize=16384)(self._build_learner)
        self.item_title = lru_cache(maxsize=65536)(self._item_title)
        self._enrollments: Enrollments | None = None
        self._emails: dict[str, list[int]] | None = None

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
        return records.item_title(self.courses[course], j)

    # -- queries -----------------------------------------------------------------------------
    def query(self, endpoint: str, filters: Filters | None = None) -> Query:
        """The normalized form of a query: what the answer depends on, and nothing else.

        Two requests whose filters mean the same rows (a `from_date` long before the
        history, a `to_date` after yesterday) get equal queries, so they share one entry of
        the portal's page cache.
        """
        if endpoint not in CLASS_NAMES:
            msg = f"unknown endpoint {endpoint!r}"
            raise ValueError(msg)
        filters = filters or Filters()
        if endpoint in {"courses", "learning_paths"}:
            return Query(endpoint, None, None, None)
        with self._lock:
            y = self._today - 1
        # Open bounds cover the whole history; to_date never reaches today (daily refresh).
        f = self.history_start if filters.from_date is None else filters.from_date.toordinal()
        f = max(f, self.history_start - _BEFORE_HISTORY)  # nothing happens before
        t = y if filters.to_date is None else min(filters.to_date.toordinal(), y)
        course: int | None = None
        if endpoint in _COURSE_FILTERED and filters.course_id is not None:
            course = self._course_index.get(filters.course_id, NO_SUCH_COURSE)
        return Query(endpoint, Period(f, t, y), course, filters.user_email)

    def selection(self, query: Query) -> Selection:
        """Index the rows of a normalized query (a scan: callers cache the result)."""
        return Selection(self, query.endpoint, query.period, build_index(self, query))

    def select(self, endpoint: str, filters: Filters | None = None) -> Selection:
        """Index the rows of one endpoint for `filters` (not cached; rows rendered on demand)."""
        return self.selection(self.query(endpoint, filters))

    def path_enrollments(
        self, by_course: dict[int, int], p: int, period: Period
    ) -> list[EnrollmentView]:
        """The learner's enrollments in path `p`'s courses, first course first.

        Empty until the learner has (visibly) enrolled in the path's first course, which is
        what makes them a member of the path.

        Args:
            by_course: the learner's enrollments, by course index.
            p: the path's index.
            period: the period the enrollments are seen at the end of.

        Returns:
            The views of the path's courses the learner enrolled in.
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
        renderers: dict[str, Callable[[Dataset, int, Period], dict[str, Any]]] = {
            "user_activity": rows.activity_row,
            "user_course_activity": rows.course_activity_row,
            "user_path_activity": rows.path_activity_row,
        }
        return partial(renderers[endpoint], self)

    def render_progress(self, enr: EnrollmentView, j: int) -> dict[str, Any]:
        """A user_progress row: item `j` of enrollment `enr` (see `model_rows`)."""
        return rows.progress_row(self, enr, j)

    def course_record(self, i: int) -> dict[str, Any]:
        """The `@all` record of catalog course `i` (by position, which is id order)."""
        return records.course_record(self.courses[i], self._today0)

    def path_record(self, i: int) -> dict[str, Any]:
        """The `@all` record of learning path `i` (by position, which is id order)."""
        editors = [self.learner(a) for a in range(min(cat.ADMINS, self.params.learners))]
        return records.path_record(self.paths[i], self.courses, editors, self._today0)
