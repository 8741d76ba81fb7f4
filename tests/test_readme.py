"""The README's promises: its first commands, and a settings table that matches `--about`."""

from __future__ import annotations

from pathlib import Path

from scripts.update_readme import END, START, settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_lines_give_the_demo_and_the_test_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndemo:" in makefile
    assert "\ntest:" in makefile


def test_the_settings_table_is_the_one_the_tap_reports() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == settings_table(), "run: python scripts/update_readme.py"
    assert "| client_secret |" in block
