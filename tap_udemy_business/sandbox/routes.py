"""What a request to the portal means: its route, and its query string read as the API reads it.

Kept apart from the HTTP plumbing (`handler.py`) and from paging (`paging.py`) because this is
the part that must agree with the real API, parameter by parameter: which endpoints exist, which
filters each one looks at (the others are ignored, not refused), and the 400 answers for values
it refuses, naming the parameter.
"""

from __future__ import annotations

import re
from datetime import date
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from tap_udemy_business.sandbox.model_selection import Filters

if TYPE_CHECKING:
    from tap_udemy_business.sandbox.model import Dataset

API_PREFIX = "/api-2.0/organizations/"
ROUTES: dict[str, str] = {
    "courses/list/": "courses",
    "learning-paths/list/": "learning_paths",
    "analytics/user-activity/": "user_activity",
    "analytics/user-course-activity/": "user_course_activity",
    "analytics/user-progress/": "user_progress",
    "analytics/user-path-activity/": "user_path_activity",
}
LEARNING_PATH_ENDPOINTS = frozenset({"learning_paths", "user_path_activity"})
ENDPOINT_PATHS: dict[str, str] = {endpoint: path for path, endpoint in ROUTES.items()}
LEARNER_ENDPOINTS = frozenset(
    {"user_activity", "user_course_activity", "user_progress", "user_path_activity"}
)
DATE_FILTERED = LEARNER_ENDPOINTS
COURSE_FILTERED = frozenset({"user_course_activity", "user_progress"})
DEFAULT_PAGE_SIZE = 12
MAX_PAGE_SIZE = 100
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_RE = re.compile(r"[+-]?\d{1,18}")
_REASONS = {520: "Web Server Returned an Unknown Error", 524: "A Timeout Occurred"}


class ApiError(Exception):
    """An error answer; raised deep in request handling, rendered once at the top."""

    def __init__(self, status: int, detail: str, parameter: str | None = None) -> None:
        """Keep the status and the JSON body the API would send (`detail`, `parameter`)."""
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"detail": detail}
        if parameter is not None:
            self.body["parameter"] = parameter


def reason(status: int) -> str:
    """The reason phrase, including the Cloudflare statuses the standard library lacks."""
    try:
        return _REASONS.get(status) or HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def check_endpoint(endpoint_key: str) -> None:
    """Refuse an endpoint key the portal does not serve, listing the ones it does."""
    if endpoint_key not in ENDPOINT_PATHS:
        msg = f"unknown endpoint {endpoint_key!r}; expected one of {sorted(ENDPOINT_PATHS)}"
        raise ValueError(msg)


def parse_date(query: dict[str, str], name: str) -> date | None:
    """The date parameter `name` (`YYYY-MM-DD`), `None` when absent or blank; else a 400."""
    raw = query.get(name, "")
    if not raw:
        return None
    if _DATE_RE.fullmatch(raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise ApiError(400, f"Invalid {name} {raw!r}: expected a date as YYYY-MM-DD.", name)


def parse_int(query: dict[str, str], name: str, default: int, minimum: int) -> int:
    """The integer parameter `name`, `default` when absent; a 400 when below `minimum`."""
    raw = query.get(name)
    if raw is None:
        return default
    return _checked_int(raw, name, minimum)


def _optional_int(query: dict[str, str], name: str, minimum: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    return _checked_int(raw, name, minimum)


def _checked_int(raw: str, name: str, minimum: int) -> int:
    if not _INT_RE.fullmatch(raw) or int(raw) < minimum:
        raise ApiError(400, f"Invalid {name} {raw!r}: expected an integer >= {minimum}.", name)
    return int(raw)


def coerce_date(value: date | str | None, name: str) -> date | None:
    """A date given as a value or as the API's string (for `ground_truth` and `prerender`)."""
    if value is None or isinstance(value, date):
        return value
    return parse_date({name: value}, name)


def applicable(endpoint: str, filters: Filters) -> Filters:
    """Keep only the filters the endpoint supports; the API ignores the others."""
    dated = endpoint in DATE_FILTERED
    return Filters(
        from_date=filters.from_date if dated else None,
        to_date=filters.to_date if dated else None,
        course_id=filters.course_id if endpoint in COURSE_FILTERED else None,
        user_email=filters.user_email if endpoint in LEARNER_ENDPOINTS else None,
    )


def parse_filters(endpoint: str, query: dict[str, str]) -> Filters:
    """Validate the filters that apply to ``endpoint``; others are not even looked at."""
    dated = endpoint in DATE_FILTERED
    email = query.get("user_email") if endpoint in LEARNER_ENDPOINTS else None
    return Filters(
        from_date=parse_date(query, "from_date") if dated else None,
        to_date=parse_date(query, "to_date") if dated else None,
        course_id=(
            _optional_int(query, "course_id", -(10**18)) if endpoint in COURSE_FILTERED else None
        ),
        user_email=email or None,
    )


def requested_fields(
    dataset: Dataset, endpoint: str, query: dict[str, str]
) -> tuple[str, ...] | None:
    """The requested field names, sorted (part of a page's cache key); ``None``: every field.

    Only the key naming the records' own `_class` counts: any other `fields[...]` is
    ignored and the default field set answered, as the API does.
    """
    raw = query.get(f"fields[{dataset.class_name(endpoint)}]", "@default")
    sets = dataset.field_sets(endpoint)
    names: set[str] = set()
    for part in (piece.strip() for piece in raw.split(",")):
        if part == "@all":
            return None
        if part in sets:
            names.update(sets[part])
        elif part:
            names.add(part)
    return tuple(sorted(names))
