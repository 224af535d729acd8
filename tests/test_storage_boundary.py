"""Storage is a part: no module outside ``idp/storage`` builds SQL or ORM queries.

Outside it a module may hold a ``Session`` or ``Connection`` (the unit of work a
request runs in), catch SQLAlchemy's exceptions and parse a database URL; every
statement, ``select``, ``col``, ``text`` or ORM model query lives in
``idp.storage``. The second test shows the check would catch a breach.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SQL_PACKAGES = ("sqlalchemy", "sqlmodel")
# Names a module outside storage may take from SQLAlchemy / SQLModel.
ALLOWED = {"Session", "Connection", "Engine", "make_url"}
ALLOWED_MODULES = {"sqlalchemy.exc"}


def _breaches(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in SQL_PACKAGES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] not in SQL_PACKAGES or node.module in ALLOWED_MODULES:
                continue
            found += [f"{node.module}.{a.name}" for a in node.names if a.name not in ALLOWED]
    return found


def _outside_storage() -> list[Path]:
    paths = [*(ROOT / "idp").rglob("*.py"), *(ROOT / "ca").rglob("*.py")]
    storage = ROOT / "idp" / "storage"
    return [p for p in paths if storage not in p.parents]


def test_no_module_outside_storage_imports_query_building() -> None:
    breaches = {
        str(path.relative_to(ROOT)): found
        for path in _outside_storage()
        if (found := _breaches(path.read_text(encoding="utf-8")))
    }
    assert breaches == {}


def test_the_check_catches_a_select_outside_storage() -> None:
    assert _breaches("from sqlmodel import Session, select\n") == ["sqlmodel.select"]
    assert _breaches("import sqlalchemy\n") == ["sqlalchemy"]
    assert _breaches("from sqlalchemy.exc import OperationalError\n") == []
