"""Records to messages a page at a time, only where that is exactly singer-sdk's own loop.

singer-sdk's `Stream._sync_records` spends ~15 µs of Python per record (post-processing,
child contexts, a message object, a clock read, a state update, a counter), more than
everything else a record costs in this tap (see `../shared/reference/singer-sdk-notes.md`).
`PagedStream` writes a page of records in one go instead, and writes what the SDK's loop
would write: the same RECORD messages (`time_extracted` read from the SDK's own clock, the
SDK's `version`), the same STATE messages at the same points, the same state and the same
errors. That holds only while nothing the page loop leaves out could change the output, so
it runs only when

* the installed singer-sdk is in `VERIFIED_SDK_VERSIONS`: the loop it stands in for is
  private and changes between releases;
* the stream overrides none of the hooks the SDK's loop calls per record (`post_process`,
  the child-context hooks, message generation, the state update...);
* there is no context, partition, child stream or record limit, and messages are written;
* there are no stream maps and no flattening, and messages go through `FastSingerWriter`.

Otherwise singer-sdk's own loop runs, and one INFO line says why. The two loops are compared
message for message on every record shape of the sandbox (tests/test_fast_path.py).

Whichever loop runs, two rules of `PagedStream` hold: the bookmark never moves backwards
within a run (records a lookback reads again leave it, and their order is still checked),
and a stream's last records are followed by a STATE.
"""

from __future__ import annotations

import abc
import datetime as dt
import re
import typing as t
from importlib.metadata import version
from operator import itemgetter

from singer_sdk import Stream
from singer_sdk.exceptions import InvalidStreamSortException
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import StateMessage
from singer_sdk.singerlib.catalog import REPLICATION_INCREMENTAL as INCREMENTAL
from singer_sdk.streams import core as sdk_stream_core
from typing_extensions import override

from tap_udemy_business.writer import FastSingerWriter, envelope

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from singer_sdk.helpers.types import Context

    from tap_udemy_business.records import Record

#: The singer-sdk releases whose `Stream._sync_records` this loop was checked against, line
#: by line: from the first (included) to the second (excluded). Patch releases of 0.54 are
#: bug fixes; the parity test runs against whichever version is installed, so one that
#: changed the loop would fail it. 0.55 hoists `time_extracted` out of the loop: re-check it
#: (and run the parity test) before widening the range.
VERIFIED_SDK_VERSIONS: t.Final = ((0, 54, 9), (0, 55, 0))

#: Hooks the SDK's loop calls for every record and the page loop does not (or, for the state
#: update, once per run of equal bookmark values): a subclass that overrides one of them
#: must get the SDK's loop, or its override would be silently skipped.
PER_RECORD_HOOKS = (
    "get_records",
    "post_process",
    "get_child_context",
    "generate_child_contexts",
    "_get_state_partition_context",
    "_process_record",
    "_check_max_record_limit",
    "_generate_record_messages",
    "_write_record_message",
    "_increment_stream_state",
)

_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(.*)")
_PRE_RELEASE = re.compile(r"[-_.]?(a|alpha|b|beta|c|rc|pre|preview|dev)\d*", re.IGNORECASE)


def sdk_version_verified(installed: str) -> bool:
    """Whether a singer-sdk version (as its metadata spells it) is in the verified range.

    A pre-release counts as earlier than its release: 0.55.0rc1 is outside a range that
    stops before 0.55.0, and 0.54.9rc1 outside one that starts at 0.54.9.
    """
    match = _RELEASE.fullmatch(installed.strip())
    if match is None:
        return False
    major, minor, patch, rest = match.groups()
    release = (int(major), int(minor), int(patch or 0))
    first, last = VERIFIED_SDK_VERSIONS
    if _PRE_RELEASE.match(rest):
        return first < release < last
    return first <= release < last


#: The singer-sdk this process runs (read once: the metadata lookup scans the environment).
INSTALLED_SDK = version("singer-sdk")


def _sdk_clock() -> dt.datetime:
    """The clock singer-sdk's loop stamps `time_extracted` with, looked up at each call.

    Both loops take the time from the same function, so a test that freezes it gets the
    same messages from both, and the page loop is never a different clock.
    """
    clock: Callable[[], dt.datetime] = sdk_stream_core.utc_now  # type: ignore[attr-defined]
    return clock().astimezone(dt.UTC)


