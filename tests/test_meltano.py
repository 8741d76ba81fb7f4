"""End to end with Meltano, configured as users do it: meltano.yml, settings, environment variables.

`meltano run tap-udemy-business target-postgres` loads a sandbox portal that this test process
drives (so it knows the ground truth and can move the portal's clock) into a throwaway PostgreSQL
server (`scripts/postgres.sh`); SQL then checks every table holds exactly the ground truth, before
and after the clock moves, with no duplicated and no lost row, in every record shape the portal
can serve (`tap_udemy_business/sandbox/dialects.py`). Other runs cover
`TAP_UDEMY_BUSINESS_SANDBOX=true`, the DuckDB demo with the `duckdb` utility, and the PII stream
maps going through Meltano.

Meltano lives in a virtualenv of its own, from requirements-e2e.lock, made once and kept in the
test cache outside the checkout (`conftest.cache_dir()`); `meltano install` installs the plugins
once per session into a Meltano system directory (`MELTANO_SYS_DIR_ROOT`) under pytest's
temporary directory, so nothing is written into the checkout (not even `.meltano/`). Meltano Hub
is never contacted (`MELTANO_HUB_URL` points at a closed port, so a lookup would fail at once).
Each test has its own Meltano system database and its own target schema, so they neither share
state nor read the developer's.

Every test that runs Meltano needs the network (pip installs Meltano and its plugins) and is
slow; those loading into PostgreSQL need a server: they are marked so, and `make check` leaves
them out. The tests of meltano.yml as a file run everywhere.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import typing as t
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path

import psycopg
import pytest
import requests
import yaml
from psycopg.rows import dict_row

from tap_udemy_business.keys import LEARNER_KEY
from tap_udemy_business.sandbox import DatasetParams, SandboxPortal
from tap_udemy_business.sandbox.dialects import DIALECTS
from tap_udemy_business.settings import DEFAULT_LOOKBACK_DAYS

from .conftest import (
    ALL_STREAMS,
    BLOCK_STREAMS,
    REPORTING_STREAMS,
    SyncResult,
    assert_same_rows,
    cache_dir,
    declaration_of,
    exclusive,
    expected_records,
    ground_truth_by_day,
    key_of,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements-e2e.txt"
LOCK = REPO / "requirements-e2e.lock"  # REQUIREMENTS resolved, with hashes (`make lock`)
POSTGRES_SH = REPO / "scripts" / "postgres.sh"
CLOSED_PORT_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens, a lookup fails fast
RUN_TIMEOUT = 600

E2E_DATASET = DatasetParams(
    seed=23, learners=30, courses=8, items_per_course=6, learning_paths=3, history_days=15
)
ADVANCE_DAYS = 4

#: The tables' primary keys: the streams' (`learner_key` is the tap's, on every record shape).
KEYS: dict[str, tuple[str, ...]] = {
    "courses": ("id",),
    "learning_paths": ("id",),
    "user_activity": (LEARNER_KEY, "from_date"),
    "user_course_activity": (LEARNER_KEY, "course_id", "from_date"),
    "user_progress": (LEARNER_KEY, "course_id", "item_id"),
    "user_path_activity": (LEARNER_KEY, "path_id", "from_date"),
}
# Columns compared value by value on every row: unicode strings, numbers (whole and fractional),
# booleans, nullable fields, timestamps, and JSON(B) columns holding nested arrays. Each is sent
# in every record shape (`user_id` is not: the guide's shape has none).
COMPARED_COLUMNS: dict[str, tuple[str, ...]] = {
    "courses": ("title", "num_lectures", "is_custom", "instructors"),
    "learning_paths": ("title", "number_of_content_items", "sections"),
    "user_activity": (
        "user_email",
        "user_name",
        "num_completed_lectures",
        "num_video_consumed_minutes",
        "to_date",
    ),
    "user_course_activity": (
        "user_email",
        "course_title",
        "completion_ratio",
        "num_video_consumed_minutes",
        "is_assigned",
        "assigned_by",
        "course_enroll_date",
    ),
    "user_progress": (
        "user_email",
        "item_title",
        "item_type",
        "item_completion_ratio",
        "item_start_time",
    ),
    "user_path_activity": ("user_email", "path_title", "completion_ratio", "is_path_assigned"),
}
PII_FIELDS = ("user_email", "user_name", "user_surname")
#: What the `tap-udemy-business--pii` plugin hashes, per stream (meltano.yml).
HASHED_FIELDS: dict[str, tuple[str, ...]] = {
    "user_activity": PII_FIELDS,
    "user_course_activity": (*PII_FIELDS, "assigned_by"),
    "user_progress": PII_FIELDS,
    "user_path_activity": PII_FIELDS,
}


# -- Meltano bootstrap ---------------------------------------------------------------------------
def _base_env() -> dict[str, str]:
    """This process's environment without anything that would steer the tap, a target or Meltano."""
    dropped = (
        "TAP_UDEMY_BUSINESS",
        "TARGET_",
        "MELTANO_",
        "UDEMY_PII_SALT",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "PG",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["MELTANO_HUB_URL"] = CLOSED_PORT_URL
    env["MELTANO_CLI_DISABLE_VERSION_CHECK"] = "true"  # no PyPI look-up on every command
    env["NO_COLOR"] = "1"
    return env


def meltano_venv() -> Path:
    """The cached venv for requirements-e2e.lock as it is now, on this Python."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"meltano-venv-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def bootstrap_meltano() -> Path:
    """Make Meltano's venv (requirements-e2e.lock) in the test cache unless it is there already;
    return meltano. One process at a time makes it; the others wait and reuse it."""
    with exclusive("meltano-venv"):
        return _bootstrap_meltano(meltano_venv())


def _bootstrap_meltano(venv: Path) -> Path:
    meltano = venv / "bin" / "meltano"
    wanted = re.search(r"^meltano==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert wanted, "requirements-e2e.txt must pin meltano==<version>"
    if meltano.exists():
        version = subprocess.run(
            [meltano, "--version"],
            capture_output=True,
            text=True,
            env=_base_env(),
            timeout=120,
            check=False,
        ).stdout
        if wanted.group(1) in version:
            return meltano
    python = sys.executable  # the interpreter running the tests: known to work
    _checked([python, "-m", "venv", "--clear", str(venv)], f"create {venv}")
    _checked(
        [
            venv / "bin" / "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "-r",
            LOCK,
        ],
        "pip install -r requirements-e2e.lock",
    )
    assert meltano.exists(), f"{meltano} missing after pip install"
    return meltano


def _checked(command: list[t.Any], what: str, **kwargs: t.Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        **kwargs,
    )
    assert proc.returncode == 0, (
        f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    return proc


@dataclass
class Meltano:
    """The project's Meltano, run from the repository root as a user would, its system
    directory (plugins' venvs, run files) in `sys_dir` instead of the checkout's `.meltano/`."""

    executable: Path
    env_file: Path
    sys_dir: Path
    install_seconds: float = 0.0

    def environment(self, env: dict[str, str] | None) -> dict[str, str]:
        return {**_base_env(), "MELTANO_SYS_DIR_ROOT": str(self.sys_dir), **(env or {})}

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        full_env = self.environment(env)
        command = [str(self.executable), "--env-file", str(self.env_file), *args]
        proc = subprocess.run(
            command,
            cwd=REPO,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        if check:
            assert proc.returncode == 0, (
                f"`meltano {' '.join(args)}` failed (exit {proc.returncode}):\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}"
            )
        return proc

    def start(self, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start `meltano ARGS` in the background (for jobs that run side by side)."""
        command = [str(self.executable), "--env-file", str(self.env_file), *args]
        with log.open("wb") as sink:
            return subprocess.Popen(
                command, cwd=REPO, env=self.environment(env), stdout=sink, stderr=sink
            )


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    """Meltano, bootstrapped once per session, with every plugin of meltano.yml installed."""
    folder = tmp_path_factory.mktemp("meltano")
    env_file = folder / "empty.env"  # not the developer's .env
    env_file.write_text("")
    runner = Meltano(bootstrap_meltano(), env_file, sys_dir=folder / ".meltano")
    started = time.monotonic()
    runner("install")
    runner.install_seconds = time.monotonic() - started
    return runner


@pytest.fixture
def meltano_db(tmp_path: Path) -> dict[str, str]:
    """A Meltano system database (state, run log) of the test's own."""
    return {"MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}"}


# -- PostgreSQL ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres() -> Iterator[dict[str, str]]:
    """A throwaway PostgreSQL cluster (scripts/postgres.sh): its connection variables."""
    folder = Path(tempfile.mkdtemp(prefix="tap-udemy-e2e-pg-"))
    proc = subprocess.run(
        ["bash", str(POSTGRES_SH), "start", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, (
        "could not start PostgreSQL with scripts/postgres.sh (on Debian: apt-get install "
        f"postgresql):\n{proc.stderr}"
    )
    info = dict(re.findall(r"^export (\w+)='?([^'\n]*)'?$", proc.stdout, re.MULTILINE))
    try:
        yield info
    finally:
        subprocess.run(
            ["bash", str(POSTGRES_SH), "stop", str(folder)],
            capture_output=True,
            timeout=120,
            check=False,
        )


def target_postgres_env(pg: dict[str, str], schema: str) -> dict[str, str]:
    return {
        "TARGET_POSTGRES_HOST": pg["PGHOST"],
        "TARGET_POSTGRES_PORT": pg["PGPORT"],
        "TARGET_POSTGRES_USER": pg["PGUSER"],
        "TARGET_POSTGRES_PASSWORD": pg["PGPASSWORD"],
        "TARGET_POSTGRES_DATABASE": pg["PGDATABASE"],
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }


def connect(pg: dict[str, str]) -> psycopg.Connection[t.Any]:
    return psycopg.connect(
        host=pg["PGHOST"],
        port=int(pg["PGPORT"]),
        user=pg["PGUSER"],
        password=pg["PGPASSWORD"],
        dbname=pg["PGDATABASE"],
        autocommit=True,
    )


def portal_env(portal: SandboxPortal) -> dict[str, str]:
    """Point the tap at a portal this process controls, through Meltano's env-var settings."""
    config = portal.tap_config()
    return {
        "TAP_UDEMY_BUSINESS_SANDBOX": "false",
        "TAP_UDEMY_BUSINESS_API_URL": config["api_url"],
        "TAP_UDEMY_BUSINESS_CLIENT_ID": config["client_id"],
        "TAP_UDEMY_BUSINESS_CLIENT_SECRET": config["client_secret"],
        "TAP_UDEMY_BUSINESS_ORGANIZATION_ID": str(config["organization_id"]),
    }


# -- comparing -----------------------------------------------------------------------------------
def normalize(value: t.Any) -> t.Any:  # noqa: PLR0911 - one return per kind of value
    """One representation for a value from the API (JSON) or from PostgreSQL (psycopg)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and re.fullmatch(
        r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)?", value
    ):
        moment = dt.datetime.fromisoformat(value)
        return normalize(moment)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def ground_truth(portal: SandboxPortal, stream: str) -> list[dict[str, t.Any]]:
    """What a complete sync emits: every reporting day (or block) stamped, as the tap shapes it."""
    return expected_records(portal, stream)


def table_rows(pg: dict[str, str], schema: str, stream: str) -> list[dict[str, t.Any]]:
    columns = ", ".join(f'"{c}"' for c in (*KEYS[stream], *COMPARED_COLUMNS[stream]))
    with connect(pg) as conn, conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f'SELECT {columns} FROM "{schema}"."{stream}"')  # noqa: S608 - our names
        return list(cursor.fetchall())


def compared_columns(stream: str) -> tuple[str, ...]:
    """The columns a table row and a truth row are compared on: the key columns but the tap's
    own `learner_key` (the portal's truth has none), then COMPARED_COLUMNS."""
    return (*(k for k in KEYS[stream] if k != LEARNER_KEY), *COMPARED_COLUMNS[stream])


def text_columns(pg: dict[str, str], schema: str, stream: str) -> set[str]:
    """The table's columns that target-postgres made `text`."""
    with connect(pg) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s AND data_type = 'text'",
            (schema, stream),
        )
        return {name for (name,) in cursor.fetchall()}


def as_stored(value: t.Any, *, text: bool) -> t.Any:
    """A truth value as PostgreSQL holds it. A field typed boolean-or-string (`is_assigned`:
    "Yes"/"No" in some shapes, true/false in others) becomes a `text` column, and psycopg's
    COPY writes a boolean into it as 't' / 'f'."""
    if text and isinstance(value, bool):
        return "t" if value else "f"
    return value


def row_multiset(
    stream: str, rows: t.Iterable[dict[str, t.Any]], text: t.Collection[str] = ()
) -> Counter[tuple[str, ...]]:
    """Rows as a multiset of their compared values, normalized (as canonical JSON, hashable)."""
    columns = compared_columns(stream)
    return Counter(
        tuple(
            json.dumps(normalize(as_stored(row[c], text=c in text)), sort_keys=True)
            for c in columns
        )
        for row in rows
    )


def assert_rows_equal_truth(
    pg: dict[str, str], schema: str, stream: str, truth: list[dict[str, t.Any]]
) -> int:
    """The table and the truth are the same multiset of rows: no row lost, none doubled, none
    changed; every key is unique. Returns the number of rows."""
    rows = table_rows(pg, schema, stream)
    keys = [tuple(normalize(row[k]) for k in KEYS[stream]) for row in rows]
    assert len(keys) == len(set(keys)), f"{stream}: duplicated keys in PostgreSQL"
    if LEARNER_KEY in KEYS[stream]:
        assert all(row[LEARNER_KEY] for row in rows), f"{stream}: a row without {LEARNER_KEY}"
    have = row_multiset(stream, rows)
    want = row_multiset(stream, truth, text=text_columns(pg, schema, stream))
    missing, extra = want - have, have - want
    lost, unexpected = sum(missing.values()), sum(extra.values())
    assert (lost, unexpected) == (0, 0), (
        f"{stream}: {len(rows)} rows, expected {len(truth)}; {lost} truth rows missing, "
        f"{unexpected} unexpected, compared on {compared_columns(stream)}; e.g. missing "
        f"{next(iter(missing), None)} / unexpected {next(iter(extra), None)}"
    )
    return len(rows)


def assert_tables_hold_ground_truth(
    pg: dict[str, str], schema: str, portal: SandboxPortal
) -> dict[str, int]:
    """Every table equals the portal's ground truth: unique keys, no row lost, same values."""
    counts = table_counts(pg, schema)  # in SQL: count(*) == count(DISTINCT key columns)
    for stream in ALL_STREAMS:
        expected = ground_truth(portal, stream)
        assert expected, f"the sandbox has no {stream} rows: the test would prove nothing"
        assert assert_rows_equal_truth(pg, schema, stream, expected) == counts[stream], stream
    return counts


def table_counts(pg: dict[str, str], schema: str) -> dict[str, int]:
    counts = {}
    with connect(pg) as conn, conn.cursor() as cursor:
        for stream in ALL_STREAMS:
            keys = ", ".join(f'"{k}"' for k in KEYS[stream])
            cursor.execute(
                f'SELECT count(*), count(DISTINCT ({keys})) FROM "{schema}"."{stream}"'  # noqa: S608
            )
            total, distinct = cursor.fetchone()  # type: ignore[misc]
            assert total == distinct, f"{stream}: {total - distinct} duplicated rows"
            counts[stream] = total
    return counts


def assert_portal_dates_its_answers(portal: SandboxPortal) -> None:
    """The tap ends reporting at the API's yesterday, which it reads from the `Date` header."""
    config = portal.tap_config()
    response = requests.get(
        f"{portal.base_url}/api-2.0/organizations/{config['organization_id']}/courses/list/",
        auth=(config["client_id"], config["client_secret"]),
        timeout=30,
    )
    header = response.headers.get("Date")
    assert header, (
        "The sandbox portal sends no `Date` header, so the tap takes 'today' from this machine's "
        "clock and never reads the days revealed by portal.advance(). The portal should send its "
        "own clock (dataset.today) in `Date`, as the real API sends the real date."
    )
    assert parsedate_to_datetime(header).date() == portal.dataset.today, header


def requested_days(portal: SandboxPortal, stream: str) -> list[dt.date]:
    """Every `from_date` asked of a stream's endpoint since the request log was last cleared."""
    path = declaration_of(stream).path
    return [
        dt.date.fromisoformat(r.query["from_date"])
        for r in portal.requests
        if r.path.endswith(path) and "from_date" in r.query
    ]


def bookmarks(meltano: Meltano, state_id: str, env: dict[str, str]) -> dict[str, dt.date]:
    """The reporting streams' bookmarks (`from_date`) in Meltano's state for a pipeline."""
    proc = meltano("--environment=dev", "state", "get", state_id, env=env)
    saved = json.loads(proc.stdout)["singer_state"]["bookmarks"]
    return {
        stream: dt.date.fromisoformat(saved[stream]["replication_key_value"])
        for stream in REPORTING_STREAMS
    }


def max_from_date(pg: dict[str, str], schema: str, stream: str) -> dt.date:
    with connect(pg) as conn, conn.cursor() as cursor:
        cursor.execute(f'SELECT max(from_date) FROM "{schema}"."{stream}"')  # noqa: S608
        return t.cast("dt.date", cursor.fetchone()[0])  # type: ignore[index]


# -- meltano.yml as a file -----------------------------------------------------------------------
def load_meltano_yml() -> dict[str, t.Any]:
    return t.cast("dict[str, t.Any]", yaml.safe_load((REPO / "meltano.yml").read_text()))


def plugin(project: dict[str, t.Any], kind: str, name: str) -> dict[str, t.Any]:
    return next(p for p in project["plugins"][kind] if p["name"] == name)


def test_meltano_yml_defines_every_plugin_inline_with_no_hub_lookup() -> None:
    project = load_meltano_yml()
    assert project["send_anonymous_usage_stats"] is False
    assert project["default_environment"] == "demo"
    text = (REPO / "meltano.yml").read_text()
    assert not re.search(r"^\s*variant:", text, re.MULTILINE), "a variant means a Hub lookup"
    for kind, plugins in project["plugins"].items():
        for entry in plugins:
            if "inherit_from" in entry:
                continue
            for field in ("name", "namespace", "pip_url", "executable"):
                assert entry.get(field), f"{kind} {entry.get('name')}: no {field}"
    names = {p["name"] for p in project["plugins"]["loaders"]}
    assert {"target-duckdb", "target-postgres"} <= names
    assert plugin(project, "loaders", "target-postgres")["pip_url"].startswith(
        "meltanolabs-target-postgres=="
    )


def test_meltano_yml_extractor_declares_settings_for_meltano() -> None:
    project = load_meltano_yml()
    tap = plugin(project, "extractors", "tap-udemy-business")
    assert tap["pip_url"] == "-e ."
    assert {"state", "catalog", "discover", "about", "stream-maps", "schema-flattening"} <= set(
        tap["capabilities"]
    )
    settings = {s["name"]: s for s in tap["settings"]}
    for setting in tap["settings"]:
        for field in ("kind", "label", "description"):
            assert setting.get(field), f"setting {setting['name']}: no {field}"
    assert settings["client_id"].get("sensitive") is True
    assert settings["client_secret"].get("sensitive") is True
    assert not any(s.get("kind") == "password" for s in tap["settings"]), "deprecated kind"
    for group in tap["settings_group_validation"]:
        assert set(group) <= set(settings), group
    assert ["sandbox"] in tap["settings_group_validation"]
    demo = next(e for e in project["environments"] if e["name"] == "demo")
    demo_tap = plugin(demo["config"], "extractors", "tap-udemy-business")
    assert demo_tap["config"]["sandbox"] is True


@pytest.mark.network
@pytest.mark.slow
def test_meltano_accepts_the_project_offline(meltano: Meltano, meltano_db: dict[str, str]) -> None:
    listing = meltano("config", "list", "--all", "tap-udemy-business", env=meltano_db).stdout
    for name in ("client_id", "client_secret", "organization_id", "sandbox", "stream_maps"):
        assert re.search(rf"^\s*{name}\b", listing, re.MULTILINE), f"{name} not listed:\n{listing}"
    demo = meltano("--environment=demo", "config", "print", "tap-udemy-business", env=meltano_db)
    assert json.loads(demo.stdout)["sandbox"] is True
    # The variables the docs tell users to set reach the target's configuration.
    env = {
        **meltano_db,
        "TARGET_POSTGRES_HOST": "db.example",
        "TARGET_POSTGRES_PORT": "6543",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "raw_udemy",
    }
    printed = json.loads(meltano("config", "print", "target-postgres", env=env).stdout)
    assert (printed["host"], printed["port"], printed["default_target_schema"]) == (
        "db.example",
        6543,
        "raw_udemy",
    )


# -- end to end ----------------------------------------------------------------------------------
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("dialect", tuple(DIALECTS))
def test_meltano_run_into_postgres_holds_ground_truth_then_increments(
    meltano: Meltano, meltano_db: dict[str, str], postgres: dict[str, str], dialect: str
) -> None:
    """Two syncs of each record shape into PostgreSQL: after each, no duplicated, no lost row."""
    schema = f"e2e_truth_{dialect}"
    state_id = "dev:tap-udemy-business-to-target-postgres"
    dataset = dataclasses.replace(E2E_DATASET, dialect=dialect)
    with SandboxPortal(dataset=dataset) as portal:
        env = {**meltano_db, **portal_env(portal), **target_postgres_env(postgres, schema)}
        started = time.monotonic()
        meltano("--environment=dev", "run", "tap-udemy-business", "target-postgres", env=env)
        first_seconds = time.monotonic() - started
        first = assert_tables_hold_ground_truth(postgres, schema, portal)
        old_today = portal.dataset.today
        saved = bookmarks(meltano, state_id, env)

        portal.advance(ADVANCE_DAYS)
        assert_portal_dates_its_answers(portal)
        portal.clear_requests()
        started = time.monotonic()
        meltano("--environment=dev", "run", "tap-udemy-business", "target-postgres", env=env)
        second_seconds = time.monotonic() - started
        second = assert_tables_hold_ground_truth(postgres, schema, portal)

        # The second run resumed from Meltano's state: nothing before the bookmark's lookback.
        for stream in REPORTING_STREAMS:
            asked = requested_days(portal, stream)
            assert asked, f"the second run asked nothing of {stream}"
            resume = saved[stream] - dt.timedelta(days=DEFAULT_LOOKBACK_DAYS)
            assert min(asked) == resume, (stream, min(asked), resume)
        yesterday = portal.dataset.today - dt.timedelta(days=1)
        for stream, bookmark in bookmarks(meltano, state_id, env).items():
            assert bookmark >= saved[stream], (stream, bookmark, saved[stream])  # never back
            if stream in BLOCK_STREAMS:  # a block re-read in the lookback keeps the bookmark
                expected = max(saved[stream], max_from_date(postgres, schema, stream))
                assert bookmark == expected, (stream, bookmark, expected)
            else:  # day streams: the last day read
                assert bookmark == max_from_date(postgres, schema, stream) == yesterday, stream

    for stream in ("user_activity", "user_course_activity", "user_progress"):
        assert second[stream] > first[stream], f"{stream}: no new rows after the clock moved"
    with connect(postgres) as conn, conn.cursor() as cursor:
        cursor.execute(
            f'SELECT count(*) FROM "{schema}".user_activity WHERE from_date >= %s',  # noqa: S608
            (old_today,),
        )
        assert cursor.fetchone()[0] > 0  # type: ignore[index]
    print(  # noqa: T201 - durations in the log (pytest -s or on failure)
        f"\n{dialect}: meltano install {meltano.install_seconds:.1f}s; run 1 {first_seconds:.1f}s, "
        f"run 2 {second_seconds:.1f}s; rows {first} -> {second}"
    )


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.postgres
def test_meltano_run_with_sandbox_env_var_is_idempotent(
    meltano: Meltano, meltano_db: dict[str, str], postgres: dict[str, str]
) -> None:
    """`TAP_UDEMY_BUSINESS_SANDBOX=true` exactly as the issue says: the tap's private portal."""
    schema = "e2e_sandbox"
    env = {
        **meltano_db,
        "TAP_UDEMY_BUSINESS_SANDBOX": "true",
        **target_postgres_env(postgres, schema),
    }
    meltano("--environment=dev", "run", "tap-udemy-business", "target-postgres", env=env)
    first = table_counts(postgres, schema)
    assert all(first.values()), f"empty tables: {first}"
    # The private portal is the default dataset: a twin here tells how many rows it holds.
    with SandboxPortal() as twin:
        assert first == {s: len(ground_truth(twin, s)) for s in ALL_STREAMS}
    meltano("--environment=dev", "run", "tap-udemy-business", "target-postgres", env=env)
    assert table_counts(postgres, schema) == first


@pytest.mark.network
@pytest.mark.slow
def test_demo_into_duckdb_queried_with_the_duckdb_utility(
    meltano: Meltano, meltano_db: dict[str, str], tmp_path: Path
) -> None:
    """The README's demo: the default environment, the embedded loader, then SQL on the file."""
    database = tmp_path / "warehouse.duckdb"
    env = {**meltano_db, "TARGET_DUCKDB_FILEPATH": str(database)}
    meltano("run", "tap-udemy-business", "target-duckdb", env=env)
    union = " UNION ALL ".join(
        f"SELECT '{s}' AS stream, count(*) AS n, "  # noqa: S608 - our own table names
        f"count(DISTINCT ({', '.join(KEYS[s])})) AS keys FROM udemy_business.{s}"
        for s in ALL_STREAMS
    )
    out = meltano("invoke", "duckdb", str(database), "-csv", "-c", union, env=env).stdout
    rows = list(csv.DictReader(io.StringIO(out[out.index("stream,n,keys") :])))
    counts = {row["stream"]: int(row["n"]) for row in rows}
    assert all(row["n"] == row["keys"] for row in rows), rows
    with SandboxPortal() as twin:
        assert counts == {s: len(ground_truth(twin, s)) for s in ALL_STREAMS}

    # docs/meltano.md shows a query on the demo's data and its output: both must be true.
    docs = (REPO / "docs" / "meltano.md").read_text()
    query = re.search(r"<!-- demo-query.*?-->\n```sh\n[^\n]*-c \"\n(.*?)\"\n```", docs, re.DOTALL)
    shown = re.search(r"<!-- demo-output -->\n```text\n(.*?)```", docs, re.DOTALL)
    assert query, "docs/meltano.md lost its demo query block"
    assert shown, "docs/meltano.md lost its demo output block"
    printed = meltano("invoke", "duckdb", str(database), "-c", query.group(1), env=env).stdout
    table = printed[printed.index("┌") :]
    assert _lines(table) == _lines(shown.group(1)), f"docs/meltano.md should show:\n{table}"


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


@pytest.mark.network
@pytest.mark.slow
def test_pii_stream_maps_through_meltano(meltano: Meltano, meltano_db: dict[str, str]) -> None:
    """The `tap-udemy-business--pii` plugin: Meltano expands the salt and passes the maps."""
    salt = "e2e-salt"
    with SandboxPortal(dataset=E2E_DATASET) as portal:
        env = {**meltano_db, **portal_env(portal), "UDEMY_PII_SALT": salt}
        out = meltano("--environment=dev", "invoke", "tap-udemy-business--pii", env=env).stdout
        result = SyncResult.from_lines(
            "\n".join(line for line in out.splitlines() if line.startswith("{"))
        )
        truth = {s: ground_truth(portal, s) for s in REPORTING_STREAMS}

    def hashed(value: t.Any) -> t.Any:
        return hashlib.sha256((salt + value).encode()).hexdigest() if value else value

    for stream in REPORTING_STREAMS:
        records = result.records[stream]
        assert len(records) == len(truth[stream]), stream
        keys = [key_of(stream, r) for r in records]
        assert len(set(keys)) == len(keys), f"{stream}: duplicated keys"
        # Every row once, exactly as the truth with its PII fields hashed and nothing else changed.
        expected = [
            {**r, **{f: hashed(r[f]) for f in HASHED_FIELDS[stream]}} for r in truth[stream]
        ]
        assert_same_rows(stream, records, expected)
    emails = {
        r["user_email"] for rows in truth.values() for r in rows if "@" in (r["user_email"] or "")
    }
    assert emails, "no e-mail in the ground truth: the test would prove nothing"
    assert not any(email in out for email in emails), "an e-mail left the tap in clear"
    assert all("editors" not in r for r in result.records["learning_paths"])


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.postgres
def test_backfill_windows_run_in_parallel_each_with_its_own_state(
    meltano: Meltano, meltano_db: dict[str, str], postgres: dict[str, str], tmp_path: Path
) -> None:
    """docs/meltano.md's backfill recipe: date windows as separate jobs, one state id each.

    The most recent window runs first (it creates the tables), then the older two side by side,
    sharing one Meltano system database and one target schema.
    """
    schema = "e2e_backfill"
    reporting = json.dumps([f"{stream}.*" for stream in REPORTING_STREAMS])
    with SandboxPortal(dataset=E2E_DATASET) as portal:
        yesterday = portal.dataset.today - dt.timedelta(days=1)
        windows = {
            "w3": (yesterday - dt.timedelta(days=4), yesterday),
            "w2": (yesterday - dt.timedelta(days=10), yesterday - dt.timedelta(days=5)),
            "w1": (yesterday - dt.timedelta(days=40), yesterday - dt.timedelta(days=11)),
        }

        def window_env(first: dt.date, last: dt.date) -> dict[str, str]:
            return {
                **meltano_db,
                **portal_env(portal),
                **target_postgres_env(postgres, schema),
                "TAP_UDEMY_BUSINESS__SELECT": reporting,
                "TAP_UDEMY_BUSINESS_START_DATE": first.isoformat(),
                "TAP_UDEMY_BUSINESS_END_DATE": last.isoformat(),
                "TAP_UDEMY_BUSINESS_MAX_CONCURRENT_REQUESTS": "2",
            }

        def job_sys_dir(name: str) -> dict[str, str]:
            """A `.meltano` of the job's own: shared installs, private run dir (see the docs)."""
            sys_dir = tmp_path / name / ".meltano"
            sys_dir.mkdir(parents=True)
            for kind in ("extractors", "loaders"):
                (sys_dir / kind).symlink_to(meltano.sys_dir / kind)
            return {"MELTANO_SYS_DIR_ROOT": str(sys_dir)}

        def job(name: str) -> tuple[str, ...]:
            return (
                "--environment=dev",
                "run",
                f"--state-id-suffix=backfill-{name}",
                "tap-udemy-business",
                "target-postgres",
            )

        meltano(*job("w3"), env={**window_env(*windows["w3"]), **job_sys_dir("w3")})
        running = {
            name: meltano.start(
                *job(name),
                env={**window_env(*windows[name]), **job_sys_dir(name)},
                log=tmp_path / f"{name}.log",
            )
            for name in ("w1", "w2")
        }
        for name, proc in running.items():
            code = proc.wait(timeout=RUN_TIMEOUT)
            log = (tmp_path / f"{name}.log").read_text(errors="replace")
            assert code == 0, f"window {name} failed (exit {code}):\n{log[-6000:]}"

        for stream in REPORTING_STREAMS:
            truth = ground_truth_by_day(portal, stream)
            assert truth, f"the sandbox has no {stream} rows: the test would prove nothing"
            assert_rows_equal_truth(postgres, schema, stream, truth)
        with connect(postgres) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name IN ('courses', 'learning_paths')",
                (schema,),
            )
            assert cursor.fetchone() == (0,), "backfill jobs select the reporting streams only"

    for name in running:
        last = windows[name][1]
        state_id = f"dev:tap-udemy-business-to-target-postgres:backfill-{name}"
        state = json.loads(
            meltano("--environment=dev", "state", "get", state_id, env=meltano_db).stdout
        )
        bookmark = state["singer_state"]["bookmarks"]["user_activity"]["replication_key_value"]
        assert bookmark <= last.isoformat(), (name, bookmark)


# -- settings from Meltano's environment variables ------------------------------------------------
def _invoke_courses(
    meltano: Meltano, meltano_db: dict[str, str], portal: SandboxPortal, settings: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`meltano invoke tap-udemy-business` on courses, configured only by TAP_* variables."""
    config = portal.tap_config()
    env = {
        **meltano_db,
        "TAP_UDEMY_BUSINESS__SELECT": '["courses.*"]',  # Meltano's `select` extra
        "TAP_UDEMY_BUSINESS_API_URL": config["api_url"],
        "TAP_UDEMY_BUSINESS_CLIENT_ID": config["client_id"],
        "TAP_UDEMY_BUSINESS_CLIENT_SECRET": config["client_secret"],
        **{f"TAP_UDEMY_BUSINESS_{name.upper()}": value for name, value in settings.items()},
    }
    return meltano("--environment=dev", "invoke", "tap-udemy-business", env=env, check=False)


@pytest.mark.network
@pytest.mark.slow
def test_meltano_env_vars_of_every_kind_configure_the_tap(
    meltano: Meltano, meltano_db: dict[str, str], portal: SandboxPortal
) -> None:
    """Numbers, integers and flags as Meltano exports them: strings, the id quoted."""
    portal.clear_requests()
    done = _invoke_courses(
        meltano,
        meltano_db,
        portal,
        {
            "organization_id": f" {portal.organization_id} ",
            "page_size": "9",
            "lookback_days": "2",
            "max_concurrent_requests": "2",
            "max_retries": "3",
            "request_timeout": "30",
            "max_retry_seconds": "60.5",
            "sandbox": "false",
            "aggregate_span": "week",
        },
    )
    assert done.returncode == 0, done.stderr[-4000:]
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    ids = {m["record"]["id"] for m in messages if m["type"] == "RECORD"}
    assert ids == {r["id"] for r in expected_records(portal, "courses")}
    assert any(
        r.path.endswith("/courses/list/") and r.query.get("page_size") == "9"
        for r in portal.requests
    )


@pytest.mark.network
@pytest.mark.slow
def test_a_bad_number_from_meltano_is_one_line_naming_the_setting(
    meltano: Meltano, meltano_db: dict[str, str], portal: SandboxPortal
) -> None:
    done = _invoke_courses(meltano, meltano_db, portal, {"request_timeout": "soon"})
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "request_timeout" in done.stderr
    assert portal.client_secret not in done.stderr + done.stdout
