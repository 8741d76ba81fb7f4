"""The rate-limit grid: the tap against token buckets of every shape, one portal per row.

Each row is a portal limiting to R requests/s with a burst of B, answering 429 with
`Retry-After` in whole seconds (at least 1, as HTTP's delay-seconds must), and holding
about R x 2,000 user_progress rows: a run of about 20 s at the limit. The tap runs with
default settings. For each row: records/s, its share of R x page_size, the share of
requests answered 429 after the first few seconds (and overall), and peak RSS.

Two more shapes: a limit that halves a third of the way through and returns at two
thirds (its ideal is the schedule's integral over the run), and the throttled run with
32 requests in flight instead of 8 (memory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness import PAGE_SIZE, Row, Suite, open_portal

if TYPE_CHECKING:
    from collections.abc import Sequence

    from harness import Measurement

RATES = (2.0, 5.0, 8.0, 20.0, 50.0)
BURSTS = ("1", "2", "5", "R")
#: Seconds of work at the limit per row (the issue's "about 20 s": R x 2,000 rows).
SECONDS_AT_LIMIT = 20
#: user_progress rows per learner of the sandbox over 90 days (2,000 learners: 43,842 rows).
ROWS_PER_LEARNER = 21.9
#: The changing limit: (R, B), halved from a third of the run to two thirds.
CHANGING = ((20.0, 5), (50.0, 1))
TARGET_SHARE = 0.9
TARGET_CHANGING_SHARE = 0.85
TARGET_LATE_429 = 0.05
TARGET_RSS_MB = 100.0
SCENARIO = "limit"


@dataclass(frozen=True)
class Shape:
    """One token bucket: its rate, burst, and how its rate changes during the run."""

    rate: float
    burst: int
    schedule: tuple[tuple[float, float], ...] = ()
    concurrency: int | None = None

    @property
    def label(self) -> str:
        """The row's variant column."""
        text = f"R {self.rate:g}, B {self.burst}"
        if self.schedule:
            text += ", halved"
        if self.concurrency:
            text += f", {self.concurrency} in flight"
        return text

    def ideal_records(self, seconds: float) -> float:
        """Records the limit allows in `seconds`, in full pages: R x page_size x seconds.

        The initial burst is not counted (as in the issue's 0.9 x R x page_size); the
        schedule is counted from the run's start, so the tap's start-up counts against it.
        """
        changes = [(0.0, self.rate), *self.schedule]
        allowed = 0.0
        for (start, rps), (end, _) in zip(changes, [*changes[1:], (math.inf, 0.0)], strict=True):
            allowed += rps * max(0.0, min(seconds, end) - start)
        return allowed * PAGE_SIZE


def learners(rate: float) -> int:
    """Learners whose user_progress rows last about SECONDS_AT_LIMIT s at `rate` requests/s."""
    return max(10, round(rate * SECONDS_AT_LIMIT * PAGE_SIZE / ROWS_PER_LEARNER))


def grid() -> list[Shape]:
    """Every (R, B) of the issue, a burst above R counted once."""
    shapes: list[Shape] = []
    for rate in RATES:
        bursts = sorted({int(rate) if burst == "R" else int(burst) for burst in BURSTS})
        shapes.extend(Shape(rate, burst) for burst in bursts)
    return shapes


def changing() -> list[Shape]:
    """The limits that halve a third of the way through a run and return at two thirds."""
    third = SECONDS_AT_LIMIT / 3
    return [Shape(rate, burst, ((third, rate / 2), (2 * third, rate))) for rate, burst in CHANGING]


def _run(suite: Suite, shape: Shape) -> None:
    if not suite.wanted(shape.label + ","):
        return
    options: dict[str, Any] = {
        "rate_limit_rps": shape.rate,
        "rate_limit_burst": shape.burst,
        "rate_limit_schedule": shape.schedule,
    }
    settings: dict[str, Any] = {}
    if shape.concurrency:
        settings["max_concurrent_requests"] = shape.concurrency
    with open_portal(suite, learners=learners(shape.rate), warm_catalogs=(), **options) as portal:
        run = portal.run("tap", suite.clients.tap(portal, **settings), count_lines=False)
    suite.record(Row(SCENARIO, shape.label, portal.rows, [run], _note(shape, run)))
    suite.extra[shape.label] = shape


def _note(shape: Shape, run: Measurement) -> str:
    share = run.records / shape.ideal_records(run.wall)
    late_429 = _late_share(run)
    throttled = run.statuses.get("429", 0) / max(1, run.requests or 0)
    return (
        f"{share:.2f} x ideal; 429s {late_429:.1%} after 5 s ({throttled:.1%} of all "
        f"{run.requests or 0:,})"
    )


def scenario_rate_grid(suite: Suite) -> None:
    """Every (R, B) token bucket, whole-second Retry-After, default settings."""
    for shape in grid():
        _run(suite, shape)


def scenario_rate_change(suite: Suite) -> None:
    """Limits that halve and return; and a throttled run with 32 requests in flight."""
    for shape in changing():
        _run(suite, shape)
    _run(suite, Shape(20.0, 5, concurrency=32))


def targets(suite: Suite) -> list[str]:
    """PASS/FAIL per target of the grid, each naming its worst row."""
    rows = [row for row in suite.rows if row.scenario == SCENARIO]
    if not rows:
        return []
    shares = [(_share(suite, row), row) for row in rows]
    lines = []
    steady = [(share, row) for share, row in shares if not suite.extra[row.variant].schedule]
    halved = [(share, row) for share, row in shares if suite.extra[row.variant].schedule]
    for group, goal, what in (
        (steady, TARGET_SHARE, "every steady limit"),
        (halved, TARGET_CHANGING_SHARE, "a limit halved and restored"),
    ):
        if group:
            worst, row = min(group, key=lambda pair: pair[0])
            lines.append(
                f"{_verdict(worst >= goal)}  {what}: worst {worst:.2f} x the ideal records/s "
                f"({row.variant}; target >= {goal} x; {len(group)} shapes)"
            )
    late = [(_late_share(row.median), row) for row in rows]
    worst_late, row = max(late, key=lambda pair: pair[0])
    lines.append(
        f"{_verdict(worst_late < TARGET_LATE_429)}  429s after the first 5 s: at most "
        f"{worst_late:.1%} of requests ({row.variant}; target < {TARGET_LATE_429:.0%})"
    )
    peak, row = max(((r.median.rss_mb, r) for r in rows), key=lambda pair: pair[0])
    lines.append(
        f"{_verdict(peak <= TARGET_RSS_MB)}  peak RSS while throttled: {peak:.1f} MB at most "
        f"({row.variant}; target <= {TARGET_RSS_MB:g} MB)"
    )
    return lines


def _share(suite: Suite, row: Row) -> float:
    run = row.median
    shape: Shape = suite.extra[row.variant]
    if run.returncode != 0 or run.records != row.rows:
        return 0.0
    return run.records / shape.ideal_records(run.wall)


def _late_share(run: Measurement) -> float:
    late = run.limit.get("late_requests") or 0
    return (run.limit.get("late_throttled") or 0) / late if late else 0.0


def _verdict(ok: bool) -> str:  # noqa: FBT001 - a plain predicate
    return "PASS" if ok else "FAIL"


SCENARIOS = {"rate_grid": scenario_rate_grid, "rate_change": scenario_rate_change}
__all__: Sequence[str] = ("SCENARIOS", "targets")
