"""Where the JSON Schemas live, in a wheel and in an editable install alike.

`schemas/` at the repository root is the single source of truth. A wheel carries it as
`tap_udemy_business/schemas` (hatch `force-include`); an editable install (which Meltano
uses for `pip_url: -e .`) has no such folder, so the root one is used.

Streams load their schema through singer-sdk's `StreamSchema(SCHEMAS)`, the supported way
since 0.54: a schema file path passed to a stream prints a deprecation warning on every run.
"""

from __future__ import annotations

from pathlib import Path

from singer_sdk import SchemaDirectory

_PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATES = (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parent / "schemas")


def schemas_dir(candidates: tuple[Path, ...] = _CANDIDATES) -> Path:
    """Return the folder holding the stream schemas: the wheel's, else the checkout's.

    Args:
        candidates: where to look, in order (replaceable for tests).

    Raises:
        FileNotFoundError: neither folder exists (a broken install).
    """
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    msg = f"No schemas folder found (looked in {', '.join(map(str, candidates))})."
    raise FileNotFoundError(msg)


def schema_path(stream_name: str) -> Path:
    """Return the schema file of one stream."""
    return schemas_dir() / f"{stream_name}.json"


#: The stream schemas, one `<stream name>.json` each, read once per process by singer-sdk.
SCHEMAS = SchemaDirectory(schemas_dir())
