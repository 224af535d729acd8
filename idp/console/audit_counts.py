"""Verifications per day and agency for the charts, settled days counted once per process.

An entry's ``created_at`` is the moment it was appended, so a day's counts stop
changing once every transaction begun that day has committed. Counting 90 days
of a busy log costs seconds on PostgreSQL (every row is read); each chart view
would pay it. Days before yesterday are therefore counted once and kept;
yesterday and today (a late commit may still land in yesterday) are counted on
every view, which reads about two days of rows.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from idp.storage.audit_entries import DailyCount, daily_counts

EVENT = "verification"
REFUSED = "refused"
KEEP_DAYS = 120


def _start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class DayCounts:
    """A per-app cache (held on ``app.state``): settled day → that day's counts."""

    def __init__(self) -> None:
        self._settled: dict[date, list[DailyCount]] = {}
        self._lock = threading.Lock()

    def counts(self, session: Session, first: date, today: date) -> list[DailyCount]:
        """Counts for every day from ``first`` to ``today`` inclusive, oldest first."""
        live_from = max(first, today - timedelta(days=1))
        settled_days = [first + timedelta(days=n) for n in range((live_from - first).days)]
        with self._lock:
            missing = [day for day in settled_days if day not in self._settled]
        if missing:
            found: dict[date, list[DailyCount]] = {day: [] for day in missing}
            rows = daily_counts(
                session, EVENT, _start(missing[0]), _start(missing[-1] + timedelta(days=1)), REFUSED
            )
            for row in rows:
                day = date.fromisoformat(row.day)
                if day in found:
                    found[day].append(row)
            with self._lock:
                self._settled.update(found)
                for old in [d for d in self._settled if d < today - timedelta(days=KEEP_DAYS)]:
                    del self._settled[old]
        live = daily_counts(
            session, EVENT, _start(live_from), _start(today + timedelta(days=1)), REFUSED
        )
        with self._lock:
            kept = [row for day in settled_days for row in self._settled.get(day, [])]
        return kept + live
