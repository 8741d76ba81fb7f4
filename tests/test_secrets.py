"""The credentials never reach any output, in any encoding, even from a server that echoes them.

A server (or a proxy in front of it) that echoes the request's `Authorization` header
back, in a body or inside the links it builds, puts the credentials where the tap
quotes the server: error lines, retry lines, urllib3's request lines, tracebacks at
DEBUG. The test runs the real CLI at DEBUG against such a server and searches everything
it printed for the client id, the secret and the Basic token, raw, URL-encoded and
JSON-escaped, and for the first characters of the token.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest

from .conftest import POLL, TAP_CLI_QUICK_RETRIES

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ORGANIZATION = 7
CLIENT_ID = "sentinel id/7Q2+x"


def _secret() -> str:
    """A secret that JSON, URLs and Python all escape, whose token has `+` and `/` too."""
    for n in range(10):
        # Five-byte runs of '~' and '?' hold a triple that base64 turns into '+' or '/'.
        secret = f'{n} sentinel "secret"\\Zx81/do+not&leak é~~~~~?????'
        token = base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode()
        if "+" in token and "/" in token:
            return secret
    raise AssertionError  # pragma: no cover


CLIENT_SECRET = _secret()
TOKEN = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def _shapes(value: str) -> set[str]:
    """How `value` shows in URLs, JSON and Python reprs (itself included)."""
    json_forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        repr(value)[1:-1],
        *json_forms,
        *(form.replace("/", "\\/") for form in json_forms),
    }


FORBIDDEN = {
    **{f"client id as {shape!r}": shape for shape in _shapes(CLIENT_ID)},
    **{f"secret as {shape!r}": shape for shape in _shapes(CLIENT_SECRET)},
    **{f"token as {shape!r}": shape for shape in _shapes(TOKEN)},
    "the token's first 12 characters": TOKEN[:12],
}


class _EchoingPortal:
    """Answers a courses page whose `next` link carries the request's credentials, then
    500 and 400 for that link, with bodies that echo the request headers as JSON."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        self.echo_requests = 0
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # the head and the body are two writes: send both now

            def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
                """Quiet."""

            def _json(self, status: int, body: dict[str, t.Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                header = self.headers.get("Authorization", "")
                portal.authorizations.append(header)
                user, _, password = (
                    base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
                )
                path = urlsplit(self.path).path
                query = dict(parse_qsl(urlsplit(self.path).query))
                echoed = {"password": password, "user": user, "authorization": header}
                if query.get("page") != "2":
                    # The link a careless server builds from the request it was sent.
                    link = (
                        f"{portal.base_url}{path}?page=2"
                        f"&auth={quote(header, safe='')}&user={quote(user, safe='')}"
                        f"&pass={quote_plus(password)}"
                    )
                    record = {"_class": "course", "id": 1, "title": "Echo"}
                    page = {"count": 2, "next": link, "previous": None, "results": [record]}
                    self._json(200, page)
                    return
                portal.echo_requests += 1
                if portal.echo_requests == 1:  # retried: the link goes into a retry line
                    self._json(500, {"detail": "try again", **echoed})
                else:
                    headers = dict(self.headers)
                    self._json(400, {"detail": "bad request", **echoed, "headers": headers})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs=POLL, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echoing_portal() -> Iterator[_EchoingPortal]:
    portal = _EchoingPortal()
    yield portal
    portal.close()


def test_an_echoing_server_never_makes_the_tap_print_a_credential(
    echoing_portal: _EchoingPortal, tmp_path: Path
) -> None:
    config = {
        "api_url": echoing_portal.base_url,
        "organization_id": ORGANIZATION,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "max_retries": 1,
    }
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    done = subprocess.run(
        [*TAP_CLI_QUICK_RETRIES, "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TAP_UDEMY_BUSINESS_LOGLEVEL": "DEBUG"},
        check=False,
    )
    assert f"Basic {TOKEN}" in echoing_portal.authorizations, "the server saw no credentials"
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Sync failed" in done.stderr
    assert "Traceback" in done.stderr, "at DEBUG the failure's traceback is shown"
    # The echoed values did reach the output, blanked out: the test is not vacuous.
    assert "<redacted>" in done.stderr
    output = done.stdout + done.stderr
    leaks = [name for name, shape in FORBIDDEN.items() if shape in output]
    assert not leaks, f"leaked: {leaks}"
