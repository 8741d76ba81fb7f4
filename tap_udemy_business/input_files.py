"""The CLI's input files (`--config`, `--state`, `--catalog`): read, checked, one-line errors.

singer-sdk reads them where a mistake surfaces as a traceback of 9 to 15 frames (a
missing config, an empty state, a catalog that is a list), or not at all (a catalog
without `streams` silently deselects every stream). Here each file is read once and its
shape checked before the tap starts, and anything wrong is an `InputFileError` naming
the option, the file and what is wrong, for one line on stderr.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

from singer_sdk.helpers._util import load_json
from singer_sdk.singerlib import Catalog

if t.TYPE_CHECKING:
    from collections.abc import Callable


class InputFileError(Exception):
    """An input file that cannot be used; the message is the whole story, in one line."""


def _kind(value: t.Any) -> str:
    """How JSON calls a value's type: object, array, string, number, boolean, null."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def read_json_object(
    path: str, option: str, parse: Callable[[str], t.Any] = json.loads
) -> dict[str, t.Any]:
    """The JSON object in the file at `path`.

    Args:
        path: the file, as given on the command line.
        option: the option that named it (`--config`, ...), for the message.
        parse: the JSON parser (the config keeps the SDK's, which reads decimals).

    Raises:
        InputFileError: the file is missing or unreadable, empty, not JSON, or not an object.
    """
    where = f"{option} {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{where}: no such file."
        raise InputFileError(msg) from None
    except IsADirectoryError:
        msg = f"{where}: is a directory, not a file."
        raise InputFileError(msg) from None
    except UnicodeDecodeError as exc:
        msg = f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON."
        raise InputFileError(msg) from None
    except OSError as exc:
        msg = f"{where}: cannot be read ({exc.strerror or type(exc).__name__})."
        raise InputFileError(msg) from None
    if not text.strip():
        msg = f"{where}: the file is empty; expected a JSON object."
        raise InputFileError(msg)
    try:
        value = parse(text)
    except ValueError as exc:  # json's and simplejson's JSONDecodeError alike
        detail = getattr(exc, "msg", None) or str(exc)
        line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        at = f" at line {line}, column {column}" if line is not None else ""
        msg = f"{where}: not valid JSON ({detail}{at})."
        raise InputFileError(msg) from None
    if not isinstance(value, dict):
        msg = f"{where}: holds {_kind(value)}; expected a JSON object."
        raise InputFileError(msg)
    return value


def read_config(path: str) -> dict[str, t.Any]:
    """A `--config` file: a JSON object, parsed as singer-sdk parses it (decimals)."""
    return read_json_object(path, "--config", load_json)


def read_state(path: str) -> dict[str, t.Any]:
    """A `--state` file: an object whose `bookmarks`, if any, map streams to objects.

    Raises:
        InputFileError: the file is not a Singer state.
    """
    state = read_json_object(path, "--state")
    where = f"--state {path}"
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        msg = f"{where}: 'bookmarks' holds {_kind(bookmarks)}; expected an object of streams."
        raise InputFileError(msg)
    for stream, bookmark in bookmarks.items():
        if not isinstance(bookmark, dict):
            msg = (
                f"{where}: the bookmark of stream '{stream}' holds {_kind(bookmark)}; "
                "expected an object."
            )
            raise InputFileError(msg)
        partitions = bookmark.get("partitions", [])
        if not isinstance(partitions, list) or not all(isinstance(p, dict) for p in partitions):
            msg = f"{where}: the 'partitions' of stream '{stream}' is not an array of objects."
            raise InputFileError(msg)
    return state


def read_catalog(path: str) -> Catalog:
    """A `--catalog` file: a Singer catalog, with a `streams` array of stream entries.

    Raises:
        InputFileError: the file is not a Singer catalog.
    """
    catalog = read_json_object(path, "--catalog")
    where = f"--catalog {path}"
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        found = "no 'streams'" if streams is None else f"'streams' holding {_kind(streams)}"
        msg = f"{where}: {found}; a Singer catalog has a 'streams' array (see --discover)."
        raise InputFileError(msg)
    for index, entry in enumerate(streams):
        problem = _entry_problem(entry)
        if problem:
            msg = f"{where}: streams[{index}] {problem}."
            raise InputFileError(msg)
    try:
        return Catalog.from_dict(catalog)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = f"{where}: not a Singer catalog ({type(exc).__name__}: {exc})."
        raise InputFileError(msg) from None


def _entry_problem(entry: t.Any) -> str | None:
    """What is wrong with one catalog stream entry, or None."""
    if not isinstance(entry, dict):
        return f"holds {_kind(entry)}; expected a stream object"
    if not isinstance(entry.get("tap_stream_id"), str):
        return "has no 'tap_stream_id' string"
    if not isinstance(entry.get("schema", {}), dict):
        return "has a 'schema' that is not an object"
    metadata = entry.get("metadata", [])
    if not isinstance(metadata, list):
        return "has a 'metadata' that is not an array"
    for item in metadata:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("breadcrumb"), list)
            or not isinstance(item.get("metadata"), dict)
        ):
            return "has a 'metadata' item without a 'breadcrumb' array and a 'metadata' object"
    return None
