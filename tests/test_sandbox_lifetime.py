"""The in-process sandbox portal lives as long as its tap, and not a moment longer.

A tap with `sandbox: true` starts a portal (a listening socket, a serving thread and one
thread per connection). Library use and test suites make taps without `invoke`, so the portal
must stop whichever way the tap's life ends: a `with` block, `stop_sandbox`, the tap being
garbage-collected, or the interpreter exiting. Each test leaves a keep-alive connection open
to the portal, so that "stopped" has to include the threads serving clients.
"""

from __future__ import annotations

import contextlib
import gc
import socket
import subprocess
import sys
import threading
import time
import typing as t
import weakref

import requests

from tap_udemy_business.sandbox import SandboxPortal
from tap_udemy_business.tap import TapUdemyBusiness

if t.TYPE_CHECKING:
    import pytest

#: How long a stopped portal's threads get to end; they are normally gone before we look.
DEADLINE_SECONDS = 10.0


def portal_threads(thread_name: str) -> list[threading.Thread]:
    """The portal's threads still alive: serving, connections, and one stopping it."""
    names = {thread_name, f"{thread_name}-connection", f"{thread_name}-stop"}
    return [thread for thread in threading.enumerate() if thread.name in names]


def use(portal: SandboxPortal, session: requests.Session) -> None:
    """One real page over a keep-alive connection, left open for the portal to cut."""
    answer = session.get(
        f"{portal.base_url}/api-2.0/organizations/{portal.organization_id}/courses/list/",
        auth=(portal.client_id, portal.client_secret),
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["count"] > 0
    assert answer.headers.get("Connection") != "close"


def assert_gone(thread_name: str, port: int) -> None:
    """No thread of the portal runs any more (joined with a deadline), and its port is shut."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    for thread in portal_threads(thread_name):
        thread.join(max(0.0, deadline - time.monotonic()))
    assert portal_threads(thread_name) == []
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return
    msg = f"port {port} still accepts connections"
    raise AssertionError(msg)


def started(tap: TapUdemyBusiness) -> SandboxPortal:
    portal = tap.sandbox
    assert portal is not None
    assert portal.running
    assert tap.api_session.base_url == portal.base_url  # the tap syncs from its own portal
    assert portal.thread_name == f"tap-udemy-business-sandbox-{portal.port}"
    return portal


def test_leaving_the_with_block_stops_the_portal() -> None:
    with requests.Session() as session:
        with TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False) as tap:
            portal = started(tap)
            use(portal, session)
            assert len(portal_threads(portal.thread_name)) == 2  # serving + one connection
        assert not portal.running
        assert_gone(portal.thread_name, portal.port)
        tap.stop_sandbox()  # a second stop is a no-op


def test_stop_sandbox_stops_the_portal() -> None:
    tap = TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False)
    portal = started(tap)
    with requests.Session() as session:
        use(portal, session)
        tap.stop_sandbox()
        assert_gone(portal.thread_name, portal.port)


def test_taps_dropped_without_stopping_leave_no_portal_behind() -> None:
    sessions = [requests.Session() for _ in range(3)]
    taps = [TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False) for _ in sessions]
    portals = [(started(tap).thread_name, started(tap).port) for tap in taps]
    for tap, session in zip(taps, sessions, strict=True):
        assert tap.sandbox is not None
        use(tap.sandbox, session)
    alive = [weakref.ref(tap) for tap in taps]
    del tap, taps
    gc.collect()
    assert [ref() for ref in alive] == [None, None, None], "something keeps a tap alive"
    for thread_name, port in portals:
        assert_gone(thread_name, port)
    for session in sessions:
        session.close()


def test_a_portal_stopped_from_one_of_its_own_threads_stops_all_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a finalizer does when the garbage collector runs on a connection thread."""
    portal = SandboxPortal().start()
    asked = threading.Event()

    def stop_from_the_handler(header: str | None) -> bool:
        asked.set()
        portal.stop()  # on the connection thread serving this very request
        return header is not None

    monkeypatch.setattr(portal, "_authorized", stop_from_the_handler)
    # The answer may or may not make it out before the connection is cut: either is fine.
    with contextlib.suppress(requests.ConnectionError):
        requests.get(f"{portal.base_url}/api-2.0/organizations/", timeout=10)
    assert asked.is_set()
    assert not portal.running
    assert_gone(portal.thread_name, portal.port)


def test_a_tap_without_sandbox_starts_nothing() -> None:
    before = set(threading.enumerate())
    tap = TapUdemyBusiness(
        config={"client_id": "i", "client_secret": "s", "organization_id": 1, "portal_name": "a"},
        parse_env_config=False,
    )
    assert tap.sandbox is None
    tap.stop_sandbox()
    assert set(threading.enumerate()) - before == set()


#: Run in a child interpreter: a tap kept alive to the end, never stopped by its program.
#: The check is registered with `atexit` before anything else, so it runs last, after the
#: tap's own exit hook; it prints what is left of the portal.
AT_EXIT = """
import atexit, socket, threading

def check():
    names = {NAME, NAME + "-connection"}
    left = [t.name for t in threading.enumerate() if t.name in names]
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=5).close()
        listening = True
    except ConnectionRefusedError:
        listening = False
    print("threads", left, "listening", listening)

atexit.register(check)

import requests
from tap_udemy_business.tap import TapUdemyBusiness

tap = TapUdemyBusiness(config={"sandbox": True}, parse_env_config=False)
NAME, PORT = tap.sandbox.thread_name, tap.sandbox.port
session = requests.Session()
url = f"{tap.sandbox.base_url}/api-2.0/organizations/{tap.sandbox.organization_id}/courses/list/"
assert session.get(url, auth=(tap.sandbox.client_id, tap.sandbox.client_secret)).ok
print("served", NAME)
"""


def test_the_portal_of_a_tap_alive_at_exit_stops_at_exit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", AT_EXIT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    served, left = done.stdout.splitlines()
    assert served.startswith("served tap-udemy-business-sandbox-")
    assert left == "threads [] listening False"
