"""The tap's side of the page worker (`page_worker.py`): start it, send it pages, read lines.

One worker serves every stream of a tap, started on the first read that uses it and
stopped with the tap's API session (or, at the latest, when the interpreter exits; the
worker also ends by itself when the tap's process does). Page threads send it bodies to
parse, one at a time over their channel; the main thread has a channel of its own, over
which it asks for each page's RECORD lines in the order they are written.

A worker that cannot be started (no `sys.executable`, a platform without `pass_fds`) is
no error: one warning, and pages are parsed in the tap as before. A worker that dies
during a sync is one: the sync fails with one line saying so (its records written so far
and the state covering them stay written).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import typing as t
import weakref
from dataclasses import dataclass, field
from itertools import count, pairwise
from pathlib import Path

from typing_extensions import override

from tap_udemy_business import page_worker
from tap_udemy_business.errors import InvalidBodyError, UdemyFatalError
from tap_udemy_business.fast_path import PreparedPage
from tap_udemy_business.list_page import Page

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from tap_udemy_business.records import Record

LOGGER = logging.getLogger("tap-udemy-business")
#: Where `tap_udemy_business` is imported from: the worker finds the same copy there when
#: no installed one comes first (a checkout on `sys.path`), and the rest of its path is the
#: interpreter's own, in the interpreter's order.
_IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)
_START = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from tap_udemy_business.page_worker import main; main(sys.argv[2:])"
)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity where the platform tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


class WorkerDiedError(UdemyFatalError):
    """The page worker ended during a sync (killed, or out of memory)."""


class PageWorker:
    """A running page worker and the two channels to it."""

    def __init__(self) -> None:
        """Start the worker process.

        Raises:
            OSError: it could not be started (no such interpreter, no more processes).
        """
        ends: list[int] = []
        pipes = [os.pipe() for _ in range(4)]  # main in/out, pages in/out
        theirs = [pipes[0][0], pipes[1][1], pipes[2][0], pipes[3][1]]
        mine = [pipes[0][1], pipes[1][0], pipes[2][1], pipes[3][0]]
        try:
            self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
                [sys.executable, "-c", _START, _IMPORT_ROOT, *map(str, theirs)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=theirs,
            )
        except BaseException:
            ends = mine
            raise
        finally:
            for fd in theirs + ends:
                os.close(fd)
        self._main = (mine[0], mine[1])
        self._pages = (mine[2], mine[3])
        self._pages_lock = threading.Lock()
        #: Main-channel requests sent and answers read so far, and answers read early.
        self._sent = 0
        self._received = 0
        self._answers: dict[int, tuple[page_worker.Header, bytes]] = {}
        #: Main-channel requests whose answers only say whether they failed.
        self._unawaited: set[int] = set()
        self._numbers = count()
        self._streams: set[str] = set()
        self._closer = weakref.finalize(self, _close, self._process, mine)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._process.pid

    def close(self) -> None:
        """Stop the worker (closing its channels ends it) and wait for it."""
        self._closer()

    def _ask_pages(self, header: page_worker.Header, blob: bytes) -> page_worker.Header:
        """A request over the page threads' channel (one at a time) and its answer."""
        try:
            with self._pages_lock:
                page_worker.write_frame(self._pages[0], header, blob)
                frame = page_worker.read_frame(self._pages[1])
        except (OSError, EOFError):
            frame = None
        return self._checked(header, frame)[0]

    def _send(self, header: page_worker.Header) -> int:
        """Send a request over the main thread's channel; its answer comes by `_receive`.

        Answers come in the order of the requests, so several may be outstanding: the
        main thread asks for a page's lines, then writes the page before it.
        """
        try:
            page_worker.write_frame(self._main[0], header)
        except OSError:
            raise self._died() from None
        self._sent += 1
        return self._sent

    def _receive(self, ticket: int, header: page_worker.Header) -> tuple[page_worker.Header, bytes]:
        """The answer to request `ticket` of the main channel (answers before it are kept)."""
        while ticket not in self._answers:
            try:
                frame = page_worker.read_frame(self._main[1])
            except (OSError, EOFError):
                frame = None
            if frame is None:
                raise self._died()
            self._received += 1
            if self._received in self._unawaited:  # only its failure matters
                self._unawaited.discard(self._received)
                self._checked({"url": "a stream's schema"}, frame)
                continue
            self._answers[self._received] = frame
        return self._checked(header, self._answers.pop(ticket))

    def _ask_main(self, header: page_worker.Header) -> tuple[page_worker.Header, bytes]:
        return self._receive(self._send(header), header)

    def _checked(
        self, header: page_worker.Header, frame: tuple[page_worker.Header, bytes] | None
    ) -> tuple[page_worker.Header, bytes]:
        """An answer, or the failure it reports raised as the SDK's error."""
        if frame is None:
            raise self._died()
        answer, data = frame
        error = answer.get("error")
        if error == page_worker.INVALID_BODY:
            raise InvalidBodyError(answer["message"])
        if error == page_worker.UNUSABLE:
            raise UdemyFatalError(answer["message"])
        if error is not None:
            msg = f"The page worker failed on {header.get('url', 'a page')}: {answer['message']}"
            raise UdemyFatalError(msg)
        return answer, data

    def _died(self) -> WorkerDiedError:
        try:
            code: int | str | None = self._process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = "still running"
        return WorkerDiedError(
            f"The page worker process (pid {self.pid}) ended during the sync (exit code "
            f"{code}); run again, or set page_worker to false to parse pages in the tap."
        )

    def open_stream(
        self,
        name: str,
        schema: dict[str, t.Any],
        keys: Sequence[str],
        learner: dict[str, list[str]] | None,
    ) -> None:
        """Tell the worker how a stream's records are checked (once per stream).

        Its answer is not waited for: the worker may still be starting, and the read's
        first request goes out meanwhile. A failure surfaces with the next answer read.
        """
        if name in self._streams:
            return
        header = {"op": "stream", "name": name, "schema": schema, "keys": list(keys)}
        self._unawaited.add(self._send({**header, "learner": learner}))
        self._streams.add(name)

    def parse(self, body: bytes, url: str, stream: str) -> Page:
        """Have a body parsed; its records stay in the worker (`Page.held`).

        They stay until the page is emitted or the stream's read is over (`forget`).

        Raises:
            InvalidBodyError: the body is not JSON (retried, as a local parse would be).
            UdemyFatalError: the JSON is not a list page.
        """
        number = next(self._numbers)
        request = {"op": "parse", "id": number, "url": url, "stream": stream}
        answer = self._ask_pages(request, body)
        for line in answer["warnings"]:
            LOGGER.warning("%s", line)
        return Page(
            url=url,
            count=answer["count"],
            next_url=answer["next"],
            records=[],
            held=number,
            size=answer["size"],
            classes=answer["classes"],
        )

    def forget(self, stream: str) -> tuple[list[list[t.Any]], list[list[t.Any]]]:
        """Drop what the worker still holds of a stream's read: it is over.

        Returns:
            The values the worker set aside in the read (field, JSON type, how many) and
            the strings that were no date (field, how many), for the stream's report.
        """
        answer, _ = self._ask_main({"op": "forget", "stream": stream})
        return answer["set_aside"], answer["undated"]

    def ask_lines(self, request: page_worker.Header) -> int:
        """Ask for a held page's RECORD lines; `lines` collects them (see `HeldPage`)."""
        return self._send({"op": "emit", **request})

    def lines(self, ticket: int, url: str) -> tuple[page_worker.Header, bytes]:
        """The answer to `ask_lines`."""
        return self._receive(ticket, {"url": url})


