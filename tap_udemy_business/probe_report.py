"""What the probe found, judged against the tap's assumptions, as text or JSON.

Split from `probe.py` so the judging is pure: it reads pages already fetched and never
talks to the API. Everything here reports names, JSON types and counts only, never a
record's value, so the report can be pasted into an issue as it is.
"""

from __future__ import annotations

import json
import typing as t
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from tap_udemy_business.keys import ANONYMIZED_EMAIL, LearnerKeys
from tap_udemy_business.records import json_type
from tap_udemy_business.reporting import ReportingStream
from tap_udemy_business.settings import declared_types

if t.TYPE_CHECKING:
    from tap_udemy_business.client import UdemyStream
    from tap_udemy_business.records import Record

HOLDS, FAILS, UNKNOWN = "holds", "does not hold", "unknown"
#: Rows a page holds when `page_size` is ignored: only a longer list can show it is honoured.
API_DEFAULT_PAGE_SIZE = 12
#: A difference of clocks the tap's "yesterday" tolerates.
MAX_CLOCK_HOURS = 24.0


@dataclass
class RequestInfo:
    """One request of an endpoint: the parameter names sent and the fields that came back."""

    parameters: list[str]
    status: int | None
    #: Distinct fields on the page; None when the request failed.
    fields_received: int | None = None


@dataclass
class LearnerRows:
    """Who learner rows are about, counted: what `learner_key` can be built from."""

    rows: int
    with_user_id: int
    anonymized: int
    key_forms: dict[str, int]


@dataclass
class EndpointReport:
    """One endpoint's first page, compared with its stream's schema and key."""

    stream: str
    path: str
    guessed_class: str
    outcome: str = "read"  # or "not available", "failed"
    status: int | None = None
    error: str | None = None
    envelope_ok: bool | None = None
    requests: list[RequestInfo] = field(default_factory=list)
    count: int | None = None
    records: int = 0
    has_next: bool = False
    page_size_honoured: bool | None = None
    classes: dict[str, int] = field(default_factory=dict)
    class_matches_guess: bool | None = None
    fields_gained: list[str] = field(default_factory=list)
    fields: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    type_differences: dict[str, dict[str, int]] = field(default_factory=dict)
    key_fields: dict[str, int] = field(default_factory=dict)
    learner: LearnerRows | None = None


@dataclass
class Bounds:
    """Whether `from_date`/`to_date` include both ends, from three counts of two days."""

    stream: str | None
    counts: dict[str, int] = field(default_factory=dict)
    verdict: str = "undetermined"
    reason: str | None = None


@dataclass
class Assumption:
    """One assumption of the tap, whether this portal meets it, and what that means."""

    name: str
    status: str
    meaning: str


@dataclass
class Report:
    """Everything the probe found."""

    requests_made: int
    max_requests: int
    endpoints: list[EndpointReport]
    bounds: Bounds
    clock_offset_hours: float | None
    rate_limit_headers: list[str]
    assumptions: list[Assumption] = field(default_factory=list)


def analyse(report: EndpointReport, stream: UdemyStream, pages: list[list[Record]]) -> None:
    """Fill `report` from the records of each request (the last one is the fullest)."""
    for info, records in zip(report.requests, pages, strict=False):  # a failed one is last
        info.fields_received = len({name for record in records for name in record})
    if len(pages) > 1:
        first = {name for record in pages[0] for name in record}
        report.fields_gained = sorted({name for r in pages[-1] for name in r} - first)
    records = pages[-1]
    report.records = len(records)
    classes = Counter(_class_name(record.get("_class")) for record in records)
    report.classes = dict(sorted(classes.items()))
    if classes:
        report.class_matches_guess = set(classes) == {report.guessed_class}
    if report.count:
        expected = min(100, report.count)
        report.page_size_honoured = report.records == expected and (
            report.has_next or report.count <= report.records
        )
    report.fields = _field_types(records)
    if records:
        _compare_with_schema(report, stream, records)
        _check_keys(report, stream, records)


