"""Stopping on SIGINT or SIGTERM: at once, with a final STATE, whole lines, never exit 0.

A sync spends its time waiting: for pages in flight (up to `request_timeout`), for a
429's `Retry-After` (up to `max_retry_seconds`), in worker threads that nothing can
interrupt. Unwinding the main thread would wait for all of them before exiting (the
page reader joins its workers), which is how a SIGTERM used to take a minute or more and
still exit 0.

So the handler does not unwind. It runs in the main thread, which only ever writes
whole lines (see `writer.call_between_writes`): at the first moment no write is under
way, it writes a final STATE of the tap's state as it is then (bookmarks only ever move
after the records they cover have been written, so the state covers exactly what was
emitted), flushes it with the records before it, says so in one line, and ends the
process with `os._exit`: requests in flight and retry waits are abandoned with it, their
sockets closed by the system. The exit status is the shell's for the signal: 130 for
SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import typing as t

from tap_udemy_business.writer import call_between_writes

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from types import FrameType

#: The signals that stop a sync, as a scheduler (SIGTERM) or a person (SIGINT) sends them.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    """The shell's exit status for a process ended by `signum`: 128 + its number."""
    return 128 + signum


class StopOnSignal:
    """Installs the SIGINT/SIGTERM handlers of one CLI run and performs the stop.

    Attributes:
        final_state: writes the final STATE; set once the tap exists (before that,
            nothing has been written and there is nothing to save).
    """

    def __init__(self, logger: logging.Logger) -> None:
        """Log the stop through `logger` (whose handlers redact secrets)."""
        self.logger = logger
        self.final_state: Callable[[], None] | None = None
        self._signum: int | None = None

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (only the main thread may install)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        """Stop now, or as soon as the write to stdout under way is complete.

        A second signal while the stop is under way changes nothing: the final STATE
        is being written, and cutting it short would leave half a line.
        """
        if self._signum is not None:
            return
        self._signum = signum
        call_between_writes(self._stop)

    def _stop(self) -> t.NoReturn:
        """Write the final STATE, say why the sync stopped, and end the process."""
        signum = self._signum if self._signum is not None else signal.SIGTERM
        status = exit_status(signum)
        saved = "the final STATE covers every record written; the next run resumes from it"
        try:
            if self.final_state is None:
                saved = "it had not started, and wrote nothing"
            else:
                self.final_state()
        except BaseException:  # noqa: BLE001 - stdout may be gone: stop all the same
            saved = "stdout is closed, so no final STATE could be written"
        with contextlib.suppress(BaseException):
            self.logger.error(
                "Sync stopped by %s (exit %d): %s.", signal.Signals(signum).name, status, saved
            )
            sys.stderr.flush()
        os._exit(status)
