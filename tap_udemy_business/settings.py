"""The tap's settings: their JSON Schema, and the checks a schema cannot express.

Everything here runs before the first request, so a bad configuration fails fast,
with one line per problem that names the setting, and never echoes a secret.

Settings arrive as users write them: `"organization_id": "8888"` in a hand-written
config.json (the API guide quotes it), or any number or flag as a string from a
`TAP_UDEMY_BUSINESS_*` environment variable. `coerce_config` turns a string that cleanly
spells the JSON type a setting declares into that type before the schema sees it:

- integer: optional sign and digits (`"8888"`, `"-5"`); a whole float (`8888.0`) becomes an int;
- number: a decimal or exponent form (`"60.5"`, `"1e3"`), finite only;
- boolean: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case;
- surrounding whitespace is ignored (`" 8888 "`, a trailing newline from a secret store), and
  a blank string counts as unset, so the setting's default applies;
- anything else stays as it was, and the schema refuses it in one line naming the setting.

The rules are read from the schema's declared types, so a new setting gets them for free.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
DEFAULT_LOOKBACK_DAYS = 3
#: Ten years: beyond that a lookback re-reads history the API no longer holds.
MAX_LOOKBACK_DAYS = 3650
#: Periods one request to an aggregate endpoint may cover (`aggregate_span`).
AGGREGATE_SPANS = ("day", "week", "month")
DEFAULT_AGGREGATE_SPAN = "day"
DEFAULT_MAX_CONCURRENT_REQUESTS = 8
MAX_CONCURRENT_REQUESTS = 64
DEFAULT_REQUEST_TIMEOUT = 120
#: An hour: a response slower than that is a hung connection, not a slow API.
MAX_REQUEST_TIMEOUT = 3600
DEFAULT_MAX_RESPONSE_MB = 64
#: A page of 100 records is well under a megabyte; a gigabyte is no page but a fault.
MAX_MAX_RESPONSE_MB = 1024
DEFAULT_MAX_RETRIES = 8
#: Enough for any real outage inside `max_retry_seconds`; more is a typo.
MAX_MAX_RETRIES = 100
DEFAULT_MAX_RETRY_SECONDS = 600
#: A day: past that a scheduled run should fail and alert rather than keep waiting.
MAX_MAX_RETRY_SECONDS = 86400
#: A portal's subdomain: what precedes `.udemy.com`.
PORTAL_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.IGNORECASE)
#: Settings that address a real account. The sandbox serves a simulated account of its own,
#: so none of them may come with `sandbox` on (see `_check_sandbox`).
ACCOUNT_SETTINGS = ("client_id", "client_secret", "organization_id", "portal_name", "api_url")

CONFIG_SCHEMA: dict[str, t.Any] = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType,
        secret=True,
        title="Client ID",
        description=(
            "API client id, from the portal's Manage > Settings > LMS integration page. "
            "Required unless `sandbox` is on."
        ),
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="Client secret",
        description="API client secret paired with `client_id`. Required unless `sandbox` is on.",
    ),
    th.Property(
        "organization_id",
        th.IntegerType(minimum=1),
        title="Organization ID",
        description=(
            "The portal's numeric organization (account) id, shown on its developer pages. "
            'A number or the same digits quoted, e.g. 8888 or "8888".'
        ),
        examples=[8888],
    ),
    th.Property(
        "portal_name",
        th.StringType,
        title="Portal name",
        description="The `{portal_name}.udemy.com` subdomain of the organization's portal.",
        examples=["acme"],
    ),
    th.Property(
        "api_url",
        th.StringType,
        title="API URL",
        description=(
            "Overrides the base URL `https://{portal_name}.udemy.com`. Must be https, "
            "except on loopback hosts (for the sandbox and tests)."
        ),
    ),
    th.Property(
        "start_date",
        th.DateType,
        title="Start date",
        description=(
            "First day (UTC) of learner activity to sync. Unset: the whole history. "
            "Used on the first run only; later runs resume from their bookmark."
        ),
    ),
    th.Property(
        "end_date",
        th.DateType,
        title="End date",
        description="Last day (UTC, inclusive) of learner activity to sync. Unset: yesterday.",
    ),
    th.Property(
        "aggregate_span",
        th.StringType,
        allowed_values=list(AGGREGATE_SPANS),
        default=DEFAULT_AGGREGATE_SPAN,
        title="Aggregate span",
        description=(
            "Period one request to the aggregate endpoints (user_activity, "
            "user_course_activity, user_path_activity) covers, and so what one of their rows "
            "means: a learner's totals for one UTC day, one ISO week (Monday to Sunday) or one "
            "calendar month. Stamped on each row as from_date/to_date."
        ),
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
        default=DEFAULT_PAGE_SIZE,
        title="Page size",
        description="Records per API page, 1 to 100 (the API's maximum).",
    ),
    th.Property(
        "lookback_days",
        th.IntegerType(minimum=0, maximum=MAX_LOOKBACK_DAYS),
        default=DEFAULT_LOOKBACK_DAYS,
        title="Lookback days",
        description=(
            "Days before the bookmark that an incremental run reads again, to catch rows "
            f"that the daily refresh delivered late. 0 to {MAX_LOOKBACK_DAYS}."
        ),
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1, maximum=MAX_CONCURRENT_REQUESTS),
        default=DEFAULT_MAX_CONCURRENT_REQUESTS,
        title="Max concurrent requests",
        description=(
            f"Upper bound on requests in flight, 1 to {MAX_CONCURRENT_REQUESTS}. When the API "
            "answers 429, requests are also paced just under the rate it allows. 1 reads pages "
            "strictly one after another."
        ),
    ),
    th.Property(
        "request_timeout",
        th.NumberType(minimum=1, maximum=MAX_REQUEST_TIMEOUT),
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request timeout",
        description=(
            "Seconds one request may take, from connecting to the end of its body, before it "
            f"is retried, 1 to {MAX_REQUEST_TIMEOUT} (fractions allowed)."
        ),
    ),
    th.Property(
        "max_response_mb",
        th.IntegerType(minimum=1, maximum=MAX_MAX_RESPONSE_MB),
        default=DEFAULT_MAX_RESPONSE_MB,
        title="Max response MB",
        description=(
            f"Largest answer the tap reads, in MB, 1 to {MAX_MAX_RESPONSE_MB}. A larger one "
            "fails the sync with a clear error naming the URL and is never read past the cap, "
            "so memory for answers stays within max_concurrent_requests times this."
        ),
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0, maximum=MAX_MAX_RETRIES),
        default=DEFAULT_MAX_RETRIES,
        title="Max retries",
        description=(
            "Retries of one request (429, 5xx, time-outs, invalid JSON) before failing, "
            f"0 to {MAX_MAX_RETRIES}."
        ),
    ),
    th.Property(
        "max_retry_seconds",
        th.NumberType(minimum=1, maximum=MAX_MAX_RETRY_SECONDS),
        default=DEFAULT_MAX_RETRY_SECONDS,
        title="Max retry seconds",
        description=(
            "Total seconds one request may spend retrying before the sync fails, "
            f"1 to {MAX_MAX_RETRY_SECONDS}."
        ),
    ),
    th.Property(
        "page_worker",
        th.BooleanType,
        default=True,
        title="Page worker",
        description=(
            "Parse, check and serialise pages in a second process, on a second CPU core "
            "(when the machine lets the tap use more than one). false keeps all of it in "
            "the tap's process."
        ),
    ),
    th.Property(
        "sandbox",
        th.BooleanType,
        default=False,
        title="Sandbox",
        description=(
            "Start the bundled sandbox portal (simulated data) in-process and sync from it. "
            "No account or credentials needed: for demos and trials."
        ),
    ),
).to_dict()

#: Settings whose values must never appear in any output: those the schema marks secret
#: (so Meltano, `--about` and the redaction agree by construction).
SECRET_SETTINGS = tuple(
    name for name, spec in CONFIG_SCHEMA["properties"].items() if spec.get("secret")
)


#: JSON types a string setting value may be coerced to, in the order they are tried.
_COERCIBLE = ("integer", "number", "boolean")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def declared_types(schema: t.Mapping[str, t.Any]) -> set[str]:
    """The JSON types one property's schema allows, from `type` and its `anyOf` branches.

    Coercion is driven by these, not by a list of names, so a setting added to the schema
    (or one the SDK merges in, like `flattening_max_depth`) is read the same way.

    Args:
        schema: one entry of the settings schema's `properties`.

    Returns:
        The type names, e.g. {"integer", "null"}; empty when the schema declares none.
    """
    declared = schema.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    for branch in schema.get("anyOf", []):
        if isinstance(branch, dict):
            types |= declared_types(branch)
    return types


def coerce_config(config: t.Mapping[str, t.Any], schema: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A copy of `config` with each value turned into the JSON type its setting declares.

    This runs before JSON Schema validation so that `"8888"` (a hand-written config.json)
    and `"60.5"` (an environment variable, which is always a string) validate as what they
    spell, and downstream code gets an int or float. A value that does not spell its type
    is left unchanged: the schema then refuses it in one line that names the setting.
    Settings that accept strings are never touched, which keeps every secret as given.

    Args:
        config: the merged configuration, as read from files, arguments and environment.
        schema: the tap's settings schema (with the SDK's built-in settings merged in).

    Returns:
        The coerced configuration; blank numbers and flags, and nulls and blanks for
        settings with a default, are dropped, as if unset.
    """
    properties: t.Mapping[str, t.Any] = schema.get("properties", {})
    coerced: dict[str, t.Any] = {}
    for name, value in config.items():
        types = declared_types(properties.get(name, {}))
        unset = value is None or (isinstance(value, str) and not value.strip())
        if unset and "default" in properties.get(name, {}):
            continue  # `null` or `""` means "not set": the schema's default fills it in
        if "string" in types or not types & set(_COERCIBLE):
            coerced[name] = value
        elif isinstance(value, str) and not value.strip():
            continue  # `TAP_UDEMY_BUSINESS_PAGE_SIZE=` means "not set", not "invalid"
        else:
            coerced[name] = _coerce_value(value, types)
    return coerced