def _class_name(value: t.Any) -> str:
    return value if isinstance(value, str) else f"<{json_type(value)}>"


def _field_types(records: list[Record]) -> dict[str, dict[str, int]]:
    seen: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        for name, value in record.items():
            seen[name][json_type(value)] += 1
    return {name: dict(sorted(kinds.items())) for name, kinds in sorted(seen.items())}


def _compare_with_schema(report: EndpointReport, stream: UdemyStream, rows: list[Record]) -> None:
    """Missing, extra and ill-typed fields: what the tap would null, fold away or set aside."""
    properties: dict[str, t.Any] = stream.schema["properties"]
    sent = set(report.fields)
    report.missing = sorted(set(properties) - stream.tap_added_fields - sent)
    report.extra = sorted(sent - set(properties))
    differences: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for name in sorted(sent & set(properties)):
        allowed = declared_types(properties[name])
        for record in rows:
            if name in record and not _fits(allowed, record[name]):
                differences[name][json_type(record[name])] += 1
    report.type_differences = {name: dict(kinds) for name, kinds in differences.items()}


def _fits(allowed: set[str], value: t.Any) -> bool:
    """Whether JSON Schema's `type` accepts the value (5.0 is an integer, 5 a number)."""
    kind = json_type(value)
    if kind in allowed:
        return True
    if kind == "integer":
        return "number" in allowed
    return kind == "number" and "integer" in allowed and float(value).is_integer()


def _check_keys(report: EndpointReport, stream: UdemyStream, rows: list[Record]) -> None:
    """Rows lacking each field the key is built from; who the learner rows are about."""
    names = [name for name in stream.primary_keys if name not in stream.tap_added_fields]
    if isinstance(stream, ReportingStream):
        names.append("user_email")
        keys = LearnerKeys((), stream.learner_facts)
        forms = Counter(keys.learner(row, "window").partition(":")[0] for row in rows)
        report.learner = LearnerRows(
            rows=len(rows),
            with_user_id=sum(row.get("user_id") is not None for row in rows),
            anonymized=sum(row.get("user_email") == ANONYMIZED_EMAIL for row in rows),
            key_forms={form: forms[form] for form in ("e", "u", "a")},
        )
    report.key_fields = {name: sum(row.get(name) is None for row in rows) for name in names}


def judge_bounds(stream: str, first: int, second: int, both: int) -> Bounds:
    """Inclusive if two single days add up to the two-day window (and are not both empty)."""
    counts = {"[D, D]": first, "[D+1, D+1]": second, "[D, D+1]": both}
    if (first or second) and first + second == both:
        return Bounds(stream, counts, "inclusive at both ends")
    if not first and not second and both:
        return Bounds(stream, counts, "one end exclusive")
    if not (first or second or both):
        return Bounds(stream, counts, reason="no activity on those days")
    return Bounds(stream, counts, reason="the counts add up to neither reading")


def assess(report: Report) -> list[Assumption]:
    """The tap's assumptions, each judged on what the probe saw."""
    read = [e for e in report.endpoints if e.outcome == "read"]
    return [
        _envelope(report.endpoints),
        _classes(read),
        _keys(read),
        _types(read),
        _page_size(read),
        _inclusive(report.bounds),
        _clock(report.clock_offset_hours),
    ]


def _names(endpoints: list[EndpointReport]) -> str:
    return ", ".join(e.stream for e in endpoints)


def _envelope(endpoints: list[EndpointReport]) -> Assumption:
    name = "the list envelope {count, next, previous, results}"
    broken = [e for e in endpoints if e.envelope_ok is False]
    if broken:
        return Assumption(name, FAILS, f"the tap stops on {_names(broken)}: see its error above")
    if any(e.envelope_ok for e in endpoints):
        return Assumption(name, HOLDS, "every page parses as the tap expects")
    return Assumption(name, UNKNOWN, "no page was read")


