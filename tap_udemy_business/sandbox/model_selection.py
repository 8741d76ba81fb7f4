"""Queries on the sandbox data: filters, their normalized form, and the rows they select.

A query is answered in two steps, so that a page of a million-row answer costs a page:

* `build_index` scans the enrollment columns once and keeps only the units (enrollments,
  learners, learner-path pairs) that have rows in the period, plus a prefix-count array for
  user_progress, whose units hold several rows (`array` module: a few bytes per unit);
* `Selection.rows(start, stop)` bisects to the first unit and renders only the rows asked for.

Nothing here caches: the portal keeps selections and rendered pages in its one page cache,
keyed by `Query`, the normalized form of a request's filters (`page_cache.py`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_udemy_business.sandbox.model import Dataset
    from tap_udemy_business.sandbox.model_activity import EnrollmentView, Period

#: The normalized course of a filter naming no catalog course: an empty result.
NO_SUCH_COURSE = -1
#: Bytes a selection costs besides its arrays (objects, the cache entry), for cache budgets.
_SELECTION_OVERHEAD = 512


@dataclass(frozen=True)
class Filters:
    """Request filters, as the API takes them (`from_date`, `to_date`, `course_id`, e-mail)."""

    from_date: date | None = None
    to_date: date | None = None
    course_id: int | None = None
    user_email: str | None = None


class Query(NamedTuple):
    """A query as the model answers it: equal queries have equal answers, whatever was sent.

    `Dataset.query` builds it from `Filters`: open or out-of-history dates become the days
    that can hold rows, `to_date` is capped at yesterday, a course id becomes its catalog
    index. `period` carries yesterday, so the portal's clock is part of the key; it is
    `None` for the catalog endpoints, whose records do not depend on the clock.
    """

    endpoint: str
    period: Period | None
    course: int | None
    email: str | None


class Index(NamedTuple):
    """What a query found: one unit per group of rows, plus cumulative row counts.

    Groups hold several rows only for user_progress (an enrollment's items); elsewhere every
    unit is one row and `cum` is None.
    """

    units: array[int]
    cum: array[int] | None
    total: int


_EMPTY = Index(array("q"), None, 0)


class Selection:
    """The result of one query: a row count and random access to its rows, rendered on demand.

    A selection is a snapshot for the clock at `select` time: advancing the clock later does
    not change it (a new `select` sees the new days).
    """

    def __init__(self, ds: Dataset, endpoint: str, period: Period | None, index: Index) -> None:
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

    @property
    def nbytes(self) -> int:
        """Memory the selection holds on to, roughly: what it costs the page cache to keep."""
        units, cum, _ = self._index
        held = units.itemsize * len(units)
        if cum is not None:
            held += cum.itemsize * len(cum)
        return held + _SELECTION_OVERHEAD

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


def build_index(ds: Dataset, query: Query) -> Index:
    """Find the units of `query` that have rows: one scan of the enrollment columns."""
    period = query.period
    if period is None:
        size = len(ds.courses) if query.endpoint == "courses" else len(ds.paths)
        return Index(array("q"), None, size)
    if period.start > period.end or query.course == NO_SUCH_COURSE:
        return _EMPTY
    tab = ds.enrollments
    if query.email is None:
        learners: range | list[int] = range(ds.params.learners)
        ranges = [(0, len(tab.course))]
    else:
        learners = ds.learners_by_email(query.email)
        ranges = [(tab.start[i], tab.start[i + 1]) for i in learners]
    if query.endpoint == "user_path_activity":
        return _index_paths(ds, learners, period)
    return _index_enrollments(ds, query.endpoint, period, query.course, ranges)


def _index_enrollments(
    ds: Dataset, endpoint: str, period: Period, course: int | None, ranges: list[tuple[int, int]]
) -> Index:
    """Index enrollment-based endpoints from one scan of the enrollment columns."""
    units = array("q")
    if endpoint == "user_progress":
        cum = array("q")
        total = 0
        for e, _, rows in _scan(ds, period, course, ranges):
            if rows:
                total += rows
                units.append(e)
                cum.append(total)
        return Index(units, cum, total)
    if endpoint == "user_course_activity":
        units.extend(e for e, _, _ in _scan(ds, period, course, ranges))
    else:  # user_activity: a learner is active when any enrollment is
        last = -1
        for _, learner, _ in _scan(ds, period, course, ranges):
            if learner != last:
                units.append(learner)
                last = learner
    return Index(units, None, len(units))


def _scan(
    ds: Dataset, period: Period, course: int | None, ranges: list[tuple[int, int]]
) -> Iterator[tuple[int, int, int]]:
    """Yield (enrollment, learner, item rows in period) for each enrollment active in it.

    O(1) per enrollment, whatever the number of its items: this is `EnrollmentView.span`
    inlined, because it runs for every enrollment of every query not in the page cache.
    """
    tab = ds.enrollments
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


def _index_paths(ds: Dataset, learners: range | list[int], period: Period) -> Index:
    """Find each (learner, path) active in the period, as `learner * n_paths + path`."""
    tab = ds.enrollments
    n_paths = len(ds.paths)
    path_first = ds.path_first
    units = array("q")
    for i in learners:
        lo, hi = tab.start[i], tab.start[i + 1]
        if not any(c in path_first for c in tab.course[lo:hi]):
            continue
        by_course = {tab.course[e]: e for e in range(lo, hi)}
        for p in sorted({p for c in by_course for p in path_first.get(c, ())}):
            enrs: list[EnrollmentView] = ds.path_enrollments(by_course, p, period)
            if any(enr.active(period.start) for enr in enrs):
                units.append(i * n_paths + p)
    return Index(units, None, len(units))
