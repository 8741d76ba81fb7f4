"""The metadata says what is tested, and the lock pins everything pyproject.toml asks for."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "requirements-dev.lock"
E2E_REQUIREMENTS = ROOT / "requirements-e2e.txt"
E2E_LOCK = ROOT / "requirements-e2e.lock"


def group(name: str) -> list[str]:
    """A PEP 735 dependency group with its `include-group`s expanded."""
    found: list[str] = []
    for entry in PYPROJECT["dependency-groups"][name]:
        found += group(entry["include-group"]) if isinstance(entry, dict) else [entry]
    return found


def locked(lock: Path) -> dict[str, str]:
    """A lock's pins: name -> version."""
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", lock.read_text(), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def unhashed(lock: Path) -> list[str]:
    """The pins of a lock that carry no hash."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text())
    return [e.split()[0] for e in entries if "==" in e.split()[0] and "--hash=sha256:" not in e]


def test_the_python_versions_agree_with_requires_python() -> None:
    requires = PYPROJECT["project"]["requires-python"]
    oldest = re.fullmatch(r">=3\.(\d+)", requires)
    assert oldest, requires
    minor = int(oldest.group(1))
    assert sys.version_info >= (3, minor), "the tests run on a Python the package refuses"
    assert f"Python 3.{minor} or newer." in (ROOT / "README.md").read_text()
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{minor}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == f"3.{minor}"
    classifiers = PYPROJECT["project"]["classifiers"]
    version = re.compile(r"Programming Language :: Python :: 3\.(\d+)")
    versions = [int(m.group(1)) for c in classifiers if (m := version.fullmatch(c))]
    assert versions, "no Python version classifier"
    assert min(versions) == minor, versions


def test_the_development_tools_are_groups_not_a_published_extra() -> None:
    assert "optional-dependencies" not in PYPROJECT["project"]
    assert {"test", "lint", "dev"} <= set(PYPROJECT["dependency-groups"])


def test_the_lock_pins_every_requirement_with_hashes() -> None:
    pins = locked(LOCK)
    unmet = []
    for line in [*PYPROJECT["project"]["dependencies"], *group("dev")]:
        requirement = Requirement(line)
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{line} (locked: {version})")
    assert not unmet, f"the lock is stale, run `make lock`: {unmet}"
    assert not unhashed(LOCK), f"pinned without a hash: {unhashed(LOCK)}"


def test_the_meltano_lock_pins_what_requirements_e2e_asks_for() -> None:
    pins = locked(E2E_LOCK)
    for line in E2E_REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            version = pins.get(canonicalize_name(requirement.name))
            assert version, f"{line} is not in {E2E_LOCK.name}: run `make lock`"
            assert requirement.specifier.contains(version), f"{line}: locked {version}"
    assert not unhashed(E2E_LOCK), f"pinned without a hash: {unhashed(E2E_LOCK)}"
