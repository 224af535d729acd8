"""Node programs the interop tests run: node itself, and a folder's npm packages.

Each folder (tests/attestations/node, tests/oidc/node) pins its packages in a
package-lock.json; they are installed on first use. Without node, npm or the
registry the test is skipped with the reason, never passed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def node_with(folder: Path, package: str) -> str:
    """The node binary, once ``folder``'s packages (``package`` among them) are installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: the {package} interop is not exercised")
    if not (folder / "node_modules" / package).is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(f"npm is not installed: cannot fetch the {package} package")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            timeout=120,
        )
        if done.returncode != 0:
            pytest.skip(
                f"npm install of {package} failed (no registry access?): {done.stderr[-200:]!r}"
            )
    return node
