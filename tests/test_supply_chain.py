"""The dependencies an operator can vouch for: the locks are generated from the short lists of direct
dependencies (requirements.in, requirements-test.in), pin every package with its hashes, hold
exactly what those lists pull in, and the virtual environment the tests run in holds nothing else.
pygal's tail (importlib_metadata → lazy-importer) is gone for good."""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (ROOT / "requirements.txt", ROOT / "requirements-test.txt")
INPUTS = (ROOT / "requirements.in", ROOT / "requirements-test.in")
# Packages that must not come back: the chart library and the chain it pulled in.
BANNED = {"pygal", "importlib-metadata", "lazy-importer", "zipp"}
# What a virtual environment has of its own (`make lock` pins pip and setuptools, but an environment
# may have them without the test lock).
OWN = {"pip", "setuptools", "wheel"}


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name → (version, hashes) of a lock written by pip-compile (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)", line)
        assert match, f"{path.name}: not a pinned, hashed requirement (run `make lock`): {line[:80]}"
        pins[canonicalize_name(match[1])] = (match[2], re.findall(r"sha256:([0-9a-f]{64})", match[3]))
    return pins


def inputs(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def all_locked() -> dict[str, str]:
    runtime, test = (locked(path) for path in LOCKS)
    for name in runtime.keys() & test.keys():
        assert runtime[name][0] == test[name][0], f"{name}: the test lock must follow the runtime lock"
    return {name: version for name, (version, _) in (runtime | test).items()}


def requirements_of(name: str, extras: set[str]) -> list[Requirement]:
    """What an installed package needs, for the extras asked of it, on this platform."""
    needed = []
    for text in metadata.distribution(name).requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
            needed.append(requirement)
    return needed


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def venv_is_current() -> bool:
    """Whether `make` installed this environment after the locks last changed (its stamp is newer)."""
    stamp = Path(sys.prefix) / ".installed-test"
    return stamp.exists() and all(stamp.stat().st_mtime >= lock.stat().st_mtime for lock in LOCKS)


@pytest.fixture
def current_venv():
    if not venv_is_current():
        message = "the virtual environment predates the locks: `make install-test` brings it to them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_every_package_is_pinned_with_hashes_and_nothing_banned():
    pins = all_locked()
    for path in LOCKS:
        unhashed = [name for name, (_, hashes) in locked(path).items() if not hashes]
        assert not unhashed, f"{path.name}: pinned without hashes (add to the .in file, run `make lock`)"
    assert not BANNED & pins.keys()
    for path in INPUTS:
        assert not BANNED & {canonicalize_name(r.name) for r in inputs(path)}
    # The test lock takes its shared versions from the runtime lock.
    assert "-c requirements.txt" in (ROOT / "requirements-test.in").read_text()


def test_the_locks_hold_exactly_what_the_direct_dependencies_pull_in(current_venv):
    pins = all_locked()
    wanted: dict[str, set[str]] = {}  # name → the extras asked of it
    queue = [r for path in INPUTS for r in inputs(path)]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is needed but not locked (run `make lock`)"
        extras = set(requirement.extras)
        if name in wanted and extras <= wanted[name]:
            continue
        wanted[name] = wanted.get(name, set()) | extras
        queue.extend(requirements_of(name, wanted[name]))
    assert set(pins) - set(wanted) == set(), "locked, but nothing in requirements*.in needs it: run `make lock`"
    # Nothing that is locked needs a banned package, under any extra it was asked for.
    for name, extras in wanted.items():
        assert not BANNED & {canonicalize_name(r.name) for r in requirements_of(name, extras)}, name


def test_the_environment_holds_the_locked_versions_and_nothing_else(current_venv):
    pins, present = all_locked(), installed()
    assert {name: present.get(name) for name in pins if present.get(name) != pins[name]} == {}
    assert set(present) - set(pins) - OWN == set(), "installed but not locked"
