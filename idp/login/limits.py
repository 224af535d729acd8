"""Hard limits on login attempts and one-time codes, counted in the database.

These limits stop guessing (birth dates, codes, which number a person owns),
so unlike the API's request-rate limits they allow no overshoot between
workers: each use is an atomic upsert on ``login_counters`` that returns the new
count (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), and a use that
takes a count past its limit is refused. A use refused up front is not counted, so
being stopped on one number does not spend the national code's allowance.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from idp.storage import login_limits


@dataclass(frozen=True)
class Allowance:
    bucket: str
    limit: int


def _window(window_seconds: int, now: float) -> int:
    return int(now // window_seconds) * window_seconds


def exhausted(
    db_session: Session, allowances: Sequence[Allowance], window_seconds: int
) -> int | None:
    """Seconds to wait if an allowance is used up already, else None. Reads only.

    A cheap early refusal (e.g. before asking a registry); it counts nothing,
    so only :func:`take` decides whether a use is allowed.
    """
    now = time.time()
    start = _window(window_seconds, now)
    used = login_limits.used(db_session, [a.bucket for a in allowances], start)
    if any(used.get(a.bucket, 0) >= a.limit for a in allowances):
        return max(1, start + window_seconds - int(now))
    return None


def take(
    db_session: Session,
    allowances: Sequence[Allowance],
    window_seconds: int,
    *,
    checked: bool = False,
) -> int | None:
    """Count one use against every allowance: None if allowed, else seconds to wait.

    ``checked``: the caller asked :func:`exhausted` moments ago, so the upsert
    alone decides (a use that loses a race to the last allowance is counted,
    and refused all the same).
    """
    now = time.time()
    start = _window(window_seconds, now)
    wait = max(1, start + window_seconds - int(now))
    if not checked and exhausted(db_session, allowances, window_seconds) is not None:
        return wait
    over = False
    for allowance in allowances:
        count = login_limits.count_use(db_session, allowance.bucket, start)
        # Another worker took the last use between the read above and this upsert.
        over = over or count > allowance.limit
    return wait if over else None
