"""The page worker: a second process that parses, checks and serialises pages.

At low latency the tap is bound by one core: every page is parsed, checked and turned
into RECORD lines under the GIL of the process that also speaks HTTP and writes stdout.
The worker takes that work to a second core. It imports neither singer-sdk nor requests
(50 to 80 ms to start), holds no secret and never touches stdout; the tap
(`remote_pages.py`) talks to it over two pairs of pipes, in frames:

* the page threads' channel: `parse` a body; the worker keeps the records and answers
  what the page reader needs (`count`, `next`, how many records, their `_class`);
* the main thread's channel: `stream` (what checking a stream's records takes), `emit`
  a page in the order the records go out (stamped with its window and `learner_key`,
  checked, serialised between the envelope the tap gives), and `forget` the pages of a
  read that is over.

A frame is two little-endian 32-bit lengths, a JSON header of that first length and a
blob of the second (a body, or RECORD lines). The worker ends when either channel
closes, as it does when the tap exits, however it exits; it ignores SIGINT and SIGTERM,
which the tap handles for both (a terminal's Ctrl-C reaches the whole process group).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import selectors
import signal
import struct
import sys
import threading
import typing as t
from dataclasses import dataclass, field

import orjson
from typing_extensions import override

from tap_udemy_business.data_errors import InvalidBody, UnusableData
from tap_udemy_business.keys import LearnerKeys, stamp_window
from tap_udemy_business.pages import parse_page
from tap_udemy_business.records import RecordChecker

if t.TYPE_CHECKING:
    from tap_udemy_business.records import Record

Header = dict[str, t.Any]
_FRAME = struct.Struct("<II")
#: What an answer's `error` says went wrong: raised again as such in the tap.
INVALID_BODY = "invalid_body"
UNUSABLE = "unusable"
INTERNAL = "internal"


def write_frame(fd: int, header: Header, blob: bytes | memoryview = b"") -> None:
    """Write one frame whole, however many writes the pipe takes."""
    encoded = orjson.dumps(header)
    data = memoryview(b"".join((_FRAME.pack(len(encoded), len(blob)), encoded, blob)))
    while data:
        data = data[os.write(fd, data) :]


def read_frame(fd: int) -> tuple[Header, bytes] | None:
    """Read one frame; None when the other end closed the pipe between two frames.

    Raises:
        EOFError: the pipe closed in the middle of a frame.
    """
    prefix = _read_exactly(fd, _FRAME.size, at_start=True)
    if prefix is None:
        return None
    header_size, blob_size = _FRAME.unpack(prefix)
    data = _read_exactly(fd, header_size + blob_size, at_start=False)
    if data is None:  # pragma: no cover - `at_start=False` raises instead
        raise EOFError
    return orjson.loads(data[:header_size]), data[header_size:]


def _read_exactly(fd: int, size: int, *, at_start: bool) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        read = os.readv(fd, [view[got:]])
        if not read:
            if got == 0 and at_start:
                return None
            msg = "the pipe closed in the middle of a frame"
            raise EOFError(msg)
        got += read
    return bytes(buffer)


@dataclass(slots=True)
class _Stream:
    """What checking and stamping one stream's records takes, and where it stands."""

    checker: RecordChecker
    learners: LearnerKeys | None
    #: The query whose pages are being emitted, and the `learner_key`s given in it.
    query: int = -1
    seen: dict[tuple[t.Any, ...], int] = field(default_factory=dict)