def _coerce_value(value: t.Any, types: set[str]) -> t.Any:
    """`value` as the first of `types` it cleanly spells; unchanged when it spells none."""
    if isinstance(value, float) and "integer" in types and value.is_integer():
        return int(value)  # JSON Schema calls 8888.0 an integer; downstream wants 8888
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "integer" in types and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in types and _NUMBER.fullmatch(text):
        number = int(text) if _INTEGER.fullmatch(text) else float(text)
        if math.isfinite(number):
            return number
    if "boolean" in types and text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    return value


def environment_config(schema: t.Mapping[str, t.Any], prefix: str) -> dict[str, t.Any]:
    """Settings from `<prefix><SETTING>` environment variables (and a `.env` file).

    The SDK's own parser calls `int()` on integer settings (so `PAGE_SIZE=five` ends in a
    traceback), passes numbers on as strings (which the schema then refuses), and reads any
    word but true/1/yes/on as a false boolean. Here every integer, number and boolean
    setting is read as its raw string instead, for `coerce_config` to convert, or to leave
    for the schema to refuse by name. Everything else (strings, and the arrays and objects
    of stream maps and batch config) keeps the SDK's parsing, `.env` loading included.

    Args:
        schema: the tap's settings schema (with the SDK's built-in settings merged in).
        prefix: the variables' prefix, e.g. `TAP_UDEMY_BUSINESS_`.

    Returns:
        The settings found in the environment, scalars as strings.
    """
    properties: dict[str, t.Any] = dict(schema.get("properties", {}))
    for name, prop in properties.items():
        types = declared_types(prop)
        if types & set(_COERCIBLE) and not types & {"string", "array", "object"}:
            properties[name] = {"type": ["string", "null"]}
    return parse_environment_config({**schema, "properties": properties}, prefix)