class PreparedPage(abc.ABC):
    """A page whose RECORD lines are made elsewhere (by the page worker), not its records.

    Only the page loop writes one: the streams yield them only when it runs
    (`PagedStream.page_loop`), and every record of one shares the page's bookmark value.
    """

    #: The replication key and the value every record of the page has; empty without one.
    bookmark: Record
    #: Whether the page is the first of a query that follows another: the stream's state
    #: is written before it, as a stream writes it before a page of its own.
    starts_query: bool

    @abc.abstractmethod
    def __len__(self) -> int:
        """How many records the page has."""

    @abc.abstractmethod
    def request(self, head: bytes, tail: bytes, ends: Sequence[int]) -> None:
        """Ask for the page's RECORD lines between `head` and `tail`, in runs ending at `ends`.

        They are made while the page before is written; `lines` waits for them.
        """

    @abc.abstractmethod
    def lines(self) -> Sequence[bytes | memoryview]:
        """The lines asked for: one piece per run."""


#: A prepared page whose lines were asked for: the page, the records written before it and
#: where its runs end.
Pending = tuple[PreparedPage, int, list[int]]


class PagedStream(Stream):
    """A stream whose records come a page at a time, emitted a page at a time when it may.

    Subclasses implement `pages`. The bookmark never moves backwards within a run: a record
    whose bookmark value is below the one the state held when the run began (a window read
    again by a lookback) leaves the bookmark where it is. The SDK's sort check
    (`is_sorted` and `check_sorted`) applies to every record from the bookmark on, and its
    equivalent here to those before it: no record's value may be below one already read.
    """

    #: The bookmark the state held when the current read began; records below it (read
    #: again on purpose) do not move it.
    _bookmark_floor: t.Any = None
    #: The highest bookmark value of the current read's records so far.
    _highest_read: t.Any = None
    #: Whether every record of a page has the same bookmark value by construction (the
    #: page loop then spares itself a look at each); else each page is checked.
    one_bookmark_value_per_page: t.ClassVar[bool] = False

    #: Whether the page loop is what writes the current read's records (then `pages` may
    #: yield `PreparedPage`s); False while singer-sdk's own loop runs.
    page_loop: bool = False

    @abc.abstractmethod
    def pages(self, context: Context | None) -> Iterator[list[Record] | PreparedPage]:
        """Yield the stream's records, a page (a list, in bookmark order) at a time.

        `PreparedPage`s only while `page_loop` is set.
        """

    @override
    def get_records(self, context: Context | None) -> Iterator[Record]:
        """The records of every page, one by one: what singer-sdk's loop reads."""
        for records in self.pages(context):
            if isinstance(records, PreparedPage):  # pragma: no cover - a stream's bug
                msg = "a prepared page reached singer-sdk's loop"
                raise TypeError(msg)
            yield from records

    def deselects(self) -> bool:
        """Whether the catalog deselects some of the stream's properties."""
        return any(not selected for breadcrumb, selected in self.mask.items() if breadcrumb)

    @override
    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        """Advance the bookmark from a record, unless the record is before where it stood.

        A lookback reads days before the bookmark again, to catch late rows; taking their
        value would move the bookmark back (and the SDK's sort check would refuse them as
        disorder). Their order is checked here instead, as the SDK checks the others.
        Depends on the record's bookmark value (and the values before it) alone, so the
        page loop may call it once for several records of one value.

        Raises:
            InvalidStreamSortException: a record's value is below one already read.
        """
        key = self.replication_key
        value = latest_record.get(key) if key else None
        if value is None or self.replication_method != INCREMENTAL:
            super()._increment_stream_state(latest_record, context=context)
            return
        highest = self._highest_read
        if highest is not None and value < highest and self.is_sorted and self.check_sorted:
            msg = (
                f"Unsorted data detected in stream. Latest value '{value}' is smaller than "
                f"previous max '{highest}'."
            )
            raise InvalidStreamSortException(msg)
        if highest is None or value > highest:
            self._highest_read = value
        floor = self._bookmark_floor
        if floor is not None and value < floor:
            return
        super()._increment_stream_state(latest_record, context=context)

    def _starting_bookmark(self, context: Context | None) -> t.Any:
        """The bookmark the state holds as a read begins (None without one, or partitioned)."""
        if not self.replication_key or context is not None or self.partitions:
            return None
        return self.stream_state.get("replication_key_value")

    @override
    def _sync_records(
        self,
        context: Context | None = None,
        *,
        write_messages: bool = True,
    ) -> t.Generator[dict[str, t.Any], t.Any, t.Any]:
        """Emit the records a page at a time when that is the SDK's loop; else run it."""
        self._bookmark_floor = self._starting_bookmark(context)
        self._highest_read = None
        reason = self.sdk_loop_reason(context, write_messages=write_messages)
        if reason is not None:
            self.logger.info(
                "Stream '%s': records go through singer-sdk's own loop, one at a time: %s",
                self.name,
                reason,
            )
            yield from super()._sync_records(context, write_messages=write_messages)
        else:
            self.page_loop = True
            try:
                yield from self._sync_pages()
            finally:
                self.page_loop = False
        if write_messages:
            self._confirm_records()

    def _confirm_records(self) -> None:
        """End with a STATE when records came after the last one, changed or not.

        singer-sdk writes a STATE only when the state differs from the last one written.
        A read that only went over days before the bookmark (a lookback) leaves it as it
        was, so the stream's last records would be followed by no STATE, and a target
        that keeps the state it saw after the last record (target-jsonl) would keep none.
        """
        writer = self._tap.message_writer
        if isinstance(writer, FastSingerWriter) and writer.records_since_state:
            writer.write_message(StateMessage(value=self.tap_state))

    def sdk_loop_reason(self, context: Context | None, *, write_messages: bool) -> str | None:
        """Why singer-sdk's own loop must run here; None when the page loop is the same."""
        if not sdk_version_verified(INSTALLED_SDK):
            first, last = (".".join(map(str, bound)) for bound in VERIFIED_SDK_VERSIONS)
            return (
                f"singer-sdk {INSTALLED_SDK} is outside the versions the per-page loop was "
                f"verified with ({first} up to {last}, excluded)"
            )
        for hook in PER_RECORD_HOOKS:
            if getattr(type(self), hook) is not getattr(PagedStream, hook):
                return f"{type(self).__name__} overrides {hook}()"
        return self._setup_reason(context, write_messages=write_messages) or self._output_reason()

    def _setup_reason(self, context: Context | None, *, write_messages: bool) -> str | None:
        if not write_messages:
            return "its messages are not written here (batch mode)"
        if context is not None or self.partitions:
            return "it is read in partitions"
        if self.child_streams:
            return "it has child streams"
        if self.ABORT_AT_RECORD_COUNT is not None:
            return "a record limit is set (a dry run)"
        if not self.selected:
            return "it is not selected (only streams below it are)"
        return None

    def _output_reason(self) -> str | None:
        if type(self._tap.message_writer) is not FastSingerWriter:
            return "the tap's message writer is not FastSingerWriter"
        maps = self.stream_maps
        if (
            len(maps) != 1
            or type(maps[0]) is not SameRecordTransform
            or maps[0].stream_alias != self.name
        ):
            return "stream maps are configured"
        if maps[0].flattening_enabled:
            return "flattening is enabled"
        return None

    def _sync_pages(self) -> t.Generator[Record, t.Any, None]:
        """singer-sdk 0.54's `_sync_records` for one unpartitioned read, a page per step.

        Per record the SDK's loop would: post-process (the default returns the record),
        look for child streams (none), pop deselected properties, conform types (the
        stream's level), map (the identity), write the RECORD, advance the state, write a
        STATE every `STATE_MSG_FREQUENCY` records, and count it. Here each of those happens
        once per page where its effect is the same, and per record where it is not.

        The SDK's loop yields each record to its caller, `Stream.sync`, which discards
        them (a batch sync reads them, but never writes messages: it takes the SDK's
        loop); this one yields each page's last record, sparing a step per record.
        """
        writer = t.cast("FastSingerWriter", self._tap.message_writer)
        deselects = self.deselects()
        record_counter = self.get_record_counter()
        timer = self.get_sync_timer()
        written = 0
        with record_counter, timer:
            record_counter.with_context({})
            timer.with_context({})
            self._write_starting_replication_value(None)
            pending: Pending | None = None  # asked for, not yet written
            pages = self.pages(None)
            while (records := self._next_page(pages, writer, pending)) is not None:
                asked: Pending | None = None
                if isinstance(records, PreparedPage):
                    # Its lines are made while the page before it is written.
                    asked = self._ask_lines(records, written)
                if pending is not None:
                    record_counter.increment(len(pending[0]))
                    yield self._write_prepared(writer, *pending)
                    pending = None
                if isinstance(records, PreparedPage):
                    pending = asked
                elif records:
                    if deselects:
                        for record in records:
                            pop_deselected_record_properties(record, self.schema, self.mask)
                    self._write_page(writer, records, written)
                    record_counter.increment(len(records))
                    yield records[-1]
                written += len(records)
            if pending is not None:
                record_counter.increment(len(pending[0]))
                yield self._write_prepared(writer, *pending)
            self._finalize_state(self.get_context_state(None))
        self._finalize_state(self.stream_state)
        self._write_state_message()

    def _write_page(self, writer: FastSingerWriter, records: list[Record], written: int) -> None:
        """Write a page's RECORDs, advance the state and write STATEs as the SDK's loop does.

        The records go out in runs, and a STATE follows a run where the SDK writes one
        (after every `STATE_MSG_FREQUENCY`-th record). When the page's records share one
        bookmark value (a window's: always, in this tap), the state update is a function
        of that value alone, so it is made once, after the first record, which is a run
        of its own: a record the sort check refuses fails the sync right after it is
        written, as in the SDK. Otherwise every record is a run, with its own update.

        Args:
            writer: the tap's message writer.
            records: the page's records, ready to write.
            written: records written by this read before the page.
        """
        frequency = self.STATE_MSG_FREQUENCY
        time_extracted = _sdk_clock()
        one_value = self._one_bookmark_value(records)
        start = 0
        for end in _run_ends(len(records), written, frequency, one_value=one_value):
            writer.write_records(
                self.name,
                records[start:end],
                version=self._stream_version,
                time_extracted=time_extracted,
            )
            self.state_manager.is_flushed = False
            if start == 0 or not one_value:
                self._increment_stream_state(records[end - 1], context=None)
            if (written + end) % frequency == 0:
                self._write_state_message()
            start = end

    def _next_page(
        self,
        pages: Iterator[list[Record] | PreparedPage],
        writer: FastSingerWriter,
        pending: Pending | None,
    ) -> list[Record] | PreparedPage | None:
        """The next page, None after the last; a failure first writes the page pending.

        Its records were read before the failure, and a page loop without prepared pages
        would have written them already.
        """
        try:
            return next(pages)
        except StopIteration:
            return None
        except BaseException:
            if pending is not None:
                self._write_prepared(writer, *pending)
            raise

    def _ask_lines(self, page: PreparedPage, written: int) -> Pending:
        """Ask for a prepared page's lines: the envelope, by the SDK's clock, and its runs.

        Returns:
            The page, the records written before it and where its runs end.
        """
        head, tail = envelope(self.name, version=self._stream_version, time_extracted=_sdk_clock())
        frequency = self.STATE_MSG_FREQUENCY
        ends = list(_run_ends(len(page), written, frequency, one_value=True)) if len(page) else []
        page.request(head, tail, ends)
        return page, written, ends

    def _write_prepared(
        self, writer: FastSingerWriter, page: PreparedPage, written: int, ends: list[int]
    ) -> Record:
        """`_write_page` for a page whose lines come ready: the same runs and STATEs.

        A STATE goes first when the page starts a query (the one before it is over), as
        the streams write one before a page of their own.

        Returns:
            The page's bookmark (what the loop yields for it).
        """
        lines = page.lines()
        if page.starts_query:
            self._write_state_message()
        for run, (end, piece) in enumerate(zip(ends, lines, strict=True)):
            writer.write_lines(piece)
            self.state_manager.is_flushed = False
            if run == 0:
                self._increment_stream_state(page.bookmark, context=None)
            if (written + end) % self.STATE_MSG_FREQUENCY == 0:
                self._write_state_message()
        return page.bookmark

    def _one_bookmark_value(self, records: list[Record]) -> bool:
        """Whether the records share one (non-null) bookmark value, or there is no bookmark."""
        key = self.replication_key
        if not key:
            return True  # the update ignores the records (or fails on the first alike)
        if self.one_bookmark_value_per_page:
            return records[0].get(key) is not None
        try:
            values = list(map(itemgetter(key), records))
        except KeyError:  # the SDK fails on such a record, after writing it
            return False
        return values[0] is not None and values.count(values[0]) == len(values)


def _run_ends(count: int, written: int, frequency: int, *, one_value: bool) -> Iterable[int]:
    """Where a page's runs of records end (exclusive indexes, ascending).

    Args:
        count: the page's records.
        written: records written before the page, which place the periodic STATEs.
        frequency: a STATE after every this many records.
        one_value: the records share a bookmark value: the first record alone, then runs
            up to each STATE; else one run per record.
    """
    if not one_value:
        return range(1, count + 1)
    to_next_state = frequency - written % frequency
    return sorted({1, count, *range(to_next_state, count + 1, frequency)})
