"""Configuration: refused before any request, one line per problem, naming the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_udemy_business.tap import TapUdemyBusiness

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal

REPO = Path(__file__).resolve().parents[1]
TAP_NAME = "tap-udemy-business"
GOOD = {
    "client_id": "id",
    "client_secret": "s3cr3t-value",
    "organization_id": 8888,
    "portal_name": "acme",
}


def _errors(config: dict[str, t.Any]) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        TapUdemyBusiness(config=config, parse_env_config=False)
    return caught.value.errors


def test_a_good_config_is_accepted() -> None:
    TapUdemyBusiness(config=GOOD, parse_env_config=False)


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"client_id": None}, "client_id"),
        ({"client_secret": ""}, "client_secret"),
        ({"organization_id": None}, "organization_id"),
        ({"organization_id": "acme"}, "organization_id"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"start_date": "2024-02-30"}, "start_date"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"start_date": "2024-03-01", "end_date": "2024-02-01"}, "start_date"),
        ({"api_url": "http://acme.udemy.com"}, "api_url"),
        ({"api_url": "ftp://acme.udemy.com"}, "api_url"),
        ({"portal_name": None}, "portal_name"),
        ({"portal_name": "acme.udemy.com"}, "portal_name"),
        ({"portal_name": "evil.example/#"}, "portal_name"),
        ({"api_url": "https://acme.udemy.com/api-2.0?x=1"}, "api_url"),
    ],
)
def test_bad_settings_are_refused_by_name(change: dict[str, t.Any], setting: str) -> None:
    config = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    errors = _errors(config)
    assert any(setting in error for error in errors), errors
    assert not any("s3cr3t-value" in error for error in errors)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://acme.udemy.com"]
)
def test_https_or_loopback_urls_are_accepted(url: str) -> None:
    TapUdemyBusiness(config={**GOOD, "api_url": url}, parse_env_config=False)


def test_sandbox_needs_no_credentials() -> None:
    TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False)


# -- the sandbox is a separate room: never next to a real account's settings -------------------
REAL_ACCOUNT = {**GOOD, "api_url": "https://acme.udemy.com"}


@pytest.mark.parametrize("setting", sorted(REAL_ACCOUNT))
def test_sandbox_with_a_real_account_setting_is_refused_naming_it(setting: str) -> None:
    errors = _errors({"sandbox": True, "start_date": "2026-11-01", setting: REAL_ACCOUNT[setting]})
    assert len(errors) == 1, errors
    assert f"'{setting}'" in errors[0]
    assert "'sandbox'" in errors[0]
    assert not any(other in errors[0] for other in REAL_ACCOUNT.keys() - {setting})
    assert "s3cr3t-value" not in errors[0]


def test_sandbox_with_a_whole_real_account_is_one_error_naming_every_setting() -> None:
    errors = _errors({"sandbox": True, **REAL_ACCOUNT})
    assert len(errors) == 1, errors
    assert all(f"'{name}'" in errors[0] for name in REAL_ACCOUNT)
    assert "s3cr3t-value" not in errors[0]


def test_blank_account_settings_do_not_count_against_the_sandbox() -> None:
    """An exported but empty `TAP_UDEMY_BUSINESS_CLIENT_ID=` means "not set"."""
    tap = TapUdemyBusiness(
        config={"sandbox": True, "client_id": "", "client_secret": "", "api_url": ""},
        parse_env_config=False,
    )
    assert tap.config["sandbox"] is True


def test_cli_refuses_sandbox_with_credentials_in_one_line(tmp_path: t.Any) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"sandbox": True, **REAL_ACCOUNT}))
    done = subprocess.run(
        [sys.executable, "-m", "tap_udemy_business", "--config", str(config)],
        env=BASE_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    (line,) = _error_lines(done.stderr, "'sandbox'")
    assert all(f"'{name}'" in line for name in ("client_id", "client_secret", "api_url"))
    assert "s3cr3t-value" not in done.stderr
    assert "Sandbox portal serving" not in done.stderr  # refused before anything started


def test_sandbox_switched_on_in_the_environment_over_a_real_config_is_refused(
    tmp_path: t.Any,
) -> None:
    """Meltano's case: `TAP_UDEMY_BUSINESS_SANDBOX=true` left over a production config."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(GOOD))
    done = subprocess.run(
        [sys.executable, "-m", "tap_udemy_business", "--config", str(config), "--config=ENV"],
        env={**BASE_ENV, _env_var("sandbox"): "true"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = _error_lines(done.stderr, "'sandbox'")
    assert "'client_secret'" in line
    assert "'organization_id'" in line
    assert "s3cr3t-value" not in done.stderr


def test_environment_variables_configure_the_tap(portal: SandboxPortal) -> None:
    env = {
        "TAP_UDEMY_BUSINESS_CLIENT_ID": portal.client_id,
        "TAP_UDEMY_BUSINESS_CLIENT_SECRET": portal.client_secret,
        "TAP_UDEMY_BUSINESS_ORGANIZATION_ID": str(portal.organization_id),
        "TAP_UDEMY_BUSINESS_API_URL": portal.base_url,
        "TAP_UDEMY_BUSINESS_START_DATE": "2099-01-01",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tap_udemy_business", "--config", "ENV"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"stream":"courses"' in done.stdout.replace(" ", "")


def test_cli_refuses_bad_config_with_one_line_per_setting(tmp_path: t.Any) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"client_id": "x", "client_secret": "s3cr3t-value", "page_size": 500}')
    done = subprocess.run(
        [sys.executable, "-m", "tap_udemy_business", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert "organization_id" in done.stderr
    assert "page_size" in done.stderr
    assert "s3cr3t-value" not in done.stderr
    assert "Traceback" not in done.stderr


def test_schema_errors_never_quote_a_secret() -> None:
    errors = _errors({**GOOD, "client_secret": 987654321, "client_id": ["s3cr3t-list"]})
    assert any("client_secret" in error for error in errors)
    assert not any("987654321" in error or "s3cr3t-list" in error for error in errors)


# -- config as users write it: strings for numbers and flags, bounds, the new aggregate_span -----
#: Every integer, number and boolean setting but organization_id (the portal's own, see
#: `_portal_env`), as the string an environment variable carries.
#: `test_every_numeric_and_boolean_setting_is_covered` keeps this list complete.
AS_STRINGS = {
    "page_size": "7",
    "max_response_mb": "16",
    "lookback_days": " 2 ",
    "max_concurrent_requests": "2",
    "request_timeout": "30",
    "max_retries": "3",
    "max_retry_seconds": "60.5",
    "page_worker": "true",
    "sandbox": "false",
    "flattening_enabled": "False",
    "flattening_max_depth": "2",
    "flattening_max_key_length": "255",
}
BASE_ENV = {"PATH": "/usr/bin:/bin"}  # nothing else: no TAP_UDEMY_BUSINESS_* of the developer's


def _tap(**changes: t.Any) -> TapUdemyBusiness:
    return TapUdemyBusiness(config={**GOOD, **changes}, parse_env_config=False)


def _env_var(setting: str) -> str:
    """The variable Meltano exports for a setting, and that `--config=ENV` reads."""
    return f"TAP_UDEMY_BUSINESS_{setting.upper()}"


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tap_udemy_business", "--config=ENV", *args],
        env={**BASE_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _portal_env(portal: SandboxPortal) -> dict[str, str]:
    """The portal's address and account, organization_id as a string like "424242"."""
    config = portal.tap_config()
    return {
        _env_var("api_url"): config["api_url"],
        _env_var("client_id"): config["client_id"],
        _env_var("client_secret"): config["client_secret"],
        _env_var("organization_id"): str(config["organization_id"]),
    }


def _error_lines(stderr: str, setting: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line and setting in line]


@pytest.mark.parametrize("value", [8888, "8888", " 8888 ", "8888\n", 8888.0])
def test_organization_id_as_a_number_or_its_digits_becomes_an_int(value: t.Any) -> None:
    tap = _tap(organization_id=value)
    assert tap.config["organization_id"] == 8888
    assert type(tap.config["organization_id"]) is int


@pytest.mark.parametrize("value", ["abc", True, -5, "-5", 0, 8888.5, "8888.5", "88 88", "0x22b8"])
def test_a_bad_organization_id_is_one_error_naming_it(value: t.Any) -> None:
    errors = _errors({**GOOD, "organization_id": value})
    assert len(errors) == 1, errors
    assert "organization_id" in errors[0]
    assert "\n" not in errors[0]


@pytest.mark.parametrize(
    ("setting", "text", "expected"),
    [
        ("page_size", "50", 50),
        ("page_size", "+50", 50),
        ("page_size", 50.0, 50),
        ("lookback_days", "0", 0),
        ("request_timeout", "30", 30),
        ("request_timeout", "2.5", 2.5),
        ("request_timeout", " 1e3 ", 1000.0),
        ("max_retry_seconds", ".5e2", 50.0),
        ("sandbox", "true", True),
        ("sandbox", "TRUE", True),
        ("sandbox", "1", True),
        ("sandbox", "yes", True),
        ("sandbox", "on", True),
        ("sandbox", "false", False),
        ("sandbox", "0", False),
        ("sandbox", "No", False),
        ("sandbox", "off", False),
        ("flattening_enabled", "off", False),
        ("flattening_max_depth", "3", 3),
    ],
)
def test_strings_that_spell_the_declared_type_are_converted(
    setting: str, text: t.Any, expected: t.Any
) -> None:
    # The sandbox on is a config of its own: a real account's settings are refused next to it.
    account = {} if setting == "sandbox" and expected is True else GOOD
    tap = TapUdemyBusiness(config={**account, setting: text}, parse_env_config=False)
    value = tap.config[setting]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("setting", "text"),
    [
        ("page_size", "five"),
        ("page_size", "5.5"),
        ("page_size", "1_0"),
        ("request_timeout", "nan"),
        ("request_timeout", "inf"),
        ("request_timeout", "1e999"),
        ("request_timeout", "30s"),
        ("max_retries", "true"),
        ("sandbox", "maybe"),
        ("sandbox", "2"),
        ("sandbox", 1),
        ("flattening_max_depth", "deep"),
    ],
)
def test_strings_that_do_not_spell_it_are_one_error_naming_the_setting(
    setting: str, text: t.Any
) -> None:
    errors = _errors({**GOOD, setting: text})
    assert len(errors) == 1, errors
    assert f"'{setting}'" in errors[0]


def test_string_settings_are_never_converted() -> None:
    tap = _tap(client_id="12345678", client_secret=" 0042 ", portal_name="true")
    assert tap.config["client_id"] == "12345678"
    assert tap.config["client_secret"] == " 0042 "
    assert tap.config["portal_name"] == "true"


def test_a_blank_number_or_flag_counts_as_unset() -> None:
    tap = _tap(page_size="", request_timeout="  ", sandbox="")
    assert tap.config["page_size"] == 100  # the schema's default
    assert tap.config["request_timeout"] == 120
    assert tap.config["sandbox"] is False
    assert "organization_id" in _errors({**GOOD, "organization_id": " "})[0]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("request_timeout", 1e12),
        ("request_timeout", "1e12"),
        ("request_timeout", 3600.5),
        ("request_timeout", 0.5),
        ("lookback_days", -1),
        ("lookback_days", "-1"),
        ("lookback_days", 3651),
        ("max_retries", -1),
        ("max_retries", 101),
        ("max_retry_seconds", 86401),
        ("max_retry_seconds", 0),
        ("max_concurrent_requests", 0),
        ("max_concurrent_requests", "65"),
        ("page_size", "0"),
        ("page_size", 101),
        ("aggregate_span", "year"),
        ("aggregate_span", 7),
    ],
)
def test_out_of_bounds_values_are_one_error_naming_the_setting(setting: str, value: t.Any) -> None:
    errors = _errors({**GOOD, setting: value})
    assert len(errors) == 1, errors
    assert f"'{setting}'" in errors[0]
    assert "s3cr3t-value" not in errors[0]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("request_timeout", 1),
        ("request_timeout", 3600),
        ("lookback_days", 0),
        ("lookback_days", 3650),
        ("max_retries", 0),
        ("max_retries", 100),
        ("max_retry_seconds", 1),
        ("max_retry_seconds", 86400),
        ("max_concurrent_requests", 1),
        ("max_concurrent_requests", 64),
    ],
)
def test_the_bounds_themselves_are_accepted(setting: str, value: t.Any) -> None:
    assert _tap(**{setting: value}).config[setting] == value


