"""A second oracle: the 2018 guide's own example bodies, through the tap's real parsing code.

The sandbox was written from the same assumptions as the tap; these bodies were not. See
`tests/fixtures/guide/README.md` for how they were transcribed.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import jsonschema
import pytest

from tap_udemy_business.pages import parse_page
from tap_udemy_business.schema_files import schema_path
from tap_udemy_business.tap import TapUdemyBusiness

FIXTURES = Path(__file__).parent / "fixtures" / "guide"
URL = "https://company.udemy.com/api-2.0/organizations/8888/"
CASES = {
    "courses_curl.json": "courses",
    "courses_sample.json": "courses",
    "user_activity_curl.json": "user_activity",
    "user_activity_sample.json": "user_activity",
}


@pytest.fixture(scope="module")
def tap() -> TapUdemyBusiness:
    """A tap configured as the guide's example is: the organization id written as a string."""
    config = {
        "client_id": "guide-client-id",
        "client_secret": "guide-client-secret",
        "organization_id": "8888",
        "portal_name": "company",
    }
    return TapUdemyBusiness(config=config, parse_env_config=False)


def records_from(tap: TapUdemyBusiness, fixture: str) -> list[dict[str, t.Any]]:
    """The records the tap emits for one example body."""
    stream = tap.streams[CASES[fixture]]
    page = parse_page((FIXTURES / fixture).read_bytes(), URL)
    if CASES[fixture] != "courses":
        stream.stamp(page, ("2018-04-21", "2018-04-21"), {})  # type: ignore[attr-defined]
    return t.cast("list[dict[str, t.Any]]", stream.checked(page))  # type: ignore[attr-defined]


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_the_guides_examples_become_valid_records(tap: TapUdemyBusiness, fixture: str) -> None:
    schema = json.loads(schema_path(CASES[fixture]).read_text())
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    sent = json.loads((FIXTURES / fixture).read_text())["results"]
    records = records_from(tap, fixture)
    assert len(records) == len(sent) == 1
    for original, record in zip(sent, records, strict=True):
        assert not list(validator.iter_errors(record)), fixture
        # Every documented field arrives as sent; none is set aside or dropped.
        assert "undocumented_fields" not in record or not record["undocumented_fields"]
        assert {k: record[k] for k in original} == original


def test_the_guides_user_activity_rows_are_keyed_by_learner_and_day(
    tap: TapUdemyBusiness,
) -> None:
    curl = records_from(tap, "user_activity_curl.json")[0]
    sample = records_from(tap, "user_activity_sample.json")[0]
    for record in (curl, sample):
        assert record["learner_key"].startswith("e:")
        assert (record["from_date"], record["to_date"]) == ("2018-04-21", "2018-04-21")
        assert record["id"] in {1234, 12345}  # kept as data, not the key
    assert curl["learner_key"] != sample["learner_key"]  # josh.obrien@udemy.com vs @ufb.com
    again = records_from(tap, "user_activity_sample.json")[0]
    assert again["learner_key"] == sample["learner_key"]
    # The sample writes the address in mixed case: e-mail is case-insensitive, the key too.
    stream = tap.streams["user_activity"]
    lower = {**sample, "user_email": sample["user_email"].lower()}
    assert stream._learner_keys.learner(lower, "2018-04-21") == sample["learner_key"]  # type: ignore[attr-defined]


def test_the_guides_next_links_are_followed_as_given(tap: TapUdemyBusiness) -> None:
    page = parse_page((FIXTURES / "courses_curl.json").read_bytes(), URL)
    assert page.count == 2829
    assert page.next_url is not None
    assert "fields%5Bcourses%5D=%40all" in page.next_url
    assert tap.config["organization_id"] == 8888
