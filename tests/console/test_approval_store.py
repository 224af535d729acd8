"""The two-person rule holds in the statement itself, not only in the page's check."""

from __future__ import annotations

from datetime import UTC, datetime

from idp.storage import console as store
from idp.storage.engine import Database


def test_the_requester_cannot_decide_their_own_request_even_past_the_page(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        now = datetime.now(UTC)
        with db.session() as session:
            approval = store.request_approval(
                session, "role_grant", {"role": "admin"}, "alice", now
            )
            approval_id = approval.id
        assert approval_id is not None
        with db.session() as session:
            assert not store.decide(session, approval_id, "alice", store.APPROVED, now)
            assert store.approval(session, approval_id).state == store.PENDING  # type: ignore[union-attr]
        with db.session() as session:
            assert store.decide(session, approval_id, "bob", store.APPROVED, now)
        with db.session() as session:
            # Decided once: a second approver (or a replay) changes nothing.
            assert not store.decide(session, approval_id, "carol", store.REJECTED, now)
            row = store.approval(session, approval_id)
            assert row is not None and row.state == store.APPROVED and row.approved_by == "bob"
    finally:
        db.dispose()
