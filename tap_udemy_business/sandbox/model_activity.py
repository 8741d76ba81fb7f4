"""Learners' enrollments and their arithmetic: the time-dependent half of the sandbox data.

An enrollment is a handful of integers derived from `(seed, learner, k)`: course, enroll day, gap
between items, items started, finished or not, reporting lag, assignment. Its items are never
stored: item `j` happens on `enroll day + 1 + j * gap`, so everything about a period (which items
fall in it, minutes watched, completions) is O(1) arithmetic on those integers.
"""

from __future__ import annotations

import itertools
from array import array
from typing import TYPE_CHECKING, NamedTuple

from tap_udemy_business.sandbox import model_catalog as cat

if TYPE_CHECKING:
    from collections.abc import Callable

# Enrollment outcomes, as fractions of 128 (7 bits of the enrollment's hash).
_FINISH_OF_128 = 49  # ~38 % finish the course
_NEVER_START_OF_128 = 13  # ~10 % of the rest enroll and never start
_ASSIGNED_OF_128 = 38  # ~30 % were assigned by an admin
_PATH_START_OF_128 = 32  # ~25 % of learners start with a learning path's first course
_PATH_FINISH_OF_128 = 96  # ~75 % of path courses are finished
_PATH_ASSIGNED_OF_128 = 77  # ~60 % of path starts were assigned by an admin


class EnrollmentParams(NamedTuple):
    """The dataset sizes enrollments depend on."""

    learners: int
    courses: int
    items_per_course: int
    max_enrollments: int
    late_ratio: float


class Period(NamedTuple):
    """An analytics period as day ordinals, with the yesterday it was computed for.

    Yesterday matters because late (offline-synced) enrollments are cut off earlier than the
    period's end until their lag has passed.
    """

    start: int
    end: int
    yesterday: int


class Enrollments:
    """Compact per-enrollment columns for all learners, in row order (learner, enrollment).

    Derived from `(seed, learner)` only; about 40 bytes per enrollment, whatever the period, so
    a query scans arrays instead of re-hashing every learner.
    """

    def __init__(
        self,
        params: EnrollmentParams,
        base: int,
        history_start: int,
        join_day: Callable[[int], int],
        paths: tuple[tuple[int, ...], ...],
    ) -> None:
        """Derive every learner's enrollments (one hash per learner and per enrollment).

        `paths` are the learning paths' course indices: some learners start on a path and
        most then follow it, so path activity is not a rare coincidence.
        """
        self.start = array("q", [0])  # learner i's enrollments are start[i]:start[i + 1]
        self.learner = array("l")
        self.course = array("l")
        self.day = array("l")  # enroll day (ordinal)
        self.gap = array("b")  # days between items
        self.n = array("l")  # items started (the last one partial unless finished)
        self.fin = array("b")  # finished the course
        self.lag = array("b")  # days late its activity becomes visible (0 for most)
        self.assigned = array("b")  # 0 = self-enrolled, else 1 + index of the assigning admin
        self.h = array("Q")  # per-enrollment hash, for render-time details (times, scores)
        self._params = params
        self._base = base
        self._paths = paths
        self._next_in_path: dict[int, int] = {}
        for path in paths:
            for a, b in itertools.pairwise(path):
                self._next_in_path.setdefault(a, b)
        self._late_cut = int(params.late_ratio * 1024)
        self._admins = min(cat.ADMINS, params.learners)
        for i in range(params.learners):
            # First enrollment the day after joining at the earliest (no activity predates it).
            self._add_learner(i, max(join_day(i) + 1, history_start))
            self.start.append(len(self.course))

    def _follow_path(self, chosen: list[int], h: int) -> int:
        """Most of the time, the next course of a path the last course is on; else -1."""
        if not chosen or not h & 3:
            return -1
        c = self._next_in_path.get(chosen[-1], -1)
        return -1 if c in chosen else c

    def _popular_course(self, chosen: list[int], h: int) -> int:
        """A course not chosen yet, skewed towards the first courses of the catalog.

        The density falls 2:1 across the catalog: some courses are popular, none is empty.
        """
        n_courses = self._params.courses
        u = (h >> 2) & 0xFFFF
        c = (u * (u + 0x10000) * n_courses) // (3 << 32) % n_courses
        while c in chosen:
            c = (c + 1) % n_courses
        return c

    def _add_learner(self, i: int, day: int) -> None:
        """Append learner `i`'s enrollments, in the order they happened, from `day` on."""
        p = self._params
        h0 = cat.hash_of(self._base, cat.SALT_LEARNER, i, 1)
        count = min(1 + h0 % p.max_enrollments, p.courses)
        day += (h0 >> 20) % 8
        path: tuple[int, ...] = ()
        if self._paths and ((h0 >> 24) & 0x7F) < _PATH_START_OF_128:
            path = self._paths[(h0 >> 31) % len(self._paths)]  # this learner joins a path
            count = max(count, min(p.max_enrollments, len(path)))
        chosen: list[int] = []
        for k in range(count):
            h = cat.hash_of(self._base, cat.SALT_ENROLL, i, k)
            c = path[0] if path and not k else self._follow_path(chosen, h)
            on_path = c >= 0  # learners on a path are keener: they finish more, and faster
            if c < 0:
                c = self._popular_course(chosen, h)
            chosen.append(c)
            if k:
                day += 1 + ((h >> 18) & 0xFF) % 21
            fin = ((h >> 28) & 0x7F) < (_PATH_FINISH_OF_128 if on_path else _FINISH_OF_128)
            if fin:
                n = p.items_per_course
            elif ((h >> 35) & 0x7F) < _NEVER_START_OF_128:
                n = 0
            else:
                n = 1 + ((h >> 42) & 0x3FF) % p.items_per_course
            h2 = cat.mix(h)
            self.learner.append(i)
            self.course.append(c)
            self.day.append(day)
            self.gap.append(1 + ((h >> 26) & (1 if on_path else 3)))
            self.n.append(n)
            self.fin.append(fin)
            self.lag.append(1 + ((h >> 62) & 1) if ((h >> 52) & 0x3FF) < self._late_cut else 0)
            assigned_cut = _PATH_ASSIGNED_OF_128 if on_path and not k else _ASSIGNED_OF_128
            self.assigned.append(1 + (h2 >> 7) % self._admins if (h2 & 0x7F) < assigned_cut else 0)
            self.h.append(h2)