def _close(process: subprocess.Popen[bytes], fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - it ends on EOF at once
        process.kill()
        process.wait()


@dataclass(eq=False)
class HeldPage(PreparedPage):
    """A page whose records the worker holds, written from its RECORD lines."""

    #: The worker holding the records.
    worker: PageWorker
    #: The page (`held` set).
    page: Page
    #: The stream's name.
    stream: str
    #: The window its records are stamped with; None: no stamping.
    window: tuple[str, str] | None
    #: Which query of the read the page belongs to: its `learner_key`s are told apart
    #: within one query.
    query: int
    #: The replication key and the value every record of the page has (empty without).
    bookmark: Record
    #: Whether the page is the first of a query that follows another.
    starts_query: bool = False
    #: The main-channel request that asked for its lines.
    _ticket: int = field(default=-1, init=False)

    @override
    def __len__(self) -> int:
        """How many records the page has."""
        return self.page.size

    @override
    def request(self, head: bytes, tail: bytes, ends: Sequence[int]) -> None:
        """Have the records stamped, checked and serialised, while the tap writes others."""
        self._ticket = self.worker.ask_lines(
            {
                "id": self.page.held,
                "stream": self.stream,
                "window": self.window,
                "query": self.query,
                "head": head.decode(),
                "tail": tail.decode(),
                "ends": list(ends),
            }
        )

    @override
    def lines(self) -> list[memoryview]:
        """The lines `request` asked for, one piece per run.

        Raises:
            UdemyFatalError: a record cannot be loaded (it lacks a key field, say).
        """
        answer, lines = self.worker.lines(self._ticket, self.page.url)
        view = memoryview(lines)
        starts = [0, *answer["offsets"]]
        return [view[start:end] for start, end in pairwise(starts)]