#: How the SDK's schema messages end: ` in config['page_size']`.
_SCHEMA_ERROR_SETTING = re.compile(r" in config\[('[^']*')")


def first_error_per_setting(errors: list[str]) -> list[str]:
    """The schema's messages, keeping only the first for each setting.

    JSON Schema reports every keyword a value breaks (`7` for `aggregate_span` is both
    "not of type 'string'" and "not one of [...]"); one line says what is wrong, and the
    first is the type, the most basic.

    Args:
        errors: the SDK's messages, each ending `in config['<setting>']` when about one.

    Returns:
        The messages in order, one per setting; those about no single setting all kept.
    """
    seen: set[str] = set()
    kept = []
    for error in errors:
        match = _SCHEMA_ERROR_SETTING.search(error)
        if match is not None:
            if match.group(1) in seen:
                continue
            seen.add(match.group(1))
        kept.append(error)
    return kept


def is_loopback_host(host: str) -> bool:
    """Tell whether a host name is this machine, where plain http is allowed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(config: t.Mapping[str, t.Any]) -> str:
    """Return the API's base URL (scheme, host and port, no trailing slash)."""
    api_url = config.get("api_url")
    if api_url:
        return str(api_url).rstrip("/")
    return f"https://{config['portal_name']}.udemy.com"