class _Warnings(logging.Handler):
    """Collects what parsing a page warns about, for the tap to log as its own."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    @override
    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Worker:
    """The worker's state: the streams it checks and the pages it holds, by number."""

    def __init__(self) -> None:
        """Start with no stream and no page."""
        self.streams: dict[str, _Stream] = {}
        #: Page number -> the stream, the URL and the records of a page not yet emitted.
        self.pages: dict[int, tuple[str, str, list[Record]]] = {}
        self._warnings = _Warnings()
        self._logger = logging.getLogger("tap-udemy-business.page-worker")
        self._logger.propagate = False
        self._logger.addHandler(self._warnings)

    def answer(self, header: Header, blob: bytes) -> tuple[Header, bytes]:
        """Carry out one request; a failure is an answer too, naming what went wrong."""
        try:
            return getattr(self, f"_{header['op']}")(header, blob)  # type: ignore[no-any-return]
        except InvalidBody as exc:
            return {"error": INVALID_BODY, "message": str(exc)}, b""
        except UnusableData as exc:
            return {"error": UNUSABLE, "message": str(exc)}, b""
        except Exception as exc:  # noqa: BLE001 - reported to the tap, which fails with it
            return {"error": INTERNAL, "message": f"{type(exc).__name__}: {exc}"}, b""

    def _stream(self, header: Header, _blob: bytes) -> tuple[Header, bytes]:
        learner = header["learner"]
        self.streams[header["name"]] = _Stream(
            RecordChecker(header["schema"], key_fields=header["keys"]),
            None if learner is None else LearnerKeys(learner["keys"], learner["facts"]),
        )
        return {}, b""

    def _parse(self, header: Header, body: bytes) -> tuple[Header, bytes]:
        url = header["url"]
        page = parse_page(body, url, self._logger)
        warnings, self._warnings.lines = self._warnings.lines, []
        self.pages[header["id"]] = (header["stream"], url, page.records)
        return {
            "count": page.count,
            "next": page.next_url,
            "size": len(page.records),
            "classes": page.record_classes(),
            "warnings": warnings,
        }, b""

    def _emit(self, header: Header, _blob: bytes) -> tuple[Header, bytes]:
        _stream, url, records = self.pages.pop(header["id"])
        stream = self.streams[header["stream"]]
        window = header["window"]
        if window is not None and stream.learners is not None:
            if header["query"] != stream.query:
                stream.query, stream.seen = header["query"], {}
            stamp_window(records, (window[0], window[1]), stream.seen, stream.learners)
        checker = stream.checker
        checker.check(records, url)
        head, tail = header["head"].encode(), header["tail"].encode()
        dumps = orjson.dumps
        lines = [head + dumps(record) + tail for record in records]
        offsets = []
        size = 0
        start = 0
        for end in header["ends"]:
            size += sum(map(len, lines[start:end]))
            offsets.append(size)
            start = end
        return {"offsets": offsets}, b"".join(lines)

    def _forget(self, header: Header, _blob: bytes) -> tuple[Header, bytes]:
        name = header["stream"]
        self.pages = {number: held for number, held in self.pages.items() if held[0] != name}
        stream = self.streams[name]
        stream.query, stream.seen = -1, {}
        checker = stream.checker
        answer = {
            "set_aside": [[field, kind, n] for (field, kind), n in checker.set_aside.items()],
            "undated": [[field, n] for field, n in checker.undated.items()],
        }
        checker.set_aside.clear()
        checker.undated.clear()
        return answer, b""


class _Sender(threading.Thread):
    """Writes the main channel's answers, so that the worker never waits for its reader.

    The main thread asks for a page's lines, then writes the page before it, and may then
    wait for a page thread's parse: were the worker blocked writing lines into a full
    pipe meanwhile, no parse would be answered and both processes would wait forever.
    """

    def __init__(self, fd: int) -> None:
        super().__init__(name="page-worker-sender", daemon=True)
        self._fd = fd
        self.queue: queue.SimpleQueue[tuple[Header, bytes] | None] = queue.SimpleQueue()

    @override
    def run(self) -> None:
        with contextlib.suppress(OSError):  # the tap went away: nobody to answer
            while (answer := self.queue.get()) is not None:
                write_frame(self._fd, *answer)


def serve(main: tuple[int, int], pages: tuple[int, int]) -> None:
    """Answer requests on both channels (request fd, answer fd) until one closes.

    The main thread's requests go first when both channels have one: it waits on them.
    """
    worker = Worker()
    sender = _Sender(main[1])
    sender.start()
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(main[0], selectors.EVENT_READ, 0)
            selector.register(pages[0], selectors.EVENT_READ, 1)
            while True:
                for channel in sorted(key.data for key, _ in selector.select()):
                    frame = read_frame(main[0] if channel == 0 else pages[0])
                    if frame is None:
                        return
                    answer = worker.answer(*frame)
                    if channel == 0:
                        sender.queue.put(answer)
                    else:
                        write_frame(pages[1], *answer)
    finally:
        sender.queue.put(None)


def main(argv: list[str]) -> None:
    """`python -m tap_udemy_business.page_worker MAIN_IN MAIN_OUT PAGES_IN PAGES_OUT`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fds = [int(arg) for arg in argv]
    with contextlib.suppress(BrokenPipeError, EOFError):  # the tap went away mid-frame
        serve((fds[0], fds[1]), (fds[2], fds[3]))


if __name__ == "__main__":
    main(sys.argv[1:])
