"""Shared rate counters: expired windows leave in chunks, never in one long delete."""

from __future__ import annotations

import time

from sqlalchemy import func, insert, select

from idp.ratelimit import PRUNE_CHUNK, Limit, RateLimiter
from idp.storage.engine import Database
from idp.storage.models import RateCounter


def _count(db: Database, *condition: object) -> int:
    with db.engine.connect() as connection:
        query = select(func.count()).select_from(RateCounter).where(*condition)  # type: ignore[arg-type]
        return int(connection.execute(query).scalar_one())


def test_expired_windows_are_pruned_a_chunk_per_batch(db: Database) -> None:
    limiter = RateLimiter(60)
    current = limiter.window(time.time())
    stale, live = current - 180, current
    with db.engine.begin() as connection:
        connection.execute(
            insert(RateCounter),
            [{"bucket": f"s:old:{i}", "window_start": stale, "count": 1}
             for i in range(2 * PRUNE_CHUNK + 7)]
            + [{"bucket": f"s:new:{i}", "window_start": live, "count": 1} for i in range(50)],
        )  # fmt: skip
    expired = RateCounter.window_start < current - 60
    left = [_count(db, expired)]
    for _ in range(4):
        limiter.count([Limit("c:bank", 100)])
        with db.engine.begin() as connection:
            limiter.flush(connection)
        left.append(_count(db, expired))
    assert left == [2 * PRUNE_CHUNK + 7, PRUNE_CHUNK + 7, 7, 0, 0]
    # This window's counters are kept.
    assert _count(db, RateCounter.bucket.like("s:new:%")) == 50  # type: ignore[attr-defined]