def parse_day(value: t.Any) -> dt.date | None:
    """A day from a setting or a bookmark: `2024-01-31`, or a timestamp's date part.

    Returns:
        The date; None when the value is unset (None or blank).

    Raises:
        ValueError: the value does not start with an ISO date.
    """
    if value in (None, ""):
        return None
    return dt.date.fromisoformat(str(value)[:10])


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """Return the problems a JSON Schema cannot see, each naming its setting.

    Args:
        config: the merged configuration, as the user gave it (files, arguments and
            environment); the sandbox's own account is not in it.

    Returns:
        One message per problem; empty when the configuration is usable.
    """
    errors = _check_sandbox(config) if config.get("sandbox") is True else _check_account(config)
    errors.extend(_check_dates(config))
    return errors


def _check_sandbox(config: t.Mapping[str, t.Any]) -> list[str]:
    """Refuse a real account's settings next to `sandbox`: one line naming them, no values.

    The sandbox brings its own credentials, organization and URL. Taking them over a real
    account's would sync simulated learners under that account's name, into the warehouse
    the real data goes to (e.g. `TAP_UDEMY_BUSINESS_SANDBOX=true` left in a production
    environment); refusing makes the two ways to run exclusive, as the settings groups say.
    """
    given = [name for name in ACCOUNT_SETTINGS if config.get(name) not in (None, "")]
    if not given:
        return []
    names = ", ".join(f"'{name}'" for name in given)
    message = (
        f"Setting 'sandbox' is on, so {names} must not be set: the sandbox serves a simulated "
        "account of its own. Unset them, or set 'sandbox' to false to use the real account."
    )
    return [message]


def _check_account(config: t.Mapping[str, t.Any]) -> list[str]:
    """Check what reaches the real API (with `sandbox` off: the sandbox has its own)."""
    errors = [
        f"Setting '{name}' is required (or set 'sandbox' to true)."
        for name in ("client_id", "client_secret", "organization_id")
        if config.get(name) in (None, "")
    ]
    if not config.get("api_url") and not config.get("portal_name"):
        errors.append("Setting 'portal_name' is required (or set 'api_url').")
    portal = config.get("portal_name")
    if portal and not config.get("api_url") and not PORTAL_NAME.fullmatch(str(portal)):
        errors.append(
            "Setting 'portal_name' must be the subdomain alone, e.g. 'acme' for acme.udemy.com."
        )
    return errors + _check_url(config)


def _check_url(config: t.Mapping[str, t.Any]) -> list[str]:
    api_url = config.get("api_url")
    if not api_url:
        return []
    parts = urlsplit(str(api_url))
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return ["Setting 'api_url' must be an absolute URL such as https://acme.udemy.com."]
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        return ["Setting 'api_url' must use https (plain http is allowed on loopback only)."]
    if parts.username or parts.password:
        return ["Setting 'api_url' must not contain credentials; use client_id/client_secret."]
    if parts.path.strip("/") or parts.query or parts.fragment:
        return [
            "Setting 'api_url' must be scheme, host and port only, e.g. https://acme.udemy.com."
        ]
    return []


def _check_dates(config: t.Mapping[str, t.Any]) -> list[str]:
    errors: list[str] = []
    days = {name: _try_parse_day(config.get(name)) for name in ("start_date", "end_date")}
    errors.extend(
        f"Setting '{name}' must be a date such as 2024-01-31."
        for name, day in days.items()
        if day is _INVALID
    )
    start, end = days["start_date"], days["end_date"]
    if isinstance(start, dt.date) and isinstance(end, dt.date) and start > end:
        errors.append("Setting 'start_date' must not be after 'end_date'.")
    return errors


_INVALID = object()


def _try_parse_day(value: t.Any) -> dt.date | object | None:
    try:
        return parse_day(value)
    except ValueError:
        return _INVALID
