"""A faster Singer message writer: orjson, and no flush after every record.

singer-sdk's default writer serialises with simplejson and flushes stdout after every
message, a quarter of a default tap's CPU. This one serialises with orjson and lets
RECORD messages sit in stdout's buffer; any other message (STATE above all) flushes, so a
target never sees a STATE before the records it covers, and a killed tap never leaves a
STATE on the pipe whose records were lost with it.

Every line goes out whole. A signal handler runs in the main thread between two
bytecodes, possibly while a write blocked on a slow target is half done; what it wants
to write (the final STATE) waits, through `call_between_writes`, until that write is
complete, so it can never land in the middle of a line.
"""

from __future__ import annotations

import decimal
import sys
import typing as t
from dataclasses import dataclass

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter, SingerMessageType
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override

if t.TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable


def _default(value: t.Any) -> t.Any:
    """Serialise what orjson does not know natively (Decimals from stream maps)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    msg = f"Cannot serialise {type(value).__name__} in a Singer message"
    raise TypeError(msg)


class FastSingerWriter(GenericSingerWriter[bytes, Message]):
    """Writes Singer messages as JSON lines, flushing at every non-RECORD message.

    Lines go to stdout's binary buffer: orjson produces UTF-8 already, and passing text
    through `sys.stdout` would decode and re-encode every byte (a third of the CPU of a
    sync, with the non-ASCII names learner data is full of).
    """

    #: Whether RECORD messages were written since the last STATE (see
    #: `PagedStream._confirm_records`).
    records_since_state = False

    @override
    def serialize_message(self, message: Message) -> bytes:
        """One line of JSON, newline included."""
        return orjson.dumps(message.to_dict(), default=_default, option=orjson.OPT_APPEND_NEWLINE)

    @override
    def write_message(self, message: Message) -> None:
        """Write to stdout; flush unless it is a RECORD."""
        record = message.type == SingerMessageType.RECORD
        _write(self.format_message(message), flush=not record)
        if record:
            self.records_since_state = True
        elif message.type == SingerMessageType.STATE:
            self.records_since_state = False

    def write_records(
        self,
        stream: str,
        records: list[dict[str, t.Any]],
        *,
        version: int | None,
        time_extracted: dt.datetime | None,
    ) -> None:
        """Write a page of RECORD messages in one go, exactly as `write_message` would.

        The envelope is the same for every record of a page, so it is serialised once and
        only the records themselves go through the encoder.
        """
        head, tail = envelope(stream, version=version, time_extracted=time_extracted)
        dumps = orjson.dumps
        lines = [head + dumps(record, default=_default) + tail for record in records]
        self.write_lines(b"".join(lines))

    def write_lines(self, lines: bytes | memoryview) -> None:
        """Write RECORD lines serialised elsewhere (the page worker), as `write_records` does."""
        _write(lines)
        self.records_since_state = True


def envelope(
    stream: str, *, version: int | None, time_extracted: dt.datetime | None
) -> tuple[bytes, bytes]:
    """What goes before and after a record in its RECORD line (newline included).

    A page's records share it, so it is serialised once a page.
    """
    head = b'{"type":"RECORD","stream":' + orjson.dumps(stream) + b',"record":'
    tail = b""
    if version is not None:
        tail += b',"version":' + orjson.dumps(version)
    if time_extracted is not None:
        tail += b',"time_extracted":' + orjson.dumps(time_extracted)
    return head, tail + b"}\n"


@dataclass(slots=True)
class _Output:
    """Whether a write to stdout is under way, and what must wait until it is done.

    Only the main thread writes Singer messages (pages are fetched by workers, emitted by
    the main thread), and signal handlers run in the main thread too, so plain fields
    suffice: no lock, which a handler interrupting its holder could never take.
    """

    #: Writes under way (a deferred action may write, hence a depth, not a flag).
    depth: int = 0
    #: What a signal handler asked to do once the write under way is complete.
    deferred: Callable[[], None] | None = None


_OUTPUT = _Output()


def call_between_writes(action: Callable[[], None]) -> None:
    """Run `action` now, or, if a write to stdout is under way, as soon as it completes.

    For signal handlers: the handler may interrupt `buffer.write` half-way through a
    line, and anything written from there would land in that line.
    """
    if _OUTPUT.depth:
        _OUTPUT.deferred = action
    else:
        action()


def flush() -> None:
    """Flush stdout, as a write: a signal meanwhile waits until the flush is done."""
    _write(b"", flush=True)


def _write(data: bytes | memoryview, *, flush: bool = False) -> None:
    """Write bytes to stdout's buffer (or, for a text-only stdout, as text), whole.

    What a signal handler deferred (see `call_between_writes`) runs once the outermost
    write is complete, or has failed (a closed pipe), and never in between.
    """
    output = _OUTPUT
    output.depth += 1
    try:
        out = sys.stdout
        buffer = getattr(out, "buffer", None)
        if buffer is None:  # e.g. a StringIO standing in for stdout
            out.write(bytes(data).decode())
        else:
            written = buffer.write(data)
            if written != len(data):  # a raw stdout (`python -u`): short when interrupted
                _write_rest(buffer, data, written)
        if flush:
            out.flush()
    finally:
        output.depth -= 1
        if not output.depth and output.deferred is not None:
            action, output.deferred = output.deferred, None
            action()


def _write_rest(raw: t.BinaryIO, data: bytes | memoryview, written: int | None) -> None:
    """Finish a write that an unbuffered stdout cut short.

    With `PYTHONUNBUFFERED` (set by many containers), `sys.stdout.buffer` is the raw
    file, whose `write` returns early when a signal interrupts it while a slow target
    keeps the pipe full; the rest of the line would be silently lost.

    Raises:
        BlockingIOError: stdout is non-blocking and full: nothing more can be written now.
    """
    view = memoryview(data)
    while True:
        if written is None:
            msg = "stdout is non-blocking and full"
            raise BlockingIOError(msg)
        view = view[written:]
        if not view:
            return
        written = raw.write(view)
