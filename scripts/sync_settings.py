"""Write the tap's settings, as the tap itself reports them, everywhere they are described.

The settings are written once, in code (`tap_udemy_business/settings.py`); `tap-udemy-business
--about` reports them, and this script copies that report into the README's table, the
extractor's `settings:` in meltano.yml and the Meltano Hub definition (hub/). The generated
blocks sit between marker lines and are never edited by hand; a test fails when any of them
differs from what this script would write (`python scripts/sync_settings.py` mends them).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

from tap_udemy_business.settings import declared_types

ROOT = Path(__file__).resolve().parent.parent
README_MARKERS = ("<!-- settings:start -->\n", "<!-- settings:end -->")
YAML_MARKERS = (
    "# settings:start (scripts/sync_settings.py writes these from `tap-udemy-business --about`)\n",
    "# settings:end",
)
#: Meltano's setting `kind` for each JSON type. Not `decimal` for numbers: Meltano 4.4 turns
#: a decimal setting from an environment variable into a Decimal it cannot write to the tap's
#: config (`Object of type Decimal is not JSON serializable`); as a string it passes "30" on,
#: which the tap reads as 30.
KINDS = {
    "string": "string",
    "integer": "integer",
    "number": "string",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
}
#: The lines PyYAML aims at (it never breaks a word, so a long URL may run past).
WIDTH = 100


def about(output_format: str) -> str:
    """The tap's own `--about`, in `json` or `markdown`."""
    return subprocess.run(  # noqa: S603 - the tap itself, run by this interpreter
        [sys.executable, "-m", "tap_udemy_business", "--about", f"--format={output_format}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def settings_table(markdown: str) -> str:
    """The Settings table of the markdown `--about`."""
    match = re.search(r"## Settings\n\n(.*?)(?:\n## |\Z)", markdown, re.DOTALL)
    if match is None:
        msg = "no Settings section in --about"
        raise SystemExit(msg)
    return match.group(1).strip()


def meltano_kind(prop: dict[str, t.Any]) -> str:
    """The Meltano `kind` of one setting's JSON Schema."""
    kinds = sorted(declared_types(prop) - {"null"})
    if len(kinds) != 1:
        msg = f"a setting of {kinds or 'no'} JSON types has no one Meltano kind: {prop}"
        raise SystemExit(msg)
    main = kinds[0]
    if main == "string" and prop.get("format") == "date":
        return "date_iso8601"
    return KINDS[main]


def meltano_settings(about_json: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The Meltano settings list of the JSON `--about`: name, kind, label, description."""
    settings = []
    for name, prop in about_json["settings"]["properties"].items():
        setting = {
            "name": name,
            "kind": meltano_kind(prop),
            "label": prop.get("title"),
            "description": prop.get("description"),
        }
        if prop.get("secret"):
            setting["sensitive"] = True
        settings.append(setting)
    return settings


def yaml_items(settings: list[dict[str, t.Any]], *, indent: int) -> str:
    """The settings as YAML list items, indented for where they go."""
    text = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True, width=WIDTH - indent)
    return "".join(f"{' ' * indent}{line}\n" for line in text.splitlines())


def between(text: str, markers: tuple[str, str], block: str, *, where: Path) -> str:
    """`text` with what lies between the two marker lines replaced by `block`."""
    start, end = markers
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        msg = f"{where}: the generated block's markers are missing ({start.strip()!r})"
        raise SystemExit(msg)
    _, _, tail = rest.partition(end)
    indent = head[len(head.rstrip(" ")) :]  # the end marker keeps the start marker's indent
    return f"{head}{start}{block}{indent}{end}{tail}"


def generated() -> dict[Path, str]:
    """Every file holding a generated settings block, as this script would write it."""
    settings = meltano_settings(json.loads(about("json")))
    blocks = {
        ROOT / "README.md": (README_MARKERS, f"{settings_table(about('markdown'))}\n"),
        ROOT / "meltano.yml": (YAML_MARKERS, yaml_items(settings, indent=8)),
        ROOT / "hub" / "tap-udemy-business.yml": (YAML_MARKERS, yaml_items(settings, indent=2)),
    }
    return {
        path: between(path.read_text(), markers, block, where=path)
        for path, (markers, block) in blocks.items()
    }


def main() -> None:
    """Rewrite the generated blocks; with `--check`, only say which are out of date (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    check = parser.parse_args().check
    files = generated()
    stale = [path for path, text in files.items() if path.read_text() != text]
    if check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python scripts/sync_settings.py")  # noqa: T201
        raise SystemExit(1 if stale else 0)
    for path in stale:
        path.write_text(files[path])


if __name__ == "__main__":
    main()
