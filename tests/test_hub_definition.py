"""Three descriptions of the extractor agree: the Hub definition, meltano.yml, and `--about`.

`tap-udemy-business --about --format=json` is the source of truth (it is generated from the code's
settings schema and capabilities); hub/tap-udemy-business.yml and meltano.yml's extractor must
carry the same settings, in the same order, with the Meltano `kind` matching the JSON type, the
same label and description, `sensitive` exactly for the secrets, and the same capabilities.
On a mismatch the failure prints the settings block that the YAML files should hold (the
block `scripts/sync_settings.py` writes, from the same `meltano_settings`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from importlib.metadata import metadata
from pathlib import Path

import pytest
import yaml

from scripts.sync_settings import meltano_settings

REPO = Path(__file__).resolve().parents[1]
TAP = Path(sys.executable).parent / "tap-udemy-business"
HUB_REQUIRED = (
    "name", "namespace", "variant", "label", "pip_url", "repo", "docs", "description",
    "capabilities", "settings", "settings_group_validation", "keywords",
)  # fmt: skip


@pytest.fixture(scope="module")
def about() -> dict[str, t.Any]:
    proc = subprocess.run(
        [str(TAP), "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        f"`tap-udemy-business --about --format=json` failed:\n{proc.stderr}"
    )
    return t.cast("dict[str, t.Any]", json.loads(proc.stdout))


@pytest.fixture(scope="module")
def hub() -> dict[str, t.Any]:
    return t.cast(
        "dict[str, t.Any]", yaml.safe_load((REPO / "hub" / "tap-udemy-business.yml").read_text())
    )


@pytest.fixture(scope="module")
def meltano_extractor() -> dict[str, t.Any]:
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    return t.cast(
        "dict[str, t.Any]",
        next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-udemy-business"),
    )


def assert_settings_match(
    where: str, settings: list[dict[str, t.Any]], about: dict[str, t.Any]
) -> None:
    expected = meltano_settings(about)
    hint = (
        f"\n{where} is out of date with `tap-udemy-business --about`; its settings should be:\n"
        + yaml.safe_dump(expected, sort_keys=False, allow_unicode=True, width=96)
    )
    assert [s["name"] for s in settings] == [s["name"] for s in expected], hint
    for got, want in zip(settings, expected, strict=True):
        for field in ("kind", "label", "description"):
            assert got.get(field) == want[field], f"{want['name']}.{field}{hint}"
        assert bool(got.get("sensitive")) == bool(want.get("sensitive")), f"{want['name']}{hint}"


def test_hub_definition_has_what_meltano_hub_needs(hub: dict[str, t.Any]) -> None:
    missing = [field for field in HUB_REQUIRED if not hub.get(field)]
    assert not missing, f"hub/tap-udemy-business.yml lacks {missing}"
    assert "meltano_sdk" in hub["keywords"]
    assert hub["repo"].rstrip("/").split("/")[-2] == hub["variant"], "variant = repo owner"
    assert hub["docs"].endswith(f"/extractors/{hub['name']}--{hub['variant']}")
    package = metadata("tap-udemy-business")  # pyproject's [project], as installed
    assert hub["pip_url"] == package["Name"]
    assert hub["description"] == package["Summary"]
    for setting in hub["settings"]:
        assert setting.get("kind"), setting["name"]
        assert setting.get("description"), setting["name"]


def test_hub_and_meltano_yml_describe_the_same_plugin(
    hub: dict[str, t.Any], meltano_extractor: dict[str, t.Any]
) -> None:
    for field in ("name", "namespace", "executable", "capabilities", "settings_group_validation"):
        assert hub[field] == meltano_extractor[field], field
    assert hub["settings"] == meltano_extractor["settings"]
    assert "variant" not in meltano_extractor, "a variant makes Meltano look the plugin up on Hub"
    assert meltano_extractor["pip_url"] == "-e ."


def test_capabilities_agree_with_about(
    hub: dict[str, t.Any], meltano_extractor: dict[str, t.Any], about: dict[str, t.Any]
) -> None:
    assert hub["name"] == about["name"]
    assert set(hub["capabilities"]) == set(about["capabilities"])
    assert set(meltano_extractor["capabilities"]) == set(about["capabilities"])


@pytest.mark.parametrize("where", ["hub/tap-udemy-business.yml", "meltano.yml"])
def test_settings_agree_with_about(
    where: str,
    hub: dict[str, t.Any],
    meltano_extractor: dict[str, t.Any],
    about: dict[str, t.Any],
) -> None:
    settings = hub["settings"] if where.startswith("hub") else meltano_extractor["settings"]
    assert_settings_match(where, settings, about)


def test_settings_group_validation_names_real_settings(
    hub: dict[str, t.Any], about: dict[str, t.Any]
) -> None:
    names = set(about["settings"]["properties"])
    for group in hub["settings_group_validation"]:
        assert set(group) <= names, group
    # Each group is a way to run: either the sandbox, or the account's credentials and address.
    assert ["sandbox"] in hub["settings_group_validation"]
    required = set(about["settings"].get("required", []))
    assert all(required <= set(group) for group in hub["settings_group_validation"])


def test_each_json_type_has_the_meltano_kind_meltano_reads_right(hub: dict[str, t.Any]) -> None:
    # Checked here by hand, not by the mapping that wrote them: a date is `date_iso8601`, and
    # a number is a `string` (Meltano 4.4 cannot pass a `decimal` from the environment on).
    kinds = {setting["name"]: setting["kind"] for setting in hub["settings"]}
    assert kinds["start_date"] == kinds["end_date"] == "date_iso8601"
    assert kinds["request_timeout"] == kinds["max_retry_seconds"] == "string"
    assert kinds["page_size"] == kinds["organization_id"] == "integer"
    assert kinds["sandbox"] == "boolean"
    assert kinds["stream_maps"] == "object"
    sensitive = [setting["name"] for setting in hub["settings"] if setting.get("sensitive")]
    assert sensitive == ["client_id", "client_secret"]
