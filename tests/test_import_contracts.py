"""The import contracts in pyproject.toml hold, and would catch a breach.

``ca`` imports nothing from ``idp``; ``verifiers`` and ``policies`` import
neither; the top-level packages form layers (idp > ca > policies > verifiers),
so no cycle can form between them. The second and third tests break a copy of
the tree to show that the check is not vacuous.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("idp", "ca", "policies", "verifiers")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the packages are found in ``root``, not in the install.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=_not_python)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _not_python(folder: str, names: list[str]) -> set[str]:
    return {n for n in names if not n.endswith(".py") and not (Path(folder) / n).is_dir()}


def test_the_import_contracts_hold() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("ca/_breach.py", "from idp import settings", "ca imports nothing from idp"),
        ("verifiers/_breach.py", "import policies", "top-level layers"),
        ("policies/_breach.py", "from ca import issuance", "import neither idp nor ca"),
    ],
)
def test_a_new_upward_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    root = _copy(tmp_path)
    (root / module).write_text(f"{line}  # noqa: F401\n")
    result = _lint_imports(root)
    assert result.returncode != 0, result.stdout
    assert f"{broken}" in result.stdout
    assert "BROKEN" in result.stdout
