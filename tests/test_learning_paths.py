"""Learning paths: served and synced like the other streams; absent on some portals."""

from __future__ import annotations

import typing as t

import pytest

from .conftest import assert_same_rows, catalog_selecting, expected_records, run_tap

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal


def test_paths_are_made_of_catalog_courses(portal: SandboxPortal) -> None:
    config = portal.tap_config()
    streams = ("courses", "learning_paths", "user_path_activity")
    result = run_tap(config, catalog=catalog_selecting(config, streams))
    course_ids = {c["id"] for c in result.records["courses"]}
    paths = result.records["learning_paths"]
    assert paths
    for path in paths:
        items = [item for section in path["sections"] for item in section["items"]]
        assert path["number_of_content_items"] == len(items)
        assert {i["id"] for i in items if i["type"] == "course"} <= course_ids
    path_ids = {p["id"] for p in paths}
    assert {r["path_id"] for r in result.records["user_path_activity"]} <= path_ids
    assert_same_rows(
        "user_path_activity",
        result.records["user_path_activity"],
        expected_records(portal, "user_path_activity"),
    )


@pytest.mark.parametrize("status", [403, 404])
def test_a_portal_without_learning_paths_syncs_the_rest(
    fresh_portal: SandboxPortal, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fresh_portal.learning_paths_status = status
    result = run_tap(fresh_portal.tap_config())
    assert "learning_paths" not in result.records
    assert "user_path_activity" not in result.records
    assert len(result.records["courses"]) == len(expected_records(fresh_portal, "courses"))
    assert result.records["user_progress"]
    skipped = [r.getMessage() for r in caplog.records if "Skipping stream" in r.getMessage()]
    assert len(skipped) == 2
    assert all(str(status) in line for line in skipped)