def _classes(read: list[EndpointReport]) -> Assumption:
    name = "_class equals the tap's guess"
    off = [e for e in read if e.class_matches_guess is False]
    if off:
        meaning = f"the tap learns it: one extra request per endpoint ({_names(off)})"
        return Assumption(name, FAILS, meaning)
    if any(e.class_matches_guess for e in read):
        return Assumption(name, HOLDS, "fields[<guess>] asks for every field at once")
    return Assumption(name, UNKNOWN, "no records to tell")


def _keys(read: list[EndpointReport]) -> Assumption:
    name = "key fields present"
    stops = [e for e in read if any(n for k, n in e.key_fields.items() if k != "user_email")]
    no_email = [e for e in read if e.key_fields.get("user_email")]
    problems = [f"the tap stops on {_names(stops)}"] if stops else []
    if no_email:
        problems.append(f"learner_key falls back to user_id or row facts ({_names(no_email)})")
    if problems:
        return Assumption(name, FAILS, "; ".join(problems))
    if any(e.key_fields for e in read):
        return Assumption(name, HOLDS, "every row can be keyed")
    return Assumption(name, UNKNOWN, "no records to tell")


def _types(read: list[EndpointReport]) -> Assumption:
    name = "value types fit the schemas"
    off = [e for e in read if e.type_differences]
    if off:
        meaning = f"values set aside in undocumented_fields with a warning ({_names(off)})"
        return Assumption(name, FAILS, meaning)
    if any(e.records for e in read):
        return Assumption(name, HOLDS, "every value is emitted in its column")
    return Assumption(name, UNKNOWN, "no records to tell")


def _page_size(read: list[EndpointReport]) -> Assumption:
    name = "page_size=100 honoured"
    off = [e for e in read if e.page_size_honoured is False]
    if off:
        meaning = f"more, smaller pages: more requests, nothing lost ({_names(off)})"
        return Assumption(name, FAILS, meaning)
    if any(e.page_size_honoured and (e.count or 0) > API_DEFAULT_PAGE_SIZE for e in read):
        return Assumption(name, HOLDS, "100 rows a request")
    meaning = f"no list held more than the API's default {API_DEFAULT_PAGE_SIZE} rows"
    return Assumption(name, UNKNOWN, meaning)


def _inclusive(bounds: Bounds) -> Assumption:
    name = "from_date/to_date inclusive"
    if bounds.verdict == "inclusive at both ends":
        return Assumption(name, HOLDS, "a day's window holds that day: no row lost or doubled")
    if bounds.verdict == "one end exclusive":
        return Assumption(name, FAILS, "one-day windows come back empty: rows lost")
    return Assumption(name, UNKNOWN, f"{bounds.reason}; the tap assumes both ends inclusive")


def _clock(offset: float | None) -> Assumption:
    name = "the API's date within a day of this machine's"
    if offset is None:
        return Assumption(name, UNKNOWN, "no Date header: the tap uses this machine's clock")
    if abs(offset) <= MAX_CLOCK_HOURS:
        return Assumption(name, HOLDS, "'yesterday' is the same day on both clocks")
    meaning = (
        "the tap does not trust it and reads up to this machine's yesterday (a portal on "
        "loopback declaring a simulated calendar, the sandbox, excepted): check both clocks"
    )
    return Assumption(name, FAILS, meaning)


def render_json(report: Report) -> str:
    """The report as indented JSON, for scripts and issues."""
    return json.dumps(asdict(report), indent=2)


