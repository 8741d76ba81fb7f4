"""Configuration: refused before any request, one line per problem, naming the setting."""

from __future__ import annotations

import subprocess
import sys
import typing as t

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_udemy_business.tap import TapUdemyBusiness

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal

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
