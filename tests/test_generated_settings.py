"""The settings are written once, in code, and copied by a script wherever they are described.

`scripts/sync_settings.py` writes `--about`'s settings into the README's table, meltano.yml and
the Hub definition; here, each file holds exactly what it would write. The secrets the tap
redacts are the ones the schema marks secret (which Meltano shows as `sensitive`).
"""

from __future__ import annotations

import json

import pytest

from scripts import sync_settings
from tap_udemy_business.client import UdemyStream
from tap_udemy_business.settings import (
    CONFIG_SCHEMA,
    DEFAULT_PAGE_SIZE,
    SECRET_SETTINGS,
    coerce_config,
)
from tap_udemy_business.tap import TapUdemyBusiness


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return {
        str(path.relative_to(sync_settings.ROOT)): text
        for path, text in sync_settings.generated().items()
    }


@pytest.mark.parametrize("where", ["README.md", "meltano.yml", "hub/tap-udemy-business.yml"])
def test_each_description_of_the_settings_is_the_generated_one(
    generated: dict[str, str], where: str
) -> None:
    assert (sync_settings.ROOT / where).read_text() == generated[where], (
        f"{where} is out of date: run python scripts/sync_settings.py"
    )


def test_the_generated_blocks_hold_every_setting(generated: dict[str, str]) -> None:
    names = list(json.loads(sync_settings.about("json"))["settings"]["properties"])
    assert "client_secret" in names
    readme = generated["README.md"].split(sync_settings.README_MARKERS[0])[1]
    assert all(f"| {name} |" in readme for name in names)
    for where in ("meltano.yml", "hub/tap-udemy-business.yml"):
        block = generated[where].split(sync_settings.YAML_MARKERS[0])[1]
        block = block.split(sync_settings.YAML_MARKERS[1])[0]
        assert [line.split(": ")[1] for line in block.splitlines() if "- name: " in line] == names


def test_secret_settings_are_those_the_schema_marks_secret() -> None:
    marked = {name for name, spec in CONFIG_SCHEMA["properties"].items() if spec.get("secret")}
    assert set(SECRET_SETTINGS) == marked == {"client_id", "client_secret"}
    sensitive = [
        s["name"]
        for s in sync_settings.meltano_settings({"settings": CONFIG_SCHEMA})
        if s.get("sensitive")
    ]
    assert sensitive == list(SECRET_SETTINGS)


def test_a_null_setting_with_a_default_is_unset_so_the_default_applies() -> None:
    # Streams read `config["page_size"]` as the schema's default fills it: `null` must not
    # block the default (as a Meltano or hand-written config may write an unset value).
    coerced = coerce_config({"page_size": None, "start_date": None}, CONFIG_SCHEMA)
    assert "page_size" not in coerced
    assert coerced == {"start_date": None}
    tap = TapUdemyBusiness(config={"sandbox": True, "page_size": None}, parse_env_config=False)
    assert tap.config["page_size"] == DEFAULT_PAGE_SIZE
    stream = tap.streams["courses"]
    assert isinstance(stream, UdemyStream)
    assert stream.page_size == DEFAULT_PAGE_SIZE
