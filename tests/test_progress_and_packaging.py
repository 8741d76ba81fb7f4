"""Progress lines on stderr, the 403 message, and schemas shipped inside the wheel."""

from __future__ import annotations

import io
import logging
import re
import typing as t
import zipfile
from pathlib import Path

import pytest
import requests
from singer_sdk.streams import RESTStream

from tap_udemy_business import progress
from tap_udemy_business.errors import EndpointUnavailableError, UdemyFatalError
from tap_udemy_business.tap import TapUdemyBusiness

from .conftest import catalog_selecting, run_tap

if t.TYPE_CHECKING:
    from tap_udemy_business.sandbox import SandboxPortal

ROOT = Path(__file__).resolve().parent.parent


def test_long_streams_log_progress_on_stderr_only(
    portal: SandboxPortal, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(progress, "DEFAULT_INTERVAL_SECONDS", 0.0)
    caplog.set_level(logging.INFO)
    config = {**portal.tap_config(), "page_size": 5}
    result = run_tap(config, catalog=catalog_selecting(config, ("user_activity",)))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress of")]
    assert any("'user_activity'" in line for line in lines)
    pattern = re.compile(
        r"Progress of '\w+': [\d,]+ records( of [\d,]+ announced)?( \(\d+% done\))? "
        r"\| [\d,]+ requests, [\d,]+ retries, [\d,]+ records/s( \| ETA \d+[hm]\d+[ms]\d*s?)?"
    )
    assert all(pattern.fullmatch(line) for line in lines), lines[:3]
    assert any("% done" in line and "ETA" in line for line in lines)
    assert not any("Progress of" in str(m) for m in result.messages)


def test_a_403_names_the_credentials_and_their_scope() -> None:
    tap = TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False)
    response = requests.Response()
    response.status_code = 403
    response.reason = "Forbidden"
    response.url = "https://acme.udemy.com/api-2.0/organizations/1/courses/list/"
    response._content = b'{"detail": "You do not have permission."}'
    stream = tap.streams["courses"]
    assert isinstance(stream, RESTStream)
    with pytest.raises(EndpointUnavailableError, match="expired or lack the scope") as caught:
        stream.validate_response(response)
    assert "acme.udemy.com" in str(caught.value)


def test_a_vanished_later_page_is_fatal_even_for_an_optional_stream() -> None:
    tap = TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False)
    response = requests.Response()
    response.status_code = 404
    response.reason = "Not Found"
    response.url = "https://acme.udemy.com/api-2.0/organizations/1/learning-paths/list/?page=3"
    stream = tap.streams["learning_paths"]
    assert isinstance(stream, RESTStream)
    with pytest.raises(UdemyFatalError, match="shrank") as caught:
        stream.validate_response(response)
    assert not isinstance(caught.value, EndpointUnavailableError)


def test_the_wheel_ships_every_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheel as the build backend makes it: the PEP 517 hook pip calls, in this process."""
    from hatchling.build import build_wheel

    monkeypatch.chdir(ROOT)  # a PEP 517 hook builds the project in the current directory
    wheel = tmp_path / build_wheel(str(tmp_path))
    names = set(zipfile.ZipFile(io.BytesIO(wheel.read_bytes())).namelist())
    for schema in (ROOT / "schemas").glob("*.json"):
        assert f"tap_udemy_business/schemas/{schema.name}" in names
    assert "tap_udemy_business/sandbox/server.py" in names


def test_streams_load_their_schemas_from_the_wheel_folder_else_the_checkout(
    tmp_path: Path,
) -> None:
    """A wheel has `tap_udemy_business/schemas`; an editable install only the root folder."""
    import json

    from tap_udemy_business.schema_files import schemas_dir

    packaged, checkout = tmp_path / "tap_udemy_business" / "schemas", tmp_path / "schemas"
    checkout.mkdir()
    assert schemas_dir((packaged, checkout)) == checkout
    packaged.mkdir(parents=True)
    assert schemas_dir((packaged, checkout)) == packaged
    with pytest.raises(FileNotFoundError, match="No schemas folder"):
        schemas_dir((tmp_path / "nowhere",))
    # This checkout is an editable install: the streams read the root folder's files.
    tap = TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False)
    assert not (ROOT / "tap_udemy_business" / "schemas").exists()
    for name, stream in tap.streams.items():
        assert stream.schema == json.loads((ROOT / "schemas" / f"{name}.json").read_text())
