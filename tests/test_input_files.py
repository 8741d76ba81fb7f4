"""Bad `--config`, `--state` and `--catalog` files: one line naming the file, exit 1.

And a state whose bookmark lies in the future, which would make every run read nothing
without a word: one warning naming the stream and the bookmark.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing as t

import pytest

from .conftest import catalog_selecting

if t.TYPE_CHECKING:
    from pathlib import Path

    from tap_udemy_business.sandbox import SandboxPortal

#: The console's log line: a timestamp, a level, a logger, a message.
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \| (\w+)\s*\| ")

#: (what the file holds, a phrase the error line must contain); None: no file at all.
BAD_JSON_FILES: dict[str, tuple[str | bytes | None, str]] = {
    "missing": (None, "no such file"),
    "empty": ("", "the file is empty"),
    "blank": (" \n\t\n", "the file is empty"),
    "not-json": ('{"a": 1,,}', "not valid JSON"),
    "truncated": ('{"a": [1, 2', "not valid JSON"),
    "a-list": ("[1, 2]", "holds an array; expected a JSON object"),
    "a-string": ('"config"', "holds a string; expected a JSON object"),
    "a-number": ("42", "holds a number; expected a JSON object"),
    "null": ("null", "holds null; expected a JSON object"),
    "not-utf8": (b'{"a": "\xff\xfe"}', "not UTF-8 text"),
    "a-directory": ("<directory>", "is a directory"),
}
BAD_STATES = {
    "bookmarks-a-list": ('{"bookmarks": []}', "'bookmarks' holds an array"),
    "bookmarks-a-string": ('{"bookmarks": "courses"}', "'bookmarks' holds a string"),
    "a-bookmark-a-number": (
        '{"bookmarks": {"courses": 3}}',
        "the bookmark of stream 'courses' holds a number",
    ),
    "partitions-not-a-list": (
        '{"bookmarks": {"courses": {"partitions": {}}}}',
        "the 'partitions' of stream 'courses' is not an array",
    ),
}
BAD_CATALOGS = {
    "no-streams": ('{"catalog": []}', "no 'streams'"),
    "streams-an-object": ('{"streams": {}}', "'streams' holding an object"),
    "entry-a-string": ('{"streams": ["courses"]}', "streams[0] holds a string"),
    "entry-without-id": ('{"streams": [{"stream": "courses"}]}', "no 'tap_stream_id'"),
    "metadata-an-object": (
        '{"streams": [{"tap_stream_id": "courses", "metadata": {}}]}',
        "'metadata' that is not an array",
    ),
    "metadata-item-without-breadcrumb": (
        '{"streams": [{"tap_stream_id": "courses", "metadata": [{"metadata": {}}]}]}',
        "without a 'breadcrumb' array",
    ),
}


def _write(path: Path, content: str | bytes | None) -> Path:
    if content == "<directory>":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tap_udemy_business", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _config_file(portal: SandboxPortal, tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(portal.tap_config()))
    return path


def _assert_one_line_naming(
    done: subprocess.CompletedProcess[str], option: str, path: Path, phrase: str
) -> None:
    assert done.returncode == 1, done.stderr
    assert done.stdout == "", "nothing may be synced from a bad input file"
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    assert all(LOG_LINE.match(line) for line in lines), f"not only log lines:\n{done.stderr}"
    errors = [line for line in lines if " | ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert f"{option} {path}" in errors[0], errors[0]
    assert phrase in errors[0], errors[0]


@pytest.mark.parametrize(("content", "phrase"), BAD_JSON_FILES.values(), ids=BAD_JSON_FILES)
@pytest.mark.parametrize("option", ["--config", "--state", "--catalog"])
def test_a_bad_input_file_is_one_line_naming_it(
    portal: SandboxPortal,
    tmp_path: Path,
    option: str,
    content: str | bytes | None,
    phrase: str,
) -> None:
    bad = _write(tmp_path / "input.json", content)
    args = [option, str(bad)]
    if option != "--config":
        args = ["--config", str(_config_file(portal, tmp_path)), *args]
    _assert_one_line_naming(_run(*args), option, bad, phrase)


@pytest.mark.parametrize(("content", "phrase"), BAD_STATES.values(), ids=BAD_STATES)
def test_a_state_that_is_not_a_singer_state_is_one_line(
    portal: SandboxPortal, tmp_path: Path, content: str, phrase: str
) -> None:
    bad = _write(tmp_path / "state.json", content)
    done = _run("--config", str(_config_file(portal, tmp_path)), "--state", str(bad))
    _assert_one_line_naming(done, "--state", bad, phrase)


@pytest.mark.parametrize(("content", "phrase"), BAD_CATALOGS.values(), ids=BAD_CATALOGS)
def test_a_catalog_that_is_not_a_singer_catalog_is_one_line(
    portal: SandboxPortal, tmp_path: Path, content: str, phrase: str
) -> None:
    bad = _write(tmp_path / "catalog.json", content)
    done = _run("--config", str(_config_file(portal, tmp_path)), "--catalog", str(bad))
    _assert_one_line_naming(done, "--catalog", bad, phrase)


def test_good_input_files_still_sync(portal: SandboxPortal, tmp_path: Path) -> None:
    config = portal.tap_config()
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(catalog_selecting(config, ["courses"])))
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": {"courses": {}}}))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"page_size": 5}))
    done = _run(
        *("--config", str(_config_file(portal, tmp_path)), "--config", str(extra)),
        *("--state", str(state), "--catalog", str(catalog)),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    streams = {json.loads(line).get("stream") for line in done.stdout.splitlines()}
    assert streams == {"courses", None}


def _sync_with_bookmark(
    portal: SandboxPortal, tmp_path: Path, bookmark: str
) -> subprocess.CompletedProcess[str]:
    config = portal.tap_config()
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(catalog_selecting(config, ["user_activity"])))
    state = tmp_path / "state.json"
    value = {"replication_key": "from_date", "replication_key_value": bookmark}
    state.write_text(json.dumps({"bookmarks": {"user_activity": value}}))
    done = _run(
        *("--config", str(_config_file(portal, tmp_path))),
        *("--state", str(state), "--catalog", str(catalog)),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _bookmark_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "is after the last day" in line]


def test_a_bookmark_in_the_future_is_said_once(portal: SandboxPortal, tmp_path: Path) -> None:
    done = _sync_with_bookmark(portal, tmp_path, "2099-01-01")
    warnings = _bookmark_warnings(done.stderr)
    assert len(warnings) == 1, done.stderr
    assert "WARNING" in warnings[0]
    assert "'user_activity'" in warnings[0]
    assert "2099-01-01" in warnings[0]
    assert '"type":"RECORD"' not in done.stdout


def test_a_bookmark_at_the_last_day_read_is_no_warning(
    portal: SandboxPortal, tmp_path: Path
) -> None:
    import datetime as dt

    yesterday = (portal.dataset.today - dt.timedelta(days=1)).isoformat()
    done = _sync_with_bookmark(portal, tmp_path, yesterday)
    assert _bookmark_warnings(done.stderr) == []
    assert '"type":"RECORD"' in done.stdout, "the lookback re-reads the last days"
