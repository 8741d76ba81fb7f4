"""Hostile responses: whatever a page holds, the tap handles it or stops with a clear error.

It never hangs, never loops and never emits a record that fails its schema.
"""

from __future__ import annotations

import copy
import json
import typing as t

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_udemy_business.concurrency import PageReader, PagingError, Query
from tap_udemy_business.data_errors import InvalidBody, UnusableData
from tap_udemy_business.errors import UdemyFatalError
from tap_udemy_business.list_page import Page
from tap_udemy_business.pages import parse_page
from tap_udemy_business.records import RecordChecker
from tap_udemy_business.schema_files import schema_path
from tap_udemy_business.tap import TapUdemyBusiness

URL = "https://acme.udemy.com/api-2.0/organizations/1/analytics/user-progress/?page=1"

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
links = (
    st.none()
    | st.text(max_size=30)
    | st.sampled_from(
        ["https://acme.udemy.com/x?page=2", "ftp://x/y", "/relative?page=2", "http://", 5]
    )
)


def _record_like(schema: dict[str, t.Any]) -> st.SearchStrategy[dict[str, t.Any]]:
    """Records with the schema's keys, each holding any JSON value, sometimes a huge string."""
    names = list(schema["properties"])
    huge = st.integers(min_value=10_000, max_value=50_000).map(lambda n: "é" * n)
    value = json_values | huge
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, value))


@pytest.mark.slow
@given(body=json_values | st.binary(max_size=200))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_body_parses_or_fails_clearly(body: t.Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        page = parse_page(content, URL)
    except (InvalidBody, UnusableData) as exc:
        assert URL in str(exc)
        return
    assert isinstance(page.count, int)
    assert isinstance(page.records, list)
    assert all(isinstance(r, dict) for r in page.records)
    assert page.next_url is None or page.next_url.startswith("http")


@given(
    results=st.none() | st.lists(json_values, max_size=3) | json_scalars,
    count=json_values,
    next_url=links,
)
@settings(max_examples=300)
def test_envelopes_of_the_wrong_shape_are_refused(
    results: t.Any, count: t.Any, next_url: t.Any
) -> None:
    body = {"count": count, "next": next_url, "previous": None, "results": results}
    try:
        parse_page(json.dumps(body).encode(), URL)
    except InvalidBody:
        assert "Infinity" in json.dumps(body) or "NaN" in json.dumps(body)
        return
    except UnusableData as exc:
        assert "Unexpected response" in str(exc)
        return
    assert isinstance(count, int)
    assert not isinstance(count, bool)
    assert isinstance(results, list)


@pytest.fixture(scope="module")
def progress_stream() -> t.Any:
    tap = TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False)
    return tap.streams["user_progress"]


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_records_that_break_the_schema_are_never_emitted_nor_stop_the_sync(
    progress_stream: t.Any, data: t.Any
) -> None:
    """Invalid values are set aside, never emitted, never lost; only a broken key is fatal."""
    schema = json.loads(schema_path("user_progress").read_text())
    records = data.draw(st.lists(_record_like(schema), min_size=1, max_size=3))
    sent = copy.deepcopy(records)
    page = Page(url=URL, count=len(records), next_url=None, records=records)
    validator = jsonschema.Draft202012Validator(schema)
    key_fields = {"learner_key", "course_id", "item_id", "from_date", "to_date"}

    def key_broken(record: dict[str, t.Any]) -> bool:
        return any(
            not validator.evolve(schema=schema["properties"][name]).is_valid(record.get(name))
            or record.get(name) is None
            for name in key_fields
        )

    try:
        emitted = progress_stream.checked(page)
    except UdemyFatalError as exc:
        assert URL in str(exc)
        assert any(key_broken(r) for r in sent)
        return
    assert not any(key_broken(r) for r in sent)
    assert all(validator.is_valid(r) for r in emitted)
    for original, record in zip(sent, emitted, strict=True):
        kept = record.get("undocumented_fields") or {}
        for name, value in original.items():
            # Every value sent is still there: in its field, or set aside by name.
            assert record.get(name) == value or kept.get(name) == value, name


@given(hops=st.integers(min_value=1, max_value=6))
@settings(max_examples=30, deadline=None)
def test_next_links_that_loop_stop_a_sequential_read(hops: int) -> None:
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1&page="

    def fetch(url: str) -> Page:
        number = int(url.rsplit("=", 1)[1])
        following = base + str(number % hops + 1)  # the last page links back to the first
        return Page(url=url, count=10**9, next_url=following, records=[{"id": number}])

    read: list[Page] = []

    def read_all() -> None:
        for _, page in PageReader(fetch, concurrency=1).read([Query(base + "1")]):
            read.append(page)
            assert len(read) <= hops

    with pytest.raises(PagingError, match="loop"):
        read_all()
    assert len(read) == hops


@given(hops=st.integers(min_value=2, max_value=6))
@settings(max_examples=30, deadline=None)
def test_a_concurrent_read_whose_last_page_links_back_stops_after_count_pages(hops: int) -> None:
    base = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/?page_size=1&page="

    def fetch(url: str) -> Page:
        number = int(url.rsplit("=", 1)[1])
        return Page(url=url, count=hops, next_url=base + "1", records=[{"id": number}])

    read: list[Page] = []

    def read_all() -> None:
        for _, page in PageReader(fetch, concurrency=4).read([Query(base + "1")]):
            read.append(page)

    with pytest.raises(PagingError, match="loop"):
        read_all()
    assert [p.records[0]["id"] for p in read] == list(range(1, hops + 1))


