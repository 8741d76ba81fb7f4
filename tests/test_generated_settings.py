"""The settings are written once, in code, and copied by a script wherever they are described.

`scripts/sync_settings.py` writes `--about`'s settings into the README's table, meltano.yml and
the Hub definition; here, each file holds exactly what it would write. The secrets the tap
redacts are the ones the schema marks secret (which Meltano shows as `sensitive`).
"""

from __future__ import annotations

import json
import typing as t

import pytest

from scripts import sync_settings
from tap_udemy_business.client import UdemyStream
from tap_udemy_business.settings import (
    CONFIG_SCHEMA,
    DEFAULT_PAGE_SIZE,
    SECRET_SETTINGS,
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


DEFAULTED = {
    name: spec["default"] for name, spec in CONFIG_SCHEMA["properties"].items() if "default" in spec
}


def test_every_setting_the_code_reads_without_a_fallback_has_a_default() -> None:
    # The streams read `config[name]`: the SDK fills each schema default in (and `null` or
    # a blank string, as a config file or an empty environment variable writes "unset",
    # does not block it).
    assert {"page_size", "max_concurrent_requests", "request_timeout", "max_response_mb",
            "max_retries", "max_retry_seconds", "lookback_days", "aggregate_span",
            "sandbox"} <= set(DEFAULTED)  # fmt: skip


@pytest.mark.parametrize("unset", ["absent", None, "", "  "])
@pytest.mark.parametrize("name", sorted(DEFAULTED))
def test_an_unset_setting_takes_its_default(name: str, unset: str | None) -> None:
    account = {"client_id": "id", "client_secret": "secret", "organization_id": 1}
    config: dict[str, t.Any] = (
        {**account, "portal_name": "acme"} if name == "sandbox" else {"sandbox": True}
    )
    if unset != "absent":
        config[name] = unset
    tap = TapUdemyBusiness(config=config, parse_env_config=False)
    assert tap.config[name] == DEFAULTED[name]
    if name == "page_size":
        stream = tap.streams["courses"]
        assert isinstance(stream, UdemyStream)
        assert stream.page_size == DEFAULT_PAGE_SIZE
