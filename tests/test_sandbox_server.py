"""The sandbox portal over real HTTP: paging, auth, fields, filters, faults, log, CLI, speed."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import typing as t
from collections import Counter
from http.client import HTTPConnection
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tap_udemy_business.sandbox import DatasetParams, FaultParams, SandboxPortal
from tap_udemy_business.sandbox.model import CLASS_NAMES

DATA = DatasetParams(
    seed=5, learners=60, courses=30, items_per_course=6, learning_paths=3, history_days=30
)
PATHS = {
    "courses": "courses/list/",
    "learning_paths": "learning-paths/list/",
    "user_activity": "analytics/user-activity/",
    "user_course_activity": "analytics/user-course-activity/",
    "user_progress": "analytics/user-progress/",
    "user_path_activity": "analytics/user-path-activity/",
}


@pytest.fixture(scope="module")
def sandbox() -> t.Iterator[SandboxPortal]:
    """One portal for the module; tests that switch faults on restore them (see ``faulty``)."""
    with SandboxPortal(dataset=DATA) as running:
        yield running


@pytest.fixture
def faulty(sandbox: SandboxPortal) -> t.Iterator[SandboxPortal]:
    """The shared portal, with faults reset to none after the test."""
    yield sandbox
    sandbox.faults = FaultParams()


@pytest.fixture(scope="module")
def http(sandbox: SandboxPortal) -> t.Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = (sandbox.client_id, sandbox.client_secret)
        yield session


def url(portal: SandboxPortal, endpoint: str, org: int | None = None) -> str:
    org_id = portal.organization_id if org is None else org
    return f"{portal.base_url}/api-2.0/organizations/{org_id}/{PATHS[endpoint]}"


def fetch_all(
    session: requests.Session, portal: SandboxPortal, endpoint: str, params: dict[str, t.Any]
) -> tuple[list[dict[str, t.Any]], list[str]]:
    """Follow ``next`` links to the end; return the records and every URL requested."""
    records: list[dict[str, t.Any]] = []
    seen: list[str] = []
    response = session.get(url(portal, endpoint), params=params, timeout=10)
    while True:
        response.raise_for_status()
        seen.append(response.url)
        body = response.json()
        records.extend(body["results"])
        if body["next"] is None:
            return records, seen
        response = session.get(body["next"], timeout=10)


def all_fields(endpoint: str) -> dict[str, str]:
    return {f"fields[{CLASS_NAMES[endpoint]}]": "@all"}


def assert_json_error(response: requests.Response, status: int) -> dict[str, t.Any]:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body.get("detail"), str)
    return t.cast("dict[str, t.Any]", body)


# -- paging ---------------------------------------------------------------------------------
def test_first_page_has_the_default_size_and_a_next_link(
    sandbox: SandboxPortal, http: requests.Session
) -> None:
    response = http.get(url(sandbox, "courses"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == 30
    assert len(body["results"]) == 12
    assert body["previous"] is None
    assert parse_qs(urlsplit(body["next"]).query) == {"page": ["2"]}
    assert body["next"].startswith(sandbox.base_url + "/api-2.0/organizations/424242/courses/")


def test_middle_and_last_pages(sandbox: SandboxPortal, http: requests.Session) -> None:
    count = http.get(url(sandbox, "user_progress"), timeout=10).json()["count"]
    assert count > 21
    pages = -(-count // 7)
    middle = http.get(url(sandbox, "user_progress"), params={"page": 2, "page_size": 7}).json()
    assert len(middle["results"]) == 7
    assert parse_qs(urlsplit(middle["previous"]).query) == {"page_size": ["7"]}
    assert parse_qs(urlsplit(middle["next"]).query) == {"page": ["3"], "page_size": ["7"]}
    last = http.get(url(sandbox, "user_progress"), params={"page": pages, "page_size": 7}).json()
    assert last["next"] is None
    assert len(last["results"]) == count - 7 * (pages - 1)
    assert last["count"] == count


def test_page_past_the_end_is_404(sandbox: SandboxPortal, http: requests.Session) -> None:
    response = http.get(url(sandbox, "courses"), params={"page": 4}, timeout=10)
    assert assert_json_error(response, 404) == {"detail": "Invalid page."}
    assert http.get(url(sandbox, "courses"), params={"page": 3}, timeout=10).status_code == 200


def test_empty_result_is_an_empty_first_page(
    sandbox: SandboxPortal, http: requests.Session
) -> None:
    params = {"user_email": "nobody@example.invalid"}
    body = http.get(url(sandbox, "user_progress"), params=params, timeout=10).json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}
    params["page"] = "2"
    response = http.get(url(sandbox, "user_progress"), params=params, timeout=10)
    assert_json_error(response, 404)


def test_page_size_is_capped_at_100(sandbox: SandboxPortal, http: requests.Session) -> None:
    body = http.get(url(sandbox, "user_progress"), params={"page_size": 500}, timeout=10).json()
    assert body["count"] > 100
    assert len(body["results"]) == 100
    assert parse_qs(urlsplit(body["next"]).query)["page_size"] == ["500"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("page_size", "0"), ("page_size", "-3"), ("page_size", "ten"), ("page", "0"), ("page", "x")],
)
def test_invalid_paging_parameters_are_400(
    sandbox: SandboxPortal, http: requests.Session, name: str, value: str
) -> None:
    response = http.get(url(sandbox, "courses"), params={name: value}, timeout=10)
    assert assert_json_error(response, 400)["parameter"] == name


def test_links_keep_every_other_parameter(sandbox: SandboxPortal, http: requests.Session) -> None:
    emails = Counter(row["user_email"] for row in sandbox.ground_truth("user_progress"))
    email = max((e for e in emails if "+" in e), key=lambda e: emails[e])
    assert emails[email] > 2
    params = {
        "fields[user_progress]": "@all",
        "page_size": "2",
        "user_email": email,
        "to_date": (sandbox.dataset.today - dt.timedelta(days=1)).isoformat(),
        "extra": "kept as is",
    }
    records, urls = fetch_all(http, sandbox, "user_progress", params)
    assert len(urls) > 1
    for number, seen in enumerate(urls[1:], start=2):
        query = parse_qs(urlsplit(seen).query)
        assert query == {**{k: [v] for k, v in params.items()}, "page": [str(number)]}
    assert records == sandbox.ground_truth("user_progress", user_email=email)


# -- auth and routing -----------------------------------------------------------------------
def test_missing_credentials_are_401(sandbox: SandboxPortal) -> None:
    response = requests.get(url(sandbox, "courses"), timeout=10)
    assert assert_json_error(response, 401) == {"detail": "Invalid username/password."}
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_wrong_credentials_are_401(sandbox: SandboxPortal) -> None:
    response = requests.get(url(sandbox, "courses"), auth=(sandbox.client_id, "nope"), timeout=10)
    assert assert_json_error(response, 401) == {"detail": "Invalid username/password."}
    garbage = {"Authorization": "Basic !!!not-base64"}
    assert requests.get(url(sandbox, "courses"), headers=garbage, timeout=10).status_code == 401


def test_unknown_organization_and_path_are_404(
    sandbox: SandboxPortal, http: requests.Session
) -> None:
    assert_json_error(http.get(url(sandbox, "courses", org=1), timeout=10), 404)
    response = http.get(f"{sandbox.base_url}/api-2.0/organizations/424242/nope/", timeout=10)
    assert_json_error(response, 404)
    assert_json_error(http.get(sandbox.base_url + "/", timeout=10), 404)


def test_other_methods_are_405(sandbox: SandboxPortal, http: requests.Session) -> None:
    response = http.post(url(sandbox, "courses"), timeout=10)
    assert assert_json_error(response, 405)
    assert response.headers["Allow"] == "GET"


def test_head_and_malformed_requests_get_json_answers(sandbox: SandboxPortal) -> None:
    head = requests.head(url(sandbox, "courses"), timeout=10)
    assert head.status_code == 405
    assert head.headers["Content-Type"] == "application/json"
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as raw:
        raw.sendall(b"GARBAGE\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head_part, _, body = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type: application/json" in head_part
    assert isinstance(json.loads(body)["detail"], str)


# -- fields ---------------------------------------------------------------------------------
def keys_of(
    http: requests.Session, portal: SandboxPortal, endpoint: str, params: dict[str, str]
) -> set[str]:
    results = http.get(url(portal, endpoint), params=params, timeout=10).json()["results"]
    assert results
    keys = {frozenset(row) for row in results}
    assert len(keys) == 1
    return set(next(iter(keys)))


@pytest.mark.parametrize("endpoint", ["courses", "user_course_activity", "user_activity"])
def test_field_sets(sandbox: SandboxPortal, http: requests.Session, endpoint: str) -> None:
    record = sandbox.ground_truth(endpoint)[0]
    extra = {"_class"} | ({"id"} & set(record))
    fields = f"fields[{CLASS_NAMES[endpoint]}]"
    sets = sandbox.dataset.field_sets(endpoint)
    for name in ("@min", "@default"):
        expected = (set(sets[name]) & set(record)) | extra
        assert keys_of(http, sandbox, endpoint, {fields: name}) == expected
    default = (set(sets["@default"]) & set(record)) | extra
    assert keys_of(http, sandbox, endpoint, {}) == default
    assert keys_of(http, sandbox, endpoint, {fields: "@all"}) == set(record)


def test_field_list_ignores_unknown_names(sandbox: SandboxPortal, http: requests.Session) -> None:
    keys = keys_of(http, sandbox, "courses", {"fields[course]": "title,no_such_field"})
    assert keys == {"_class", "id", "title"}
    keys = keys_of(http, sandbox, "user_progress", {"fields[user_progress]": "course_id"})
    assert keys == {"_class", "course_id"}


def test_fields_for_another_class_are_ignored(
    sandbox: SandboxPortal, http: requests.Session
) -> None:
    default = keys_of(http, sandbox, "courses", {})
    assert keys_of(http, sandbox, "courses", {"fields[courses]": "@min"}) == default
    assert keys_of(http, sandbox, "courses", {"fields[user_progress]": "title"}) == default


# -- filters --------------------------------------------------------------------------------
def test_course_id_and_user_email_filters(sandbox: SandboxPortal, http: requests.Session) -> None:
    everything = sandbox.ground_truth("user_course_activity")
    course_id = everything[0]["course_id"]
    email = next(row["user_email"] for row in everything if "@" in row["user_email"])
    filters: list[tuple[str, t.Any]] = [("course_id", course_id), ("user_email", email)]
    for name, value in filters:
        records, _ = fetch_all(
            http,
            sandbox,
            "user_course_activity",
            {name: value, **all_fields("user_course_activity")},
        )
        assert records
        assert len(records) < len(everything)
        assert all(row[name] == value for row in records)
        assert records == sandbox.ground_truth("user_course_activity", **{name: value})


def test_date_filters(sandbox: SandboxPortal, http: requests.Session) -> None:
    today = sandbox.dataset.today
    first, last = today - dt.timedelta(days=20), today - dt.timedelta(days=10)
    params = {"from_date": first.isoformat(), "to_date": last.isoformat()}
    records, _ = fetch_all(
        http, sandbox, "user_progress", {**params, **all_fields("user_progress")}
    )
    assert records
    assert len(records) < len(sandbox.ground_truth("user_progress"))
    assert all(
        first.isoformat() <= row["item_start_time"][:10] <= last.isoformat() for row in records
    )
    assert records == sandbox.ground_truth("user_progress", from_date=first, to_date=last)
    only_from, _ = fetch_all(
        http, sandbox, "user_progress", {"from_date": first.isoformat(), "page_size": 100}
    )
    assert len(only_from) == len(sandbox.ground_truth("user_progress", from_date=first))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("from_date", "2026-13-01"),
        ("from_date", "yesterday"),
        ("to_date", "2026-02-30"),
        ("to_date", "20260101"),
        ("course_id", "abc"),
    ],
)
def test_invalid_filters_are_400(
    sandbox: SandboxPortal, http: requests.Session, name: str, value: str
) -> None:
    response = http.get(url(sandbox, "user_progress"), params={name: value}, timeout=10)
    assert assert_json_error(response, 400)["parameter"] == name


def test_filters_that_do_not_apply_are_ignored(
    sandbox: SandboxPortal, http: requests.Session
) -> None:
    params = {"from_date": "garbage", "course_id": "x"}
    assert http.get(url(sandbox, "courses"), params=params, timeout=10).json()["count"] == 30


# -- ground truth and the clock -------------------------------------------------------------
@pytest.mark.parametrize("endpoint", list(PATHS))
def test_ground_truth_equals_paging(
    sandbox: SandboxPortal, http: requests.Session, endpoint: str
) -> None:
    params = {"page_size": 37, **all_fields(endpoint)}
    records, _ = fetch_all(http, sandbox, endpoint, params)
    truth = sandbox.ground_truth(endpoint)
    assert records == truth
    assert truth


def test_advance_reveals_new_rows() -> None:
    with (
        SandboxPortal(dataset=DATA) as portal,
        requests.Session() as session,
    ):
        session.auth = (portal.client_id, portal.client_secret)
        before = session.get(url(portal, "user_progress"), timeout=10).json()["count"]
        assert before == len(portal.ground_truth("user_progress"))
        start = portal.dataset.today
        portal.advance(7)
        assert portal.dataset.today == start + dt.timedelta(days=7)
        after = session.get(url(portal, "user_progress"), timeout=10).json()["count"]
        assert after > before
        assert after == len(portal.ground_truth("user_progress"))


def test_prerendered_pages_answer_the_client_from_the_one_cache(
    sandbox: SandboxPortal, http: requests.Session
) -> None:
    today = sandbox.dataset.today
    pages = sandbox.prerender("user_progress", page_size=50, to_date=today)
    assert pages == -(-len(sandbox.ground_truth("user_progress")) // 50)
    filled = sandbox.cache_stats
    assert filled.pages >= pages
    # What the client then asks for is answered from those entries: nothing new is indexed
    # or rendered, and the pages hold what a fresh rendering would.
    params = {"to_date": today.isoformat(), "page_size": 50, **all_fields("user_progress")}
    records, _ = fetch_all(http, sandbox, "user_progress", params)
    assert sandbox.cache_stats == filled
    assert records == sandbox.ground_truth("user_progress")


def test_equivalent_filters_share_one_cache_entry() -> None:
    """Dates meaning the same rows (long before the history, past yesterday) are one query."""
    yesterday = DATA.today - dt.timedelta(days=1)
    long_ago = DATA.today - dt.timedelta(days=10 * DATA.history_days)
    alike: list[list[dict[str, str]]] = [
        [
            {},
            {"to_date": yesterday.isoformat()},
            {"to_date": (yesterday + dt.timedelta(days=30)).isoformat()},
        ],
        [
            {"from_date": long_ago.isoformat()},
            {"from_date": (long_ago - dt.timedelta(days=400)).isoformat()},
        ],
    ]
    with SandboxPortal(dataset=DATA) as portal, requests.Session() as session:
        session.auth = (portal.client_id, portal.client_secret)
        for number, group in enumerate(alike, start=1):
            answers = [
                session.get(url(portal, "user_course_activity"), params=params, timeout=10).json()
                for params in group
            ]
            assert answers[0]["count"] > 0
            assert all(answer["results"] == answers[0]["results"] for answer in answers)
            assert portal.cache_stats.selections == number
            assert portal.cache_stats.pages == number
        portal.advance(1)  # the clock is in the key: the old day's entries are gone
        assert portal.cache_stats == (0, 0, 0)


def test_tap_config(sandbox: SandboxPortal) -> None:
    assert sandbox.tap_config() == {
        "api_url": sandbox.base_url,
        "organization_id": 424242,
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
        "portal_name": "sandbox",
    }


def test_stop_closes_the_port() -> None:
    portal = SandboxPortal(dataset=DATA).start()
    address = portal.base_url
    portal.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(address + "/", timeout=5)


# -- faults ---------------------------------------------------------------------------------
class _RecordedWaits(threading.Event):
    """A portal server's `stopping` event that records each timed wait on it: the handler's
    deliberate delays (latency, slow answers) are such waits, cut short when it stops."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        return super().wait(timeout)


