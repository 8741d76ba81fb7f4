"""The README's promises: its first commands (its settings table: test_generated_settings.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_lines_give_the_demo_and_the_test_commands() -> None:
    head = (ROOT / "README.md").read_text().splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndemo:" in makefile
    assert "\ntest:" in makefile


def test_the_development_commands_are_the_makefile_s() -> None:
    section = (ROOT / "README.md").read_text().split("\n## Development\n", 1)[1]
    commands = re.findall(r"^make (\w+)", section, re.MULTILINE)
    assert {"check", "test", "lock"} <= set(commands)
    makefile = (ROOT / "Makefile").read_text()
    for command in commands:
        assert f"\n{command}:" in makefile, f"README names `make {command}`, the Makefile lacks it"
    # `make check` leaves out exactly what the README says, by registered markers.
    expression = re.search(r'pytest -m "([^"]+)"', makefile)
    assert expression, "`make check` selects no marker expression"
    assert f'`pytest -m "{expression.group(1)}"`' in " ".join(section.split())
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    registered = {m.split(":")[0] for m in pytest_options["ini_options"]["markers"]}
    used = set(re.findall(r"not (\w+)", expression.group(1)))
    assert used <= registered, used - registered
