"""The probe: what each record shape looks like to it, over real HTTP, and what it never says."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import typing as t
from importlib import import_module
from pathlib import Path

import pytest
import requests

from tap_udemy_business.keys import ANONYMIZED_EMAIL
from tap_udemy_business.probe import (
    MAX_REQUESTS,
    BudgetSpentError,
    RecordingTransport,
    main,
    scrub,
)
from tap_udemy_business.probe_report import judge_bounds
from tap_udemy_business.sandbox import FaultParams
from tap_udemy_business.sandbox.dialects import DIALECTS, SANDBOX_CLASSES

from .conftest import ALL_STREAMS, REPORTING_STREAMS, stream_declarations

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal

CATALOG_STREAMS = ("courses", "learning_paths")
NO_ID_IN_GUIDE = ("user_course_activity", "user_progress", "user_path_activity")


class Run(t.NamedTuple):
    code: int
    out: str
    err: str
    requests: int


def probe(
    portal: SandboxPortal,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    **changes: t.Any,
) -> Run:
    """Run the probe in-process on `portal` (config `changes` applied); count its requests."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**portal.tap_config(), **changes}))
    before = len(portal.requests)
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return Run(code, out, err, len(portal.requests) - before)


def report_of(run: Run) -> dict[str, t.Any]:
    assert run.code == 0, run.err
    return t.cast("dict[str, t.Any]", json.loads(run.out))


def endpoints_of(report: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {e["stream"]: e for e in report["endpoints"]}


def window(portal: SandboxPortal) -> tuple[dt.date, dt.date]:
    """The 30 days up to yesterday by the portal's clock (its `Date` header)."""
    yesterday = portal.dataset.today - dt.timedelta(days=1)
    return yesterday - dt.timedelta(days=29), yesterday


def first_page(portal: SandboxPortal, stream: str) -> list[dict[str, t.Any]]:
    """What page 1 of the probe's request holds, with every field: the portal's own rows."""
    if stream in CATALOG_STREAMS:
        return portal.ground_truth(stream)[:100]
    first, last = window(portal)
    return portal.ground_truth(stream, from_date=first, to_date=last)[:100]


def dialect_of(portal: SandboxPortal) -> str:
    return portal.dataset.params.dialect


@pytest.fixture
def dialect_report(
    dialect_portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, t.Any], int]:
    run = probe(dialect_portal, tmp_path, capsys, "--json")
    return report_of(run), run.requests


def test_every_endpoint_is_read_as_the_portal_holds_it(
    dialect_portal: SandboxPortal, dialect_report: tuple[dict[str, t.Any], int]
) -> None:
    report, sent = dialect_report
    assert sent == report["requests_made"] <= MAX_REQUESTS
    endpoints = endpoints_of(report)
    assert list(endpoints) == list(ALL_STREAMS)
    for name, endpoint in endpoints.items():
        rows = first_page(dialect_portal, name)
        assert endpoint["outcome"] == "read"
        assert endpoint["status"] == 200
        assert endpoint["records"] == len(rows)
        assert set(endpoint["fields"]) == {field for row in rows for field in row}, name
        assert endpoint["page_size_honoured"] is True
    progress = endpoints["user_progress"]
    assert progress["count"] > 100
    assert progress["records"] == 100
    assert progress["has_next"] is True


