"""Where the JSON Schemas live, in a wheel and in an editable install alike.

`schemas/` at the repository root is the single source of truth. A wheel carries it as
`tap_udemy_business/schemas` (hatch `force-include`); an editable install (which Meltano
uses for `pip_url: -e .`) has no such folder, so the root one is used.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_CANDIDATES = (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parent / "schemas")


def schemas_dir() -> Path:
    """Return the folder holding the stream schemas."""
    for candidate in _CANDIDATES:
        if candidate.is_dir():
            return candidate
    msg = f"No schemas folder found (looked in {', '.join(map(str, _CANDIDATES))})."
    raise FileNotFoundError(msg)


def schema_path(stream_name: str) -> Path:
    """Return the schema file of one stream."""
    return schemas_dir() / f"{stream_name}.json"