def test_the_bounds_are_in_the_schema_that_about_reports() -> None:
    props = TapUdemyBusiness.config_jsonschema["properties"]
    bounds = {name: (props[name].get("minimum"), props[name].get("maximum")) for name in props}
    assert bounds["page_size"] == (1, 100)
    assert bounds["lookback_days"] == (0, 3650)
    assert bounds["max_concurrent_requests"] == (1, 64)
    assert bounds["request_timeout"] == (1, 3600)
    assert bounds["max_retries"] == (0, 100)
    assert bounds["max_retry_seconds"] == (1, 86400)
    assert bounds["organization_id"] == (1, None)


@pytest.mark.parametrize("span", ["day", "week", "month"])
def test_aggregate_span_takes_day_week_or_month(span: str) -> None:
    assert _tap(aggregate_span=span).config["aggregate_span"] == span


def test_aggregate_span_defaults_to_day() -> None:
    assert _tap().config["aggregate_span"] == "day"
    # Blank, as an empty environment variable gives it, is unset: the default applies.
    assert _tap(aggregate_span="").config["aggregate_span"] == "day"
    prop = TapUdemyBusiness.config_jsonschema["properties"]["aggregate_span"]
    assert prop["enum"] == ["day", "week", "month"]
    assert prop["title"] == "Aggregate span"


