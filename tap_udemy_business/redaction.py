"""Credentials blanked out of every message, traceback and log line, in every encoding.

The client id and secret reach output in more shapes than their own: inside the Basic
token (base64 of `id:secret`), percent-encoded in a URL a server built from the request,
JSON-escaped in a body that echoes the request headers, Python-escaped in a `repr`. One
process-wide set of patterns covers every shape; `RedactingFilter`, attached to every
logging handler, applies it to each record before any formatter sees it, so a new
message, a traceback at DEBUG or a third-party library's log line cannot leak what an
individual call site forgot to clean.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus

from typing_extensions import override

REDACTED = "<redacted>"
#: Bare values this short are not blanked out of messages: they would match words.
MIN_SECRET_LENGTH = 8


def shapes(value: str) -> set[str]:
    """The shapes `value` takes in URLs, JSON, HTML and Python reprs, itself included."""
    json_forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    # Some encoders escape the solidus too (PHP, some proxies' error pages).
    json_forms |= {form.replace("/", "\\/") for form in json_forms}
    return {
        value,
        repr(value)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value, safe=""),
        quote_plus(value),
        html.escape(value),
        *json_forms,
    }


#: Any Basic credential, ours or not, raw or URL-encoded: an echoed `Authorization`
#: header cut short (a quoted body truncated mid-token) matches no whole form.
_ANY_BASIC_CREDENTIAL = r"(?-i:Basic)(?:\s|%20|\+)+[A-Za-z0-9+/=%]{8,}"


def _prefixes(form: str) -> str:
    """A pattern for `form` or any prefix of it at least `MIN_SECRET_LENGTH` long.

    Nested optional groups, so the longest prefix present matches, in one pass.
    """
    head, tail = form[:MIN_SECRET_LENGTH], form[MIN_SECRET_LENGTH:]
    return re.escape(head) + "".join(f"(?:{re.escape(c)}" for c in tail) + ")?" * len(tail)


class Redactor:
    """The secrets to blank out, and one compiled pattern matching all their shapes.

    Values are only ever added: a process that ran several taps (tests, a host
    application) keeps blanking out every credential it has seen.
    """

    def __init__(self) -> None:
        """Start with nothing to blank out."""
        self._lock = threading.Lock()
        self._fragments: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: object) -> None:
        """Blank out `value`: its `repr` always, its encodings when it is long enough.

        A setting of the wrong type (a number, a list) is quoted by schema messages as
        its `repr`, whatever its length; a short string is only blanked out quoted.
        """
        if value in (None, ""):
            return
        fragments = {re.escape(repr(value))}
        if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
            fragments |= {re.escape(form) for form in shapes(value)}
        self._extend(fragments)

    def add_basic_token(self, client_id: object, client_secret: object) -> None:
        """Blank out the Basic token made from these credentials (and `id:secret`).

        The id and the secret themselves are `add`ed as secret settings; the token is
        what actually travels, in every request's `Authorization` header, so a part of
        it (a quoted body cut short) is blanked out too, as is any Basic credential.
        """
        if not (isinstance(client_id, str) and isinstance(client_secret, str)):
            return
        pair = f"{client_id}:{client_secret}"
        self.add(pair)
        token = base64.b64encode(pair.encode()).decode("ascii")
        self._extend({_prefixes(form) for form in shapes(token)} | {_ANY_BASIC_CREDENTIAL})

    def _extend(self, fragments: set[str]) -> None:
        with self._lock:
            self._fragments |= fragments
            # Longest first, so a secret is blanked out whole before a part of it matches.
            alternatives = sorted(self._fragments, key=len, reverse=True)
            # Case-insensitive: percent-encodings come in both cases (%2F, %2f); blanking
            # out a differently-cased lookalike too costs nothing.
            self._pattern = re.compile("|".join(alternatives), re.IGNORECASE)

    def redact(self, text: str) -> str:
        """`text` with every shape of every secret replaced by `<redacted>`."""
        pattern = self._pattern
        return text if pattern is None else pattern.sub(REDACTED, text)


#: The process's secrets (see `Redactor`).
SECRETS = Redactor()

#: LogRecord attributes that are never text from a message (left alone).
_NOT_TEXT = frozenset({"msg", "args", "exc_info", "exc_text", "stack_info"})


class RedactingFilter(logging.Filter):
    """Blanks secrets out of a record: its message, traceback, stack and extra fields.

    It runs as a handler's filter, before the handler's formatter, whatever that
    formatter is (the console's, or a structured JSON one from `SINGER_SDK_LOG_CONFIG`).
    A record with no secret in it is left exactly as it is.
    """

    def __init__(self, redactor: Redactor) -> None:
        """Redact with `redactor`'s patterns."""
        super().__init__()
        self.redactor = redactor

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite what holds a secret; never drop the record."""
        redact = self.redactor.redact
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken call; its handler would print both
            message = f"{record.msg!s} (arguments: {record.args!r})"
            record.msg, record.args = redact(message), None
        else:
            if redact(message) != message:
                record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            if redact(text) != text:
                # The formatter prints `exc_text` as it is; the exception itself, which
                # a formatter could render again, goes.
                record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _NOT_TEXT and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


#: The one filter attached to every handler (so attaching it twice is a no-op).
_FILTER = RedactingFilter(SECRETS)


def protect_logging() -> None:
    """Attach the redacting filter to every logging handler the process has now.

    Handlers belong to loggers (the root's console handler, any a logging config file
    set up) or are the last-resort handler; a filter on a handler sees every record it
    prints, including those propagated from other loggers, which a logger's own filter
    would not.
    """
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    handlers = [handler for logger in loggers for handler in logger.handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def redact(text: str) -> str:
    """`text` with every credential the process has seen blanked out."""
    return SECRETS.redact(text)
