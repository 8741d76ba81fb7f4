"""The tap's settings: their JSON Schema, and the checks a schema cannot express.

Everything here runs before the first request, so a bad configuration fails fast,
with one line per problem that names the setting, and never echoes a secret.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import typing as t
from urllib.parse import urlsplit

from singer_sdk import typing as th

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
DEFAULT_LOOKBACK_DAYS = 3
DEFAULT_MAX_CONCURRENT_REQUESTS = 8
DEFAULT_REQUEST_TIMEOUT = 120
DEFAULT_MAX_RETRIES = 8
DEFAULT_MAX_RETRY_SECONDS = 600
#: A portal's subdomain: what precedes `.udemy.com`.
PORTAL_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.IGNORECASE)
#: Settings whose values must never appear in any output.
SECRET_SETTINGS = ("client_id", "client_secret")

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
        th.IntegerType,
        title="Organization ID",
        description="The portal's numeric organization (account) id, shown on its developer pages.",
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
        "page_size",
        th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
        default=DEFAULT_PAGE_SIZE,
        title="Page size",
        description="Records per API page, 1 to 100 (the API's maximum).",
    ),
    th.Property(
        "lookback_days",
        th.IntegerType(minimum=0),
        default=DEFAULT_LOOKBACK_DAYS,
        title="Lookback days",
        description=(
            "Days before the bookmark that an incremental run reads again, to catch rows "
            "that the daily refresh delivered late."
        ),
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1, maximum=64),
        default=DEFAULT_MAX_CONCURRENT_REQUESTS,
        title="Max concurrent requests",
        description=(
            "Upper bound on requests in flight. The tap lowers it by itself when the API "
            "answers 429, and grows back slowly. 1 reads pages strictly one after another."
        ),
    ),
    th.Property(
        "request_timeout",
        th.NumberType(minimum=1),
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request timeout",
        description="Seconds to wait for one response before retrying it.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=DEFAULT_MAX_RETRIES,
        title="Max retries",
        description="Retries of one request (429, 5xx, time-outs, invalid JSON) before failing.",
    ),
    th.Property(
        "max_retry_seconds",
        th.NumberType(minimum=1),
        default=DEFAULT_MAX_RETRY_SECONDS,
        title="Max retry seconds",
        description="Total seconds one request may spend retrying before the sync fails.",
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


class ConfigError(ValueError):
    """Raised with every problem found in a configuration, one line each."""

    def __init__(self, errors: list[str]) -> None:
        """Keep the list so the CLI can print one line per problem."""
        super().__init__("; ".join(errors))
        self.errors = errors


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


def _parse_day(value: t.Any) -> dt.date | None:
    if value in (None, ""):
        return None
    return dt.date.fromisoformat(str(value)[:10])


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """Return the problems a JSON Schema cannot see, each naming its setting.

    Args:
        config: the merged configuration (the sandbox, when on, has filled in its own
            credentials and URL before this runs).

    Returns:
        One message per problem; empty when the configuration is usable.
    """
    errors = [] if config.get("sandbox") else _check_account(config)
    errors.extend(_check_dates(config))
    page_size = config.get("page_size", DEFAULT_PAGE_SIZE)
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        errors.append(f"Setting 'page_size' must be an integer from 1 to {MAX_PAGE_SIZE}.")
    return errors


def _check_account(config: t.Mapping[str, t.Any]) -> list[str]:
    """Check what reaches the real API; the sandbox supplies all of it itself."""
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
    org = config.get("organization_id")
    if org not in (None, "") and (isinstance(org, bool) or not str(org).isdigit()):
        errors.append("Setting 'organization_id' must be the portal's numeric id.")
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
        return _parse_day(value)
    except ValueError:
        return _INVALID