def render_text(report: Report) -> str:
    """The report for a person: one block per endpoint, then bounds, clock and verdicts."""
    lines = [
        "Udemy Business API probe: names, JSON types and counts only",
        (
            f"{report.requests_made} requests (at most {report.max_requests}); reporting "
            "endpoints read for the 30 days up to yesterday by the API's clock"
        ),
    ]
    for endpoint in report.endpoints:
        lines += ["", *_endpoint_lines(endpoint)]
    lines += ["", *_bounds_lines(report.bounds), "", *_clock_lines(report)]
    lines += ["", "== the tap's assumptions =="]
    lines += [f"{a.status:<15}{a.name}: {a.meaning}" for a in report.assumptions]
    return "\n".join(lines)


def _endpoint_lines(e: EndpointReport) -> list[str]:
    lines = [f"== {e.stream} ({e.path}) =="]
    if e.outcome != "read":
        return [*lines, f"HTTP {e.status or '-'}: {e.outcome} ({e.error})"]
    lines += [
        (
            f"HTTP {e.status}; count {e.count}; {e.records} records on the page; next link: "
            f"{_yes(e.has_next)}; page_size=100 honoured: {_yes(e.page_size_honoured)}"
        ),
        f"_class: {_counts(e.classes)}; the tap's guess '{e.guessed_class}': "
        + {True: "equal", False: "differs", None: "no records to tell"}[e.class_matches_guess],
    ]
    for number, info in enumerate(e.requests, 1):
        received = "failed" if info.fields_received is None else f"{info.fields_received} fields"
        lines.append(
            f"request {number}: HTTP {info.status or '-'}, sent {', '.join(info.parameters)}: "
            + received
        )
    if e.error:
        lines.append(f"note: {e.error}")
    if e.fields_gained:
        lines.append(f"fields only the second request got: {', '.join(e.fields_gained)}")
    lines.append(f"fields seen ({len(e.fields)}), JSON type: rows")
    lines += [f"  {name:<32}{_counts(kinds)}" for name, kinds in e.fields.items()]
    return lines + _comparison_lines(e)


def _comparison_lines(e: EndpointReport) -> list[str]:
    if not e.records:
        return ["no records to compare with the schema"]
    lines = [
        f"missing (in the schema, never sent): {_list(e.missing)}",
        f"extra (not in the schema, kept in undocumented_fields): {_list(e.extra)}",
        "type differences (not allowed by the schema): "
        + _list([f"{name} {_counts(kinds)}" for name, kinds in e.type_differences.items()]),
        "key fields, rows lacking each: "
        + ", ".join(f"{name} {lacking}" for name, lacking in e.key_fields.items()),
    ]
    if e.learner is not None:
        rows = e.learner
        lines.append(
            f"learner rows {rows.rows}: learner id (user_id) on {rows.with_user_id}, "
            f"anonymized {rows.anonymized}; learner_key forms {_counts(rows.key_forms, ':')}"
        )
    return lines


def _bounds_lines(bounds: Bounds) -> list[str]:
    lines = ["== from_date/to_date bounds (page_size=1; D = the day before yesterday) =="]
    if bounds.stream is None:
        return [*lines, f"undetermined: {bounds.reason}"]
    counts = ", ".join(f"{window} count {count}" for window, count in bounds.counts.items())
    verdict = bounds.verdict + (f" ({bounds.reason})" if bounds.reason else "")
    return [*lines, f"{bounds.stream}: {counts or 'no counts'}: {verdict}"]


def _clock_lines(report: Report) -> list[str]:
    offset = report.clock_offset_hours
    clock = "no Date header" if offset is None else f"{offset:+.1f} h"
    return [
        f"the API's Date header minus this machine's clock: {clock}",
        f"rate-limit headers seen: {_list(report.rate_limit_headers)}",
    ]


def _yes(value: bool | None) -> str:  # noqa: FBT001 - a tri-state to print
    return {True: "yes", False: "no", None: "unknown"}[value]


def _counts(counts: t.Mapping[str, int], separator: str = " ") -> str:
    return ", ".join(f"{name}{separator}{count}" for name, count in counts.items()) or "none"


def _list(names: t.Sequence[str]) -> str:
    return ", ".join(names) or "none"
