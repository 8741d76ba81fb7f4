"""singer-sdk's standard tap tests, run against the in-process sandbox (`sandbox: true`)."""

from __future__ import annotations

import gc
import threading
import time

from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.templates import TapTestTemplate

from tap_udemy_business.tap import TapUdemyBusiness

#: The prefix of the threads of every portal a tap starts (see `TapUdemyBusiness.sandbox`).
TAP_PORTAL_THREADS = f"{TapUdemyBusiness.name}-sandbox-"

TestTapUdemyBusiness = get_tap_test_class(
    tap_class=TapUdemyBusiness,
    config={"sandbox": True, "start_date": "2026-11-01"},
    suite_config=SuiteConfig(ignore_no_records_for_streams=[]),
    parse_env_config=False,
)


def tap_portal_threads() -> list[threading.Thread]:
    """The threads of tap portals that are alive: serving ones and connection ones."""
    return [t for t in threading.enumerate() if t.name.startswith(TAP_PORTAL_THREADS)]


def test_the_standard_tests_leave_no_sandbox_portal_behind() -> None:
    """Run after the suite above (pytest keeps file order): no tap it made left a portal.

    The suite makes a tap for each test and stops none. The taps it dropped are gone with
    their portals. singer-sdk's tap-level templates keep the last tap each ran (as `tap`)
    for as long as the test class lives, so their portals may still serve; once the
    templates let go of them, nothing of any portal may run.
    """
    gc.collect()
    templates = [
        method.__self__
        for method in vars(TestTapUdemyBusiness).values()
        if isinstance(getattr(method, "__self__", None), TapTestTemplate)
    ]
    held = [template for template in templates if isinstance(template.tap, TapUdemyBusiness)]
    assert held, "the SDK's templates no longer keep their taps: simplify this test"
    # Dropped taps stopped their portals during `collect`: only the held taps' may serve.
    serving = [t for t in tap_portal_threads() if not t.name.endswith("-connection")]
    assert len(serving) <= len(held)
    for template in held:
        del template.tap
    del held, templates
    gc.collect()
    deadline = time.monotonic() + 10
    for thread in tap_portal_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    assert [thread.name for thread in tap_portal_threads()] == []
