"""Record shapes ("dialects"): the same data, shaped as each source says the API sends it.

The sandbox was written from the same assumptions as the tap, so serving only its own shape
would prove only that the two agree. `../shared/reference/api-evidence.md` lists what the
2018 guide and two connectors built from real portals' responses show; a dialect reshapes
the model's full (`@all`) records into one of those shapes:

* `sandbox`: the model's own shape (learner ids on every learner row, `is_assigned` "Yes"/"No");
* `guide`: the 2018 tables as written: no learner id anywhere, `id` and `report_date` on
  user activity, `is_assigned` "Yes"/"No", quiz results as strings such as "4/5";
* `observed`: the real-response schemas: user activity without `id` and `report_date`, a
  learner id on user course activity only, boolean `is_assigned`, numeric quiz results, the
  extra fields those schemas list, and `_class` names the tap cannot guess.

In every dialect numbers are integers on some rows and decimals on others (a whole value is
sent as `30`, not `30.0`), and learner rows carry a field no source documents.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

Record = dict[str, Any]

#: The `_class` the model renders, which the tap also guesses.
SANDBOX_CLASSES: Final[dict[str, str]] = {
    "courses": "course",
    "learning_paths": "learning_path",
    "user_activity": "aggregate_organization_user_activity",
    "user_course_activity": "user_course_activity",
    "user_progress": "user_progress",
    "user_path_activity": "user_path_activity",
}
#: Numeric fields whose whole values are sent as integers, fractional ones as decimals.
_NUMBERS: Final = (
    "num_video_consumed_minutes",
    "course_duration",
    "completion_ratio",
    "item_completion_ratio",
    "path_consumed_minutes",
)
#: A field on every learner row that no source documents, so tolerance is always tested.
UNKNOWN_FIELD: Final = "user_timezone"
_TIMEZONES: Final = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", None)
_LEARNER_ENDPOINTS: Final = frozenset(
    {"user_activity", "user_course_activity", "user_progress", "user_path_activity"}
)


def _stable(*parts: object) -> int:
    """A deterministic hash of a record's values (Python's `hash` varies between runs)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def _quiz_score(result: object) -> object:
    """A quiz result such as "4/5" as real portals type it: a number (the percentage)."""
    if not isinstance(result, str) or "/" not in result:
        return result
    right, _, total = result.partition("/")
    return round(int(right) * 100 / int(total), 2)


def _course_extras(record: Record) -> Record:
    h = _stable(record["id"])
    locale = str(record.get("locale") or "en_US")
    return {
        "primary_category": (record.get("categories") or [None])[0],
        "primary_subcategory": None if h % 5 == 0 else f"Subcategory {h % 17}",
        "num_practice_tests": h % 3,
        "is_practice_test_course": h % 23 == 0,
        "has_closed_caption": h % 4 != 0,
        "caption_languages": [] if h % 4 == 0 else ["English", "Español"][: 1 + h % 2],
        "caption_locales": [] if h % 4 == 0 else [{"locale": locale, "title": "English"}],
        "estimated_content_length_video": record.get("estimated_content_length"),
        "xapi_activity_id": f"https://www.udemy.com/course/{record['id']}/",
        "mobile_native_deeplink": f"udemy://course?id={record['id']}",
    }


def _activity_extras(record: Record) -> Record:
    return {"num_completed_quizzes": _stable(record["user_email"], record["report_date"]) % 3}


def _progress_extras(record: Record) -> Record:
    done = record.get("item_completion_time") is not None
    ratio = record.get("item_completion_ratio") or 0
    return {
        "item_views": 1 + _stable(record["item_id"], record["user_id"]) % 4,
        "item_marked_complete": done and ratio < 100,  # noqa: PLR2004 - a percentage
    }


@dataclass(frozen=True)
class Dialect:
    """How one source shapes each endpoint's records."""

    name: str
    #: `_class` per endpoint; the `fields[<class>]` key the portal listens to.
    classes: Mapping[str, str] = field(default_factory=lambda: SANDBOX_CLASSES)
    #: Fields this source does not send, per endpoint.
    dropped: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Fields this source sends and the model lacks: name -> value from the full record.
    extras: Mapping[str, Callable[[Record], Record]] = field(default_factory=dict)
    #: Extra field names per endpoint (to list them in the field sets).
    extra_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Values this source types differently: field -> conversion, per endpoint.
    converted: Mapping[str, Mapping[str, Callable[[Any], Any]]] = field(default_factory=dict)

    def shape(self, endpoint: str, record: Record) -> Record:
        """The full record (`@all`) as this source sends it; `record` is not changed."""
        out = dict(record)
        if endpoint in self.extras:
            out.update(self.extras[endpoint](record))
        for name in self.dropped.get(endpoint, ()):
            out.pop(name, None)
        for name, convert in self.converted.get(endpoint, {}).items():
            if name in out:
                out[name] = convert(out[name])
        for name in _NUMBERS:
            value = out.get(name)
            if isinstance(value, float) and value.is_integer():
                out[name] = int(value)
        if endpoint in _LEARNER_ENDPOINTS:
            out[UNKNOWN_FIELD] = _TIMEZONES[_stable(out.get("user_email")) % len(_TIMEZONES)]
        out["_class"] = self.classes[endpoint]
        return out

    def fields(self, endpoint: str, names: list[str], *, minimal: bool = False) -> list[str]:
        """A field set of the model for `endpoint`, as this source names its fields.

        `minimal` (the `@min` set) adds none of the source's extra fields.
        """
        dropped = self.dropped.get(endpoint, frozenset())
        kept = [name for name in names if name not in dropped]
        if minimal:
            return kept
        extra = [name for name in self.extra_names.get(endpoint, ()) if name not in kept]
        unknown = [UNKNOWN_FIELD] if endpoint in _LEARNER_ENDPOINTS else []
        return kept + extra + unknown


DIALECTS: Final[dict[str, Dialect]] = {
    "sandbox": Dialect("sandbox"),
    "guide": Dialect(
        "guide",
        dropped={
            "user_activity": frozenset({"lms_user_id"}),
            "user_course_activity": frozenset({"user_id", "lms_user_id", "last_activity_date"}),
            "user_progress": frozenset({"user_id", "lms_user_id"}),
            "user_path_activity": frozenset({"user_id", "lms_user_id"}),
        },
    ),
    "observed": Dialect(
        "observed",
        classes={
            **SANDBOX_CLASSES,
            "user_course_activity": "aggregate_organization_user_course_activity",
            "user_progress": "organization_user_progress",
            "user_path_activity": "aggregate_organization_user_path_activity",
        },
        dropped={
            "user_activity": frozenset({"id", "report_date"}),
            "user_progress": frozenset({"user_id"}),
            "user_path_activity": frozenset({"user_id"}),
        },
        extras={
            "courses": _course_extras,
            "user_activity": _activity_extras,
            "user_progress": _progress_extras,
        },
        extra_names={
            "courses": (
                "primary_category",
                "primary_subcategory",
                "num_practice_tests",
                "is_practice_test_course",
                "has_closed_caption",
                "caption_languages",
                "caption_locales",
                "estimated_content_length_video",
                "xapi_activity_id",
                "mobile_native_deeplink",
            ),
            "user_activity": ("num_completed_quizzes",),
            "user_progress": ("item_views", "item_marked_complete"),
        },
        converted={
            "user_course_activity": {"is_assigned": lambda value: value == "Yes"},
            "user_progress": {"item_final_result": _quiz_score},
        },
    ),
}
DEFAULT_DIALECT: Final = "sandbox"
