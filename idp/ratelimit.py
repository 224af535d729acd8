"""Fixed-window rate limits shared by every worker and host through the database.

A check reads the current counts; the increment happens in the transaction
that records the answer (:func:`count`), an atomic upsert that is safe across
processes. Two workers racing at the edge of a window may let one or two
requests through beyond the limit; a limit here slows enumeration, it is not
a quota to the request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from idp.storage.models import RateCounter


@dataclass(frozen=True)
class Limit:
    bucket: str
    limit: int


def window_start(window_seconds: int, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(now // window_seconds) * window_seconds


def exceeded(session: Session, limits: Sequence[Limit], window_seconds: int) -> int | None:
    """Seconds until the window resets if any limit is used up, else None."""
    start = window_start(window_seconds)
    buckets = [item.bucket for item in limits]
    rows = session.execute(
        select(RateCounter.bucket, RateCounter.count).where(
            RateCounter.bucket.in_(buckets),  # type: ignore[attr-defined]
            RateCounter.window_start == start,
        )
    ).all()
    counts = {bucket: count for bucket, count in rows}
    for item in limits:
        if counts.get(item.bucket, 0) >= item.limit:
            return max(1, start + window_seconds - int(time.time()))
    return None


def count(session: Session, limits: Sequence[Limit], window_seconds: int) -> None:
    start = window_start(window_seconds)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for item in limits:
        statement = insert(RateCounter).values(bucket=item.bucket, window_start=start, count=1)
        statement = statement.on_conflict_do_update(
            index_elements=["bucket", "window_start"],
            set_={"count": RateCounter.count + 1},  # type: ignore[operator]
        )
        session.execute(statement)


def prune(session: Session, window_seconds: int) -> None:
    """Drop windows that can no longer matter."""
    session.execute(
        delete(RateCounter).where(
            RateCounter.window_start < window_start(window_seconds) - window_seconds  # type: ignore[arg-type]
        )
    )
