"""Regenerate the README's settings table from `tap-udemy-business --about --format=markdown`.

The table between the `settings` markers is generated, never edited by hand; a test fails
when it drifts from what the tap itself reports.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_table() -> str:
    """The Settings table of the tap's own `--about` output."""
    about = subprocess.run(
        [sys.executable, "-m", "tap_udemy_business", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"## Settings\n\n(.*?)(?:\n## |\Z)", about, re.DOTALL)
    if match is None:
        msg = "no Settings section in --about"
        raise SystemExit(msg)
    return match.group(1).strip()


def main() -> None:
    """Rewrite the block between the markers."""
    text = README.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}")


if __name__ == "__main__":
    main()
