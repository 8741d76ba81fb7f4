"""A page of the API's list response parsed: JSON read strictly, its shape checked, its links."""

from __future__ import annotations

import json
import logging
import re
import typing as t
from urllib.parse import urlsplit

import orjson

from tap_udemy_business.data_errors import InvalidBody, UnusableData
from tap_udemy_business.list_page import Page

#: Where a page's warnings go unless a logger is given: the tap's own.
LOGGER = logging.getLogger("tap-udemy-business")
#: A JSON escape of a UTF-16 surrogate (`\ud83d`): legal JSON, which orjson refuses alone.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")
#: A surrogate code point in a parsed string: no UTF-8 text can hold one.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: orjson reads integers up to this (unsigned 64 bits), and larger ones as floats.
_MAX_INTEGER = 2**64 - 1
_MIN_INTEGER = -(2**63)
#: What `_parse_lone_surrogates` returns for a body that is not JSON after all.
_NOT_JSON = object()


def parse_page(content: bytes, url: str, logger: logging.Logger | None = None) -> Page:
    """Parse a list response once and check it has the documented shape.

    orjson parses every body; only one it refuses that escapes a UTF-16 surrogate is
    parsed again, by the standard library (see `_parse_lone_surrogates`).

    Args:
        content: the raw body.
        url: the request URL, to name in errors.
        logger: where a warning about the body goes (the tap's logger if unset).

    Returns:
        The page.

    Raises:
        InvalidBody: the body is not JSON (truncated or garbled); worth asking again.
        UnusableData: the JSON is not `{count, next, previous, results: [...]}`.
    """
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        body = _parse_lone_surrogates(content, url, logger or LOGGER)
        if body is _NOT_JSON:
            msg = f"Invalid JSON in the response from {url} ({len(content)} bytes): {exc}"
            raise InvalidBody(msg) from None
    problem = _shape_problem(body)
    if problem:
        msg = f"Unexpected response from {url}: {problem}."
        raise UnusableData(msg)
    return Page(url=url, count=body["count"], next_url=body.get("next"), records=body["results"])


def _parse_lone_surrogates(content: bytes, url: str, logger: logging.Logger) -> t.Any:
    r"""Parse JSON that escapes a lone surrogate (`"\ud83d"`), which orjson refuses.

    JSON allows any `\uXXXX` escape, a half of a surrogate pair included, and servers do
    send them (an emoji cut in two by a length limit). Such a body is valid, so retrying
    it would fail the same way every time. The standard library parses it; each lone
    surrogate, which no UTF-8 output can hold, becomes U+FFFD, with one warning naming
    the URL. Everything orjson refuses for other reasons stays refused here too (NaN,
    Infinity, bytes that are not UTF-8), and integers beyond 64 bits become floats as
    orjson makes them, so the page is what orjson would have made of it.

    Returns:
        The body, or `_NOT_JSON` when it is not valid JSON after all.
    """
    if _SURROGATE_ESCAPE.search(content) is None:
        return _NOT_JSON
    try:
        body = json.loads(
            content.decode("utf-8"),
            parse_int=_integer,
            parse_float=_finite_float,
            parse_constant=_no_constant,
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return _NOT_JSON
    replaced = _replace_surrogates(body)
    if replaced:
        logger.warning(
            "%s: %d string(s) escape a lone UTF-16 surrogate (legal JSON, not valid text); "
            "each such character is replaced with U+FFFD",
            url,
            replaced,
        )
    return body


def _integer(text: str) -> int | float:
    value = int(text)
    return value if _MIN_INTEGER <= value <= _MAX_INTEGER else float(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in {float("inf"), float("-inf")}:
        msg = f"number is infinity when parsed as double: {text}"
        raise ValueError(msg)
    return value


def _no_constant(text: str) -> t.NoReturn:
    msg = f"{text} is not JSON"
    raise ValueError(msg)


def _replace_surrogates(body: t.Any) -> int:
    """Replace surrogate code points in every string of `body`, in place; count the strings.

    Iterative, so a body nested as deep as the parser allowed cannot overflow the stack.
    """
    replaced = 0
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            pairs = list(node.items())
            node.clear()  # rebuilt in order, keys cleaned too
            for key, value in pairs:
                clean_key, in_key = _cleaned(key)
                node[clean_key], in_value = _cleaned(value)
                replaced += in_key + in_value
                if isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                node[index], in_value = _cleaned(value)
                replaced += in_value
                if isinstance(value, (dict, list)):
                    stack.append(value)
    return replaced


def _cleaned(value: t.Any) -> tuple[t.Any, int]:
    """A string with its surrogates replaced, and 1; anything else as it is, and 0."""
    if isinstance(value, str) and _SURROGATE.search(value):
        return _SURROGATE.sub("\ufffd", value), 1
    return value, 0


def _shape_problem(body: t.Any) -> str | None:
    if not isinstance(body, dict):
        return f"expected a JSON object, got {type(body).__name__}"
    results = body.get("results")
    if not isinstance(results, list):
        return "'results' is missing or not a list"
    if not all(isinstance(record, dict) for record in results):
        return "'results' holds an item that is not an object"
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return "'count' is missing or not a non-negative integer"
    next_url = body.get("next")
    if next_url is not None and not _is_http_url(next_url):
        return "'next' is neither null nor an absolute http(s) URL"
    return None


def _is_http_url(value: t.Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)