def test_a_float_in_an_integer_field_is_judged_by_its_value(progress_stream: t.Any) -> None:
    """5.0 is an integer to JSON Schema and 5.5 is not: the same shape, other verdicts."""
    base = {
        "_class": "user_progress",
        "learner_key": "e:0123",
        "course_id": 1,
        "item_id": 2,
        "from_date": "2026-01-01",
        "to_date": "2026-01-31",
    }
    fine = Page(url=URL, count=1, next_url=None, records=[{**base, "user_id": 5.0}])
    (record,) = progress_stream.checked(fine)
    assert record["user_id"] == 5
    assert type(record["user_id"]) is int
    bad = Page(url=URL, count=1, next_url=None, records=[{**base, "user_id": 5.5}])
    (record,) = progress_stream.checked(bad)
    assert record["user_id"] is None
    assert record["undocumented_fields"] == {"user_id": 5.5}
    broken_key = Page(url=URL, count=1, next_url=None, records=[{**base, "item_id": 2.5}])
    with pytest.raises(UdemyFatalError, match="item_id"):
        progress_stream.checked(broken_key)


def test_values_a_schema_constrains_are_judged_one_by_one() -> None:
    """An enum, a bound or a constrained `anyOf` member: records of one shape, other verdicts.

    Records whose values have the same types are validated once per shape only where the
    schema allows every value of those types.
    """
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": ["string", "null"], "enum": ["open", "closed", None]},
            "score": {"type": ["number", "null"], "maximum": 100},
            "code": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
            "undocumented_fields": {"type": ["object", "null"]},
        },
        "required": ["id"],
    }
    checker = RecordChecker(schema, key_fields=("id",))
    fine = {"id": 1, "status": "open", "score": 5, "code": "abc"}
    odd = {"id": 2, "status": "lost", "score": 500, "code": "abcd"}
    first, second = checker.check([dict(fine), dict(odd)], URL)
    assert first == fine
    assert second == {
        "id": 2,
        "status": None,
        "score": None,
        "code": None,
        "undocumented_fields": {"status": "lost", "score": 500, "code": "abcd"},
    }


@pytest.mark.parametrize("same_order", [True, False])
def test_fields_no_schema_documents_are_folded_away_whatever_the_key_order(
    *, same_order: bool
) -> None:
    """A page whose records share one key order is folded at once; others one by one."""
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["string", "null"]},
            "undocumented_fields": {"type": ["object", "null"]},
        },
        "required": ["id"],
    }
    checker = RecordChecker(schema, key_fields=("id",))
    page: list[dict[str, t.Any]] = [
        {"id": 1, "zone": "UTC", "name": "a", "undocumented_fields": {"api": 1}},
        {"id": 2, "zone": None, "name": "b", "undocumented_fields": None},
    ]
    if not same_order:
        page[1] = {"undocumented_fields": None, "name": "b", "zone": None, "id": 2}
    for _ in range(2):  # the second time, every shape is one validated before
        checked = checker.check(copy.deepcopy(page), URL)
        assert [dict(sorted(record.items())) for record in checked] == [
            {
                "id": 1,
                "name": "a",
                "undocumented_fields": {"undocumented_fields": {"api": 1}, "zone": "UTC"},
            },
            {
                "id": 2,
                "name": "b",
                "undocumented_fields": {"undocumented_fields": None, "zone": None},
            },
        ]
        assert all(next(reversed(record)) == "undocumented_fields" for record in checked)


def test_one_field_no_schema_documents_is_folded_away_in_every_record() -> None:
    """The usual case (a new field in every record of a page) goes the one-field way."""
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "undocumented_fields": {"type": ["object", "null"]},
        },
        "required": ["id"],
    }
    checker = RecordChecker(schema, key_fields=("id",))
    page = [{"id": n, "zone": zone} for n, zone in enumerate(["UTC", None, {"tz": 1}])]
    assert checker.check(page, URL) == [
        {"id": 0, "undocumented_fields": {"zone": "UTC"}},
        {"id": 1, "undocumented_fields": {"zone": None}},
        {"id": 2, "undocumented_fields": {"zone": {"tz": 1}}},
    ]


def test_a_page_of_known_shapes_still_sets_aside_what_does_not_fit() -> None:
    """A shape validated once lets its like through; a new one on the same page is judged."""
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "n": {"type": ["integer", "null"]}},
        "required": ["id"],
    }
    checker = RecordChecker(schema, key_fields=("id",))
    checker.check([{"id": 1, "n": 1}, {"id": 2, "n": None}], URL)
    checked = checker.check([{"id": 3, "n": 2}, {"id": 4, "n": "x"}, {"id": 5, "n": 3.0}], URL)
    assert checked == [
        {"id": 3, "n": 2},
        {"id": 4, "n": None, "undocumented_fields": {"n": "x"}},
        {"id": 5, "n": 3},
    ]
