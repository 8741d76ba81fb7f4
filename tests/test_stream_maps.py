"""The PII example of meltano.yml (`tap-udemy-business--pii`): e-mails and names hashed in the tap.

The stream maps are read from meltano.yml itself, so the documented example is the tested one;
the salt is put in as Meltano would expand `${UDEMY_PII_SALT}`. (tests/test_meltano.py also runs
the plugin through Meltano.)
"""

from __future__ import annotations

import hashlib
import json
import typing as t
from pathlib import Path

import pytest
import yaml

from .conftest import REPORTING_STREAMS, assert_same_rows, ground_truth_by_day, run_tap

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal

    from .conftest import SyncResult

REPO = Path(__file__).resolve().parents[1]
SALT = "pepper-for-tests"
HASHED = {
    "user_activity": ("user_email", "user_name", "user_surname"),
    "user_course_activity": ("user_email", "user_name", "user_surname", "assigned_by"),
    "user_progress": ("user_email", "user_name", "user_surname"),
    "user_path_activity": ("user_email", "user_name", "user_surname"),
}


def pii_plugin_config() -> dict[str, t.Any]:
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    plugin = next(
        p for p in project["plugins"]["extractors"] if p["name"] == "tap-udemy-business--pii"
    )
    assert plugin["inherit_from"] == "tap-udemy-business"
    config = plugin["config"]
    assert config["stream_map_config"]["hash_salt"] == "${UDEMY_PII_SALT}"
    return {**config, "stream_map_config": {"hash_salt": SALT}}


def salted_sha256(value: str) -> str:
    return hashlib.sha256((SALT + value).encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def hashed_sync(portal: SandboxPortal) -> SyncResult:
    return run_tap({**portal.tap_config(), **pii_plugin_config()})


def test_emails_and_names_are_salted_hashes(portal: SandboxPortal, hashed_sync: SyncResult) -> None:
    for stream, fields in HASHED.items():
        # Nulls stay null, the rest is hashed; everything else passes through unchanged.
        expected = [
            {**r, **{f: salted_sha256(r[f]) if r[f] else r[f] for f in fields}}
            for r in ground_truth_by_day(portal, stream)
        ]
        assert_same_rows(stream, hashed_sync.records[stream], expected)
        # The key is computed before the maps run: no e-mail hash of the map's salt in it.
        assert all(r["learner_key"][:2] in {"e:", "u:", "a:"} for r in hashed_sync.records[stream])


def test_no_email_or_name_leaves_the_tap_in_clear(
    portal: SandboxPortal, hashed_sync: SyncResult
) -> None:
    output = json.dumps(hashed_sync.messages, ensure_ascii=False)
    secrets: set[str] = set()
    for stream in REPORTING_STREAMS:
        for record in ground_truth_by_day(portal, stream):
            secrets.update(
                v for f in HASHED[stream] if isinstance(v := record[f], str) and "@" in v
            )
    assert len(secrets) > 10, "too few e-mails in the sandbox for the test to mean anything"
    leaked = [s for s in secrets if s in output]
    assert not leaked, f"in clear in the tap's output: {leaked[:3]}"


def test_learning_path_editors_are_dropped(hashed_sync: SyncResult) -> None:
    schema = hashed_sync.schemas["learning_paths"]["schema"]["properties"]
    assert "editors" not in schema
    assert hashed_sync.records["learning_paths"]
    assert all("editors" not in r for r in hashed_sync.records["learning_paths"])


def test_hashed_fields_keep_a_nullable_string_schema(hashed_sync: SyncResult) -> None:
    for stream, fields in HASHED.items():
        properties = hashed_sync.schemas[stream]["schema"]["properties"]
        for field in fields:
            assert set(properties[field]["type"]) == {"string", "null"}, (stream, field)


def test_same_input_same_hash_so_joins_still_work(hashed_sync: SyncResult) -> None:
    """A learner's hashed e-mail is the same in every stream, so tables still join on it."""
    by_user: dict[int, set[str]] = {}
    for record in hashed_sync.records["user_course_activity"]:
        by_user.setdefault(record["user_id"], set()).add(record["user_email"])
    assert by_user
    assert all(len(emails) == 1 for emails in by_user.values())
    progress_emails = {r["user_email"] for r in hashed_sync.records["user_progress"]}
    assert progress_emails <= {e for emails in by_user.values() for e in emails}


def test_without_a_salt_the_sync_stops_instead_of_hashing_weakly(portal: SandboxPortal) -> None:
    """Meltano passes an unset `${UDEMY_PII_SALT}` as null: the maps then fail, closed."""
    config = {
        **portal.tap_config(),
        **pii_plugin_config(),
        "stream_map_config": {"hash_salt": None},
    }
    with pytest.raises(TypeError, match="NoneType"):
        run_tap(config)
