"""The wheel the container installs carries every file the packages read at run time.

The image is built from ``pip wheel .`` (deploy/Containerfile), which takes only
``*.py`` plus the globs of ``[tool.setuptools.package-data]``: a template, a
stylesheet or a script outside those globs works from a checkout and is a 404
or a crash in the image. This walks the package folders as they are on disk.
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("idp", "ca", "policies", "verifiers")
# Documentation for developers and agencies, not read by the running service.
NOT_SHIPPED_SUFFIXES = (".py", ".pyc", ".md")


def _globs() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data: dict[str, list[str]] = project["tool"]["setuptools"]["package-data"]
    return [pattern for patterns in data.values() for pattern in patterns]


def _data_files() -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            if path.suffix in NOT_SHIPPED_SUFFIXES:
                continue
            found.append(path.relative_to(ROOT))
    return found


def test_every_file_the_packages_hold_is_in_the_wheel() -> None:
    globs = _globs()
    shipped = [path for path in _data_files() if any(fnmatch(path.name, g) for g in globs)]
    left_out = sorted(set(map(str, _data_files())) - set(map(str, shipped)))
    assert left_out == [], f"not in [tool.setuptools.package-data], so not in the image: {left_out}"


def test_the_passkey_scripts_are_shipped() -> None:
    # The login's and the counter's WebAuthn scripts were once missing from the wheel.
    scripts = [path for path in _data_files() if path.suffix == ".js"]
    assert len(scripts) >= 2
    assert any(fnmatch("passkeys.js", g) for g in _globs())
