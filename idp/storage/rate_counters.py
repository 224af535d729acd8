"""Shared rate counters (``rate_counters``): the statements of :mod:`idp.ratelimit`.

Both run inside a group-commit batch, on its Core connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from idp.storage.models import RateCounter

Key = tuple[str, int]  # (bucket, window start)


def _upsert(insert: Any) -> Any:
    statement = insert(RateCounter)
    return statement.on_conflict_do_update(
        index_elements=["bucket", "window_start"],
        set_={"count": RateCounter.count + statement.excluded.count},
    ).returning(RateCounter.bucket, RateCounter.window_start, RateCounter.count)


# One constant Core statement per dialect, executed with many parameter sets,
# compiles once per process and goes out as one multi-row INSERT.
_UPSERTS = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}
_KEYS = tuple_(col(RateCounter.bucket), col(RateCounter.window_start))


def add_counts(connection: Connection, increments: Mapping[Key, int]) -> dict[Key, int]:
    """Add ``increments`` to the shared counters, atomically; returns their new totals.

    Sorted, so that two processes upserting the same buckets lock them in the
    same order; the totals come back keyed, so their order is moot.
    """
    rows = [
        {"bucket": bucket, "window_start": window, "count": increment}
        for (bucket, window), increment in sorted(increments.items())
    ]
    result = connection.execute(_UPSERTS[connection.dialect.name], rows)
    return {(bucket, window): int(total) for bucket, window, total in result}


def delete_expired(connection: Connection, before: int, limit: int) -> int:
    """Delete at most ``limit`` counters of windows starting before ``before``; how many went."""
    expired = (
        select(col(RateCounter.bucket), col(RateCounter.window_start))
        .where(col(RateCounter.window_start) < before)
        .limit(limit)
    )
    return int(connection.execute(delete(RateCounter).where(_KEYS.in_(expired))).rowcount)