def test_requests_are_page_one_of_100_with_every_field_and_the_window(
    dialect_portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(dialect_portal.requests)
    report_of(probe(dialect_portal, tmp_path, capsys, "--json"))
    sent = dialect_portal.requests[before:]
    first, last = window(dialect_portal)
    for declared in stream_declarations():
        stream = declared.name
        guess = f"fields[{SANDBOX_CLASSES[stream]}]"
        mine = [r for r in sent if r.path.endswith(f"/{declared.path}")]
        assert mine, stream
        assert mine[0].query["page_size"] == "100"
        assert mine[0].query["page"] == "1"
        assert mine[0].query[guess] == "@all"
        if stream in REPORTING_STREAMS:
            assert mine[0].query["from_date"] == first.isoformat()
            assert mine[0].query["to_date"] == last.isoformat()


def test_learner_rows_are_counted(
    dialect_portal: SandboxPortal, dialect_report: tuple[dict[str, t.Any], int]
) -> None:
    endpoints = endpoints_of(dialect_report[0])
    for stream in REPORTING_STREAMS:
        rows = first_page(dialect_portal, stream)
        learner = endpoints[stream]["learner"]
        anonymized = sum(row["user_email"] == ANONYMIZED_EMAIL for row in rows)
        assert learner["anonymized"] == anonymized > 0
        assert learner["with_user_id"] == sum(row.get("user_id") is not None for row in rows)
        forms = learner["key_forms"]
        assert forms["e"] == len(rows) - anonymized
        assert forms["u"] + forms["a"] == anonymized
        assert "user_timezone" in endpoints[stream]["extra"]
        assert all(lacking == 0 for lacking in endpoints[stream]["key_fields"].values())


def test_each_dialect_is_described_by_its_differences(
    dialect_portal: SandboxPortal, dialect_report: tuple[dict[str, t.Any], int]
) -> None:
    endpoints = endpoints_of(dialect_report[0])
    dialect = dialect_of(dialect_portal)
    learner = {stream: endpoints[stream]["learner"] for stream in REPORTING_STREAMS}
    fields = {stream: endpoints[stream]["fields"] for stream in ALL_STREAMS}
    if dialect == "guide":
        for stream in NO_ID_IN_GUIDE:
            assert learner[stream]["with_user_id"] == 0
            assert "user_id" in endpoints[stream]["missing"]
        assert {"id", "report_date"} <= set(fields["user_activity"])
        assert set(fields["user_course_activity"]["is_assigned"]) == {"string"}
        assert "string" in fields["user_progress"]["item_final_result"]
        assert "number" not in fields["user_progress"]["item_final_result"]
        for stream in REPORTING_STREAMS:
            assert "lms_user_id" in endpoints[stream]["missing"]
    elif dialect == "observed":
        missing = set(endpoints["user_activity"]["missing"])
        assert {"id", "report_date"} <= missing
        uca = learner["user_course_activity"]
        assert uca["with_user_id"] == uca["rows"] > 0
        assert learner["user_progress"]["with_user_id"] == 0
        assert learner["user_path_activity"]["with_user_id"] == 0
        assert set(fields["user_course_activity"]["is_assigned"]) == {"boolean"}
        assert "number" in fields["user_progress"]["item_final_result"]
        assert "string" not in fields["user_progress"]["item_final_result"]
    else:
        # user_activity has no user_id in any source: "everywhere" is every other stream.
        for stream in NO_ID_IN_GUIDE:
            assert learner[stream]["with_user_id"] == learner[stream]["rows"] > 0
            assert "user_id" not in endpoints[stream]["missing"]
    for stream, endpoint in endpoints.items():
        assert endpoint["type_differences"] == {}, stream


def test_class_names_are_checked_and_learned(
    dialect_portal: SandboxPortal, dialect_report: tuple[dict[str, t.Any], int]
) -> None:
    report = dialect_report[0]
    classes = DIALECTS[dialect_of(dialect_portal)].classes
    for stream, endpoint in endpoints_of(report).items():
        assert set(endpoint["classes"]) == {classes[stream]}
        differs = classes[stream] != SANDBOX_CLASSES[stream]
        assert endpoint["class_matches_guess"] is not differs
        assert len(endpoint["requests"]) == 1 + differs
        if differs:
            first, second = endpoint["requests"]
            assert f"fields[{SANDBOX_CLASSES[stream]}]" in first["parameters"]
            assert f"fields[{classes[stream]}]" in second["parameters"]
            assert second["fields_received"] > first["fields_received"]
            assert endpoint["fields_gained"]
    off = {s for s in ALL_STREAMS if classes[s] != SANDBOX_CLASSES[s]}
    if dialect_of(dialect_portal) == "observed":
        assert off == {"user_course_activity", "user_progress", "user_path_activity"}
    else:
        assert off == set()
    verdict = next(a for a in report["assumptions"] if a["name"].startswith("_class"))
    assert verdict["status"] == ("does not hold" if off else "holds")


def test_bounds_are_inclusive_by_the_portals_counts(
    dialect_portal: SandboxPortal, dialect_report: tuple[dict[str, t.Any], int]
) -> None:
    report = dialect_report[0]
    day = dialect_portal.dataset.today - dt.timedelta(days=2)
    following = day + dt.timedelta(days=1)

    def count(first: dt.date, last: dt.date) -> int:
        return len(dialect_portal.ground_truth("user_progress", from_date=first, to_date=last))

    bounds = report["bounds"]
    assert bounds["stream"] == "user_progress"
    assert bounds["counts"] == {
        "[D, D]": count(day, day),
        "[D+1, D+1]": count(following, following),
        "[D, D+1]": count(day, following),
    }
    assert bounds["verdict"] == "inclusive at both ends"
    statuses = {a["name"]: a["status"] for a in report["assumptions"]}
    assert statuses["from_date/to_date inclusive"] == "holds"
    assert statuses["the list envelope {count, next, previous, results}"] == "holds"
    assert statuses["key fields present"] == "holds"
    assert statuses["page_size=100 honoured"] == "holds"


def test_the_clock_difference_is_the_portals(
    dialect_portal: SandboxPortal, dialect_report: tuple[dict[str, t.Any], int]
) -> None:
    report = dialect_report[0]
    days = (dialect_portal.dataset.today - dt.datetime.now(dt.UTC).date()).days
    assert report["clock_offset_hours"] == pytest.approx(days * 24, abs=0.2)
    status = next(a["status"] for a in report["assumptions"] if "date within" in a["name"])
    assert status == ("holds" if abs(days) <= 1 else "does not hold")
    assert report["rate_limit_headers"] == []


def test_the_output_holds_no_value_no_address_and_no_secret(
    dialect_portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    titles = [course["title"] for course in dialect_portal.ground_truth("courses")]
    first, last = window(dialect_portal)
    for args in ((), ("--json",)):
        run = probe(dialect_portal, tmp_path, capsys, *args)
        assert run.code == 0
        for text in (run.out, run.err):
            assert "@" not in text
            assert dialect_portal.client_secret not in text
            assert dialect_portal.client_id not in text
            assert not [title for title in titles if title in text]
            assert first.isoformat() not in text
            assert last.isoformat() not in text


def test_the_text_report_names_the_differences(
    dialect_portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = probe(dialect_portal, tmp_path, capsys)
    assert run.code == 0
    blocks = {block.split(" ", 1)[0]: block for block in run.out.split("\n== ")[1:]}
    for stream in REPORTING_STREAMS:
        assert (
            "extra (not in the schema, kept in undocumented_fields): user_timezone"
            in (blocks[stream])
        )
    assert "inclusive at both ends" in blocks["from_date/to_date"]
    activity = blocks["user_activity"]
    if dialect_of(dialect_portal) == "observed":
        assert "missing (in the schema, never sent): id, " in activity
        assert "'user_progress': differs" in blocks["user_progress"]
        assert "does not hold  _class equals the tap's guess" in run.out
    else:
        assert "'user_progress': equal" in blocks["user_progress"]
        assert "holds          _class equals the tap's guess" in run.out


@pytest.mark.parametrize("status", [403, 404])
def test_missing_learning_paths_are_not_available(
    fresh_portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    fresh_portal.learning_paths_status = status
    report = report_of(probe(fresh_portal, tmp_path, capsys, "--json"))
    endpoints = endpoints_of(report)
    for stream in ("learning_paths", "user_path_activity"):
        assert endpoints[stream]["outcome"] == "not available"
        assert endpoints[stream]["status"] == status
    assert endpoints["courses"]["outcome"] == "read"
    assert report["bounds"]["verdict"] == "inclusive at both ends"
    text = probe(fresh_portal, tmp_path, capsys)
    assert text.code == 0
    assert f"HTTP {status}: not available" in text.out


def test_a_wrong_secret_ends_in_one_line(
    portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = probe(portal, tmp_path, capsys, client_secret="not-the-right-secret")
    assert run.code != 0
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert "401 Unauthorized" in run.err
    assert "check client_id and client_secret" in run.err
    assert "not-the-right-secret" not in run.err
    assert "@" not in run.err
    assert run.requests == 1


def test_a_bad_config_ends_in_one_line_before_any_request(
    portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = probe(portal, tmp_path, capsys, page_size=500, api_url="http://example.com")
    assert run.code != 0
    assert run.out == ""
    assert len(run.err.splitlines()) == 1
    assert "page_size" in run.err
    assert "https" in run.err
    assert run.requests == 0


def test_rate_limits_are_reported_by_header_name(
    fresh_portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three requests pass, then every answer is a 429; no retries, so nothing waits.
    fresh_portal.faults = FaultParams(rate_limit_rps=0.001, rate_limit_burst=3)
    run = probe(fresh_portal, tmp_path, capsys, "--json", max_retries=0)
    report = report_of(run)
    endpoints = endpoints_of(report)
    assert [endpoints[s]["outcome"] for s in ALL_STREAMS] == ["read"] * 3 + ["failed"] * 3
    assert endpoints["user_progress"]["status"] == 429
    assert report["rate_limit_headers"] == ["Retry-After"]
    assert report["bounds"]["verdict"] == "undetermined"
    assert run.requests == report["requests_made"] == 6


def test_the_readable_report_ends_with_the_assumptions(
    portal: SandboxPortal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = probe(portal, tmp_path, capsys)
    assert run.code == 0, run.err
    assert "== the tap's assumptions ==" in run.out


def test_the_cli_runs_as_a_module(portal: SandboxPortal, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(portal.tap_config()))
    command = [sys.executable, "-m", "tap_udemy_business.probe", "--config", str(config)]
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [e["outcome"] for e in report["endpoints"]] == ["read"] * len(ALL_STREAMS)
    config.write_text(json.dumps({**portal.tap_config(), "client_secret": "wrong-secret-42"}))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_the_bundled_sandbox_can_be_probed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"sandbox": True}))
    assert main(["--config", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [e["outcome"] for e in report["endpoints"]] == ["read"] * len(ALL_STREAMS)
    assert report["requests_made"] <= MAX_REQUESTS


def test_judge_bounds_tells_the_three_readings_apart() -> None:
    assert judge_bounds("s", 3, 4, 7).verdict == "inclusive at both ends"
    assert judge_bounds("s", 0, 0, 5).verdict == "one end exclusive"
    assert judge_bounds("s", 0, 0, 0).reason == "no activity on those days"
    aggregated = judge_bounds("s", 3, 4, 5)
    assert aggregated.verdict == "undetermined"
    assert aggregated.reason == "the counts add up to neither reading"


def test_urls_keep_their_parameter_names_only() -> None:
    text = "401 from http://u:pw@h:1/p/?page=1&fields[course]=@all&user_email=a@b.c: check"
    assert scrub(text) == "401 from http://h:1/p/?page&fields[course]&user_email: check"


def test_the_request_budget_is_enforced() -> None:
    class Inner:
        def get(self, url: str, timeout: float) -> requests.Response:
            del url, timeout
            response = requests.Response()
            response.status_code = 200
            return response

    transport = RecordingTransport(t.cast("t.Any", Inner()), budget=2)
    transport.get("http://h/", 1)
    transport.get("http://h/", 1)
    with pytest.raises(BudgetSpentError):
        transport.get("http://h/", 1)
    assert transport.sent == 2


def test_the_console_script_is_the_probe() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    module, _, name = pyproject["project"]["scripts"]["tap-udemy-business-probe"].partition(":")
    assert getattr(import_module(module), name) is main