def test_every_numeric_and_boolean_setting_is_covered() -> None:
    """A new number or flag must join AS_STRINGS, so the CLI test below exercises it."""
    TapUdemyBusiness.append_builtin_config(TapUdemyBusiness.config_jsonschema)
    props = TapUdemyBusiness.config_jsonschema["properties"]
    scalar = {
        name
        for name, prop in props.items()
        if {"integer", "number", "boolean"} & set(prop.get("type", []))
    }
    assert scalar == {"organization_id", *AS_STRINGS}


def test_environment_strings_become_typed_values_in_the_config(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("TAP_UDEMY_BUSINESS_")]:
        monkeypatch.delenv(name)
    env = {**_portal_env(portal), **{_env_var(k): v for k, v in AS_STRINGS.items()}}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = TapUdemyBusiness(config={}, parse_env_config=True).config
    assert config["organization_id"] == portal.organization_id
    assert type(config["organization_id"]) is int
    assert config["page_size"] == 7
    assert config["lookback_days"] == 2
    assert config["request_timeout"] == 30
    assert config["max_retry_seconds"] == 60.5
    assert config["max_retries"] == 3
    assert config["sandbox"] is False
    assert config["flattening_enabled"] is False
    assert config["flattening_max_depth"] == 2


def test_every_number_and_flag_works_as_a_string_through_config_env(
    portal: SandboxPortal, tmp_path: t.Any
) -> None:
    """The variables Meltano exports (TAP_UDEMY_BUSINESS_<SETTING>), all strings, drive a sync."""
    from .conftest import catalog_selecting, expected_records

    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(catalog_selecting(portal.tap_config(), ["courses"])))
    env = {
        **_portal_env(portal),
        **{_env_var(k): v for k, v in AS_STRINGS.items() if v},
        _env_var("organization_id"): f"{portal.organization_id}",
        _env_var("aggregate_span"): "day",
    }
    assert all(isinstance(value, str) for value in env.values())
    done = _run_cli(env, f"--catalog={catalog}")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    records = [
        message["record"]
        for message in map(json.loads, done.stdout.splitlines())
        if message["type"] == "RECORD"
    ]
    assert {record["id"] for record in records} == {
        record["id"] for record in expected_records(portal, "courses")
    }
    # page_size="7" reached the API: the courses were read 7 at a time.
    assert any(
        r.path.endswith("/courses/list/") and r.query.get("page_size") == "7"
        for r in portal.requests
    )


def test_discovery_through_config_env_takes_string_numbers(portal: SandboxPortal) -> None:
    env = {
        **_portal_env(portal),
        _env_var("request_timeout"): "30",
        _env_var("max_retry_seconds"): "60.5",
        _env_var("sandbox"): "false",
    }
    done = _run_cli(env, "--discover")
    assert done.returncode == 0, done.stderr
    assert {s["tap_stream_id"] for s in json.loads(done.stdout)["streams"]} >= {"courses"}
    assert "Config validation failed" not in done.stderr


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("page_size", "five"),
        ("page_size", "500"),
        ("organization_id", "abc"),
        ("request_timeout", "1e12"),
        ("lookback_days", "-3"),
        ("max_retries", "1000"),
        ("sandbox", "maybe"),
        ("aggregate_span", "year"),
    ],
)
def test_config_env_refuses_a_bad_value_in_one_line_naming_it(
    portal: SandboxPortal, setting: str, value: str
) -> None:
    env = {**_portal_env(portal), _env_var(setting): value}
    done = _run_cli(env)
    assert done.returncode != 0
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(_error_lines(done.stderr, f"'{setting}'")) == 1, done.stderr
    assert portal.client_secret not in done.stderr
