"""singer-sdk's standard tap tests, run against the in-process sandbox (`sandbox: true`)."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_udemy_business.tap import TapUdemyBusiness

TestTapUdemyBusiness = get_tap_test_class(
    tap_class=TapUdemyBusiness,
    config={"sandbox": True, "start_date": "2026-11-01"},
    suite_config=SuiteConfig(ignore_no_records_for_streams=[]),
    parse_env_config=False,
)