class EnrollmentView:
    """One enrollment seen at the end of a period: the arithmetic every renderer shares."""

    __slots__ = ("assigned", "course", "cut", "day", "fin", "gap", "h", "lag", "learner", "m", "n")

    def __init__(
        self, tab: Enrollments, courses: tuple[cat.Course, ...], e: int, period: Period
    ) -> None:
        """Read the enrollment's columns and place its cutoff and progress in the period."""
        self.learner = tab.learner[e]
        self.course = courses[tab.course[e]]
        self.day = tab.day[e]
        self.gap = tab.gap[e]
        self.n = tab.n[e]
        self.fin = tab.fin[e]
        self.lag = tab.lag[e]
        self.assigned = tab.assigned[e]
        self.h = tab.h[e]
        # Late enrollments are visible `lag` days after the fact: their cutoff is earlier.
        end = period.end
        self.cut = end if not self.lag else min(end, period.yesterday - self.lag)
        # m = items started by the cutoff (item j happens on day + 1 + j * gap)
        started = (self.cut - self.day - 1) // self.gap + 1
        self.m = 0 if self.cut <= self.day else min(self.n, started)

    def visible(self) -> bool:
        """Whether the enrollment itself has happened (and synced) by the cutoff."""
        return self.day <= self.cut

    def span(self, f: int) -> tuple[int, int]:
        """Item indices [lo, hi] whose day lies in [f, cut] (hi < lo when none)."""
        first = self.day + 1
        lo = 0 if f <= first else (f - first + self.gap - 1) // self.gap
        return lo, self.m - 1

    def active(self, f: int) -> bool:
        """Any activity (the enrollment or an item) in [f, cut]."""
        lo, hi = self.span(f)
        return hi >= lo or f <= self.day <= self.cut

    def completed(self, j: int) -> bool:
        """Whether item `j` (once started) is completed: all but the stopping item."""
        return bool(self.fin) or j < self.n - 1

    def done(self) -> int:
        """Completed items as of the cutoff."""
        return self.m if self.fin else max(0, min(self.m, self.n - 1))

    def watched(self, lo: int, hi: int) -> int:
        """Centi-minutes of video watched on items lo..hi (the stopping item only in part)."""
        if hi < lo:
            return 0
        prefix = self.course.video_prefix
        total = prefix[hi + 1] - prefix[lo]
        if not self.fin and hi == self.n - 1:
            full = self.course.durations[hi]
            total += full * self.partial_ratio() // 10000 - full
        return total

    def completed_lectures(self, lo: int, hi: int) -> int:
        """Completed non-quiz items among lo..hi (quizzes are items 4, 9, 14, ...)."""
        hi = hi if self.fin else min(hi, self.n - 2)
        if hi < lo:
            return 0
        return (hi - lo + 1) - ((hi + 1) // 5 - lo // 5)

    def partial_ratio(self) -> int:
        """Completion of the stopping item, in hundredths of a percent (5.00-94.99 %)."""
        return 500 + (self.h >> 16) % 9000

    def item_hash(self, j: int) -> int:
        """Hash of item `j` of this enrollment (times, quiz score, missing start time)."""
        return cat.mix(self.h ^ (j + 1))

    def item_times(self, j: int) -> tuple[int, int, int | None]:
        """(day, start second, completion second or None): completion is the same day."""
        ih = self.item_hash(j)
        start = 18000 + ih % 54000  # 05:00-20:00, so even a long video ends the same day
        if not self.completed(j):
            return self.day + 1 + j * self.gap, start, None
        kind = self.course.kinds[j]
        if kind == cat.KIND_VIDEO:
            spent = self.course.durations[j] * 60 // 100 + (ih >> 20) % 240
        elif kind == cat.KIND_QUIZ:
            spent = 240 + (ih >> 20) % 900
        else:
            spent = 60 + (ih >> 20) % 600
        return self.day + 1 + j * self.gap, start, start + spent

    def enroll_sec(self) -> int:
        """Second of the day the learner enrolled (07:00-19:00)."""
        return 25200 + (self.h >> 32) % 43200

    def last_time(self) -> tuple[int, int]:
        """(day, second) of the learner's last touch of the course as of the cutoff."""
        if not self.m:
            return self.day, self.enroll_sec()
        day, start, end = self.item_times(self.m - 1)
        return day, start if end is None else end

    def completion_time(self) -> tuple[int, int] | None:
        """(day, second) the course was completed, if it was by the cutoff."""
        if not self.fin or self.m < self.n:
            return None
        day, start, end = self.item_times(self.n - 1)
        return day, start if end is None else end