@pytest.mark.parametrize("latency_ms", [0, 150])
def test_latency_delays_every_request_before_it_is_answered(
    faulty: SandboxPortal, http: requests.Session, latency_ms: int
) -> None:
    server = faulty._server
    assert server is not None
    stopping, waits = server.stopping, _RecordedWaits()
    server.stopping = waits
    try:
        faulty.faults = FaultParams(latency_ms=latency_ms)
        for _ in range(2):
            assert http.get(url(faulty, "courses"), timeout=10).status_code == 200
    finally:
        server.stopping = stopping
    assert waits.timeouts == ([latency_ms / 1000] * 2 if latency_ms else [])


def test_rate_limit(faulty: SandboxPortal, http: requests.Session) -> None:
    faulty.faults = FaultParams(rate_limit_rps=0.5, rate_limit_burst=2)
    statuses = [http.get(url(faulty, "courses"), timeout=10).status_code for _ in range(2)]
    assert statuses == [200, 200]
    response = http.get(url(faulty, "courses"), timeout=10)
    assert_json_error(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    # Buckets are per credential: someone else is not throttled by our usage.
    assert requests.get(url(faulty, "courses"), auth=("a", "b"), timeout=10).status_code == 401


@pytest.mark.parametrize("status", [500, 502, 503, 524])
def test_error_statuses(faulty: SandboxPortal, http: requests.Session, status: int) -> None:
    faulty.faults = FaultParams(error_rate=1.0, error_statuses=(status,))
    assert_json_error(http.get(url(faulty, "courses"), timeout=10), status)


@pytest.mark.parametrize("fault", ["truncated_json_rate", "invalid_json_rate"])
def test_bodies_that_are_not_json(
    faulty: SandboxPortal, http: requests.Session, fault: str
) -> None:
    faulty.faults = FaultParams(**{fault: 1.0})  # type: ignore[arg-type]
    response = http.get(url(faulty, "courses"), timeout=10)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_slow_answer_exceeds_a_short_timeout(faulty: SandboxPortal, http: requests.Session) -> None:
    faulty.faults = FaultParams(slow_rate=1.0, slow_seconds=0.6)
    with pytest.raises(requests.Timeout):
        http.get(url(faulty, "courses"), timeout=0.15)


def test_dropped_connection(faulty: SandboxPortal, http: requests.Session) -> None:
    faulty.faults = FaultParams(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        http.get(url(faulty, "courses"), timeout=10)
    assert faulty.requests[-1].status == 0


def test_foreign_next_link(faulty: SandboxPortal, http: requests.Session) -> None:
    faulty.faults = FaultParams(foreign_next_rate=1.0)
    body = http.get(url(faulty, "courses"), params={"page": 2}, timeout=10).json()
    assert urlsplit(body["next"]).netloc == f"127.0.0.2:{faulty.port}"
    assert urlsplit(body["previous"]).netloc == f"127.0.0.1:{faulty.port}"
    last = http.get(url(faulty, "courses"), params={"page": 3}, timeout=10).json()
    assert last["next"] is None


def test_max_faults_per_url(faulty: SandboxPortal, http: requests.Session) -> None:
    faulty.faults = FaultParams(error_rate=1.0, error_statuses=(503,), max_faults_per_url=2)
    for page in (1, 2):
        statuses = [
            http.get(url(faulty, "courses"), params={"page": page}, timeout=10).status_code
            for _ in range(4)
        ]
        assert statuses == [503, 503, 200, 200]


def test_faults_are_reproducible(faulty: SandboxPortal, http: requests.Session) -> None:
    def run(seed: int) -> list[int]:
        faulty.faults = FaultParams(seed=seed, error_rate=0.5)
        return [
            http.get(url(faulty, "user_progress"), params={"page": n}, timeout=10).status_code
            for n in (1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6)
        ]

    first = run(1)
    assert first == run(1)
    assert first != run(2)
    assert {200} < set(first)


def test_fault_params_are_validated() -> None:
    with pytest.raises(ValueError, match="sum"):
        FaultParams(error_rate=0.7, drop_rate=0.7)
    with pytest.raises(ValueError, match="within"):
        FaultParams(slow_rate=1.5)


# -- request log ----------------------------------------------------------------------------
def test_request_log(sandbox: SandboxPortal, http: requests.Session) -> None:
    sandbox.clear_requests()
    http.get(url(sandbox, "courses"), params={"page_size": "5", "fields[course]": "@min"})
    requests.get(url(sandbox, "courses"), auth=("who", "me"), timeout=10)
    first, second = sandbox.requests
    assert first.path == "/api-2.0/organizations/424242/courses/list/"
    assert first.query == {"page_size": "5", "fields[course]": "@min"}
    assert (first.auth_ok, first.status) == (True, 200)
    assert first.host == f"127.0.0.1:{sandbox.port}"
    assert (second.auth_ok, second.status, second.query) == (False, 401, {})
    sandbox.clear_requests()
    assert sandbox.requests == []


# -- CLI ------------------------------------------------------------------------------------
def test_cli_serves_and_prints_its_url() -> None:
    command = [sys.executable, "-m", "tap_udemy_business.sandbox.cli", "--port", "0"]
    command += ["--learners", "20", "--courses", "5", "--seed", "3", "--today", "2026-06-01"]
    command += ["--dialect", "observed"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        output = b""
        deadline = time.monotonic() + 30
        while b"tap config:" not in output or not output.endswith(b"\n"):
            assert selector.select(timeout=max(0.0, deadline - time.monotonic())), output
            chunk = os.read(process.stdout.fileno(), 65536)
            assert chunk, process.stderr.read() if process.stderr else b""
            output += chunk
        lines = output.decode().splitlines()
        assert lines[0].startswith("Sandbox portal serving at http://127.0.0.1:")
        config = json.loads(
            next(x for x in lines if x.startswith("tap config:"))[len("tap config:") :]
        )
        assert config["api_url"] == lines[0].split()[-1]
        response = requests.get(
            f"{config['api_url']}/api-2.0/organizations/{config['organization_id']}/courses/list/",
            auth=(config["client_id"], config["client_secret"]),
            timeout=10,
        )
        assert response.json()["count"] == 5
        activity = requests.get(
            f"{config['api_url']}/api-2.0/organizations/{config['organization_id']}"
            "/analytics/user-course-activity/",
            params={"fields[aggregate_organization_user_course_activity]": "@all"},
            auth=(config["client_id"], config["client_secret"]),
            timeout=10,
        ).json()["results"]
        assert activity
        assert all(isinstance(row["is_assigned"], bool) for row in activity)
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


# -- speed ----------------------------------------------------------------------------------
def test_prerendered_pages_are_served_from_the_cache_over_one_connection(
    sandbox: SandboxPortal,
) -> None:
    """What makes the portal fast: a prerendered page is answered from the cache as it is,
    rendered again never, over one keep-alive connection. (The rate itself is measured by
    `benchmarks/`, not asserted here: a wall-clock floor depends on the machine.)"""
    pages = sandbox.prerender("user_progress", page_size=100, fields="@all")
    assert pages > 1
    cached = sandbox.cache_stats
    token = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    path = "/api-2.0/organizations/424242/analytics/user-progress/"
    connection = HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    bodies: dict[int, bytes] = {}
    try:
        for served in range(3 * pages):  # every page three times, in turn
            page = served % pages + 1
            connection.request(
                "GET",
                f"{path}?fields[user_progress]=@all&page_size=100&page={page}",
                headers=headers,
            )
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert not response.will_close  # keep-alive holds
            assert bodies.setdefault(page, body) == body  # the same bytes each time
    finally:
        connection.close()
    assert (
        sum(len(json.loads(b)["results"]) for b in bodies.values())
        == json.loads(bodies[1])["count"]
    )
    assert sandbox.cache_stats == cached, "a page was rendered (or evicted) on the hot path"
