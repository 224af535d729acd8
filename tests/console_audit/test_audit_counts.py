"""Chart counts: settled days counted once, yesterday and today on every view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import col

from idp.audit.log import AuditEvent, append
from idp.console.audit_counts import DayCounts
from idp.storage.engine import Database
from idp.storage.models import AuditEntry


def _verification(db: Database, code: str, client: str, outcome: str, days_ago: int) -> None:
    with db.session() as session:
        append(
            session,
            AuditEvent(
                tracking_code=code, event_type="verification", actor_type="client",
                actor_id=client, outcome=outcome,
            ),
        )  # fmt: skip
        moment = datetime.now(UTC) - timedelta(days=days_ago)
        session.execute(
            update(AuditEntry)
            .where(col(AuditEntry.tracking_code) == code)
            .values(created_at=moment)
        )


def _totals(rows: list) -> dict[tuple[str, str | None], tuple[int, int]]:  # type: ignore[type-arg]
    return {(r.day, r.actor_id): (r.total, r.refused) for r in rows}


def test_counts_match_the_log_and_new_entries_of_today_show_at_once(db: Database) -> None:
    today = datetime.now(UTC).date()
    _verification(db, "A", "bank", "match", 5)
    _verification(db, "B", "bank", "refused", 5)
    _verification(db, "C", "telecom", "refused", 1)
    _verification(db, "D", "bank", "match", 0)
    cache = DayCounts()
    with db.session() as session:
        first = _totals(cache.counts(session, today - timedelta(days=6), today))
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    assert first == {
        (day(5), "bank"): (2, 1),
        (day(1), "telecom"): (1, 1),
        (day(0), "bank"): (1, 0),
    }
    _verification(db, "E", "bank", "refused", 0)
    _verification(db, "F", "bank", "refused", 1)
    with db.session() as session:
        again = _totals(cache.counts(session, today - timedelta(days=6), today))
    assert again[(day(0), "bank")] == (2, 1) and again[(day(1), "bank")] == (1, 1)
    assert again[(day(5), "bank")] == (2, 1)
