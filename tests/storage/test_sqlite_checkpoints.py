"""A SQLite server process checkpoints the WAL from its own thread, not during requests."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from idp.storage.engine import Database
from idp.storage.migrate import upgrade


def _write_rows(database: Database) -> None:
    with database.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS filler (body TEXT)"))
        for _ in range(30):
            session.execute(text("INSERT INTO filler VALUES (:b)"), {"b": "x" * 4000})


def _wait_for_growth(path: Path, before: int, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.stat().st_size > before:
            break
        time.sleep(0.1)
    return path.stat().st_size


def test_background_checkpoints_move_pages_into_the_database(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    database = Database(url, background_checkpoints=True)
    try:
        _write_rows(database)
        with database.read() as session:
            assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        before = path.stat().st_size
        # About 120 kB sit in the WAL; the checkpointer copies them within a second or two.
        assert _wait_for_growth(path, before, 10) > before + 100_000
    finally:
        database.dispose()


def test_without_the_flag_sqlite_checkpoints_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    database = Database(f"sqlite:///{path}")
    try:
        with database.read() as session:
            assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000
        assert database._checkpointer is None
    finally:
        database.dispose()
