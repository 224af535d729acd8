"""Login attempt counters: the ``login_counters`` statements.

Core statements on the table: an ORM-enabled upsert cost five times the
statement itself, and every login attempt runs one in the shared writer.
Each use is an atomic upsert that returns the new count
(``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from idp.storage.login import LoginCounter

COUNTERS = LoginCounter.__table__  # type: ignore[attr-defined]
_USED = select(COUNTERS.c.bucket, COUNTERS.c.count).where(
    COUNTERS.c.bucket.in_(bindparam("buckets", expanding=True)),
    COUNTERS.c.window_start == bindparam("window_start"),
)


def used(db: Session, buckets: Sequence[str], window_start: int) -> dict[str, int]:
    """The uses counted so far in this window, per bucket (absent: none)."""
    rows = db.connection().execute(_USED, {"buckets": list(buckets), "window_start": window_start})
    return {bucket: count for bucket, count in rows}


def count_use(db: Session, bucket: str, window_start: int) -> int:
    """One use counted in this bucket and window; the new count."""
    connection = db.connection()
    statement = _upsert(connection.dialect.name)
    values = {"bucket": bucket, "window_start": window_start}
    return int(connection.execute(statement, values).scalar_one())


@cache
def _upsert(dialect: str) -> Any:
    """Built once per dialect (the writer runs it)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(COUNTERS)
        .values(bucket=bindparam("bucket"), window_start=bindparam("window_start"), count=1)
        .on_conflict_do_update(
            index_elements=["bucket", "window_start"],
            set_={"count": COUNTERS.c.count + 1},
        )
        .returning(COUNTERS.c.count)
    )


def prune(db: Session, before_window: int) -> int:
    """Delete the counts of windows that started before ``before_window``; how many."""
    result = db.execute(delete(COUNTERS).where(COUNTERS.c.window_start < before_window))
    return int(result.rowcount)  # type: ignore[attr-defined]
