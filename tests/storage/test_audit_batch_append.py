"""Batch appends of audit entries (PostgreSQL: one COPY) keep every promise a single insert makes.

The group committer appends every request's audit entries in batches; on
PostgreSQL they go through ``COPY`` (:mod:`idp.storage.pg_copy`). Whatever the
path, an entry must read back exactly as given, in the order given (the log's
leaf order follows ids), and a bad row must leave nothing of its batch behind.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, StatementError
from sqlmodel import col
from sqlmodel import select as sqlmodel_select

from idp.audit.log import AuditEvent, insert_events
from idp.storage.engine import Database
from idp.storage.models import AuditEntry
from idp.storage.types import NaiveDatetimeError

AWKWARD_DETAIL = {
    "name": "محمد\u200cرضا",  # a zero-width non-joiner, as Persian names have
    "tab\tand\nnewline": 'back\\slash and "quote" and \x01 control',
    "nested": {"list": [1, 2.5, None, True], "empty": {}},
}


def _event(index: int, **changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "tracking_code": f"T{index:06d}",
        "event_type": "verification",
        "actor_type": "client",
        "actor_id": "demo-bank",
        "service_code": "bank-kyc",
        "operation": "persons.verify",
        "subject_hash": f"{index:064x}",
        "outcome": "match",
        "detail": {**AWKWARD_DETAIL, "index": index},
    }
    fields.update(changes)
    return AuditEvent(**fields)  # type: ignore[arg-type]


def _entries(db: Database) -> list[AuditEntry]:
    with db.session() as session:
        return list(session.exec(sqlmodel_select(AuditEntry).order_by(col(AuditEntry.id))).all())


def _count(db: Database) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def test_a_batch_reads_back_exactly_and_in_order(db: Database) -> None:
    events = [_event(i) for i in range(25)]
    with db.engine.begin() as connection:
        assert insert_events(connection, events) == 25
    entries = _entries(db)
    assert [e.tracking_code for e in entries] == [e.tracking_code for e in events]
    for entry, event in zip(entries, events, strict=True):
        assert entry.detail == event.detail
        assert (entry.event_type, entry.actor_id, entry.operation, entry.subject_hash) == (
            event.event_type,
            event.actor_id,
            event.operation,
            event.subject_hash,
        )
        assert entry.created_at.tzinfo is not None and entry.leaf_index is None


def test_attack_an_overlong_field_in_a_batch_leaves_nothing_of_the_batch(db: Database) -> None:
    # One row of the batch breaks a column limit (operation is 64 characters at most on
    # PostgreSQL): the whole batch fails as a database error, and no row of it stays.
    events = [_event(0), _event(1, operation="x" * 65), _event(2)]
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths; the PostgreSQL case is the one")
    with pytest.raises(DBAPIError), db.engine.begin() as connection:
        insert_events(connection, events)
    assert _count(db) == 0
    with db.engine.begin() as connection:  # the connection is usable again
        insert_events(connection, [_event(3), _event(4)])
    assert _count(db) == 2


def test_attack_a_naive_timestamp_in_a_batch_is_refused_and_writes_nothing(db: Database) -> None:
    from idp.storage.audit_entries import insert_entries

    good = {"created_at": datetime.now(UTC), "tracking_code": "A", "event_type": "e",
            "actor_type": "client", "actor_id": None, "service_code": None,
            "legal_basis": None, "operation": None, "subject_hash": None,
            "outcome": "ok", "detail": {}}  # fmt: skip
    naive = {**good, "tracking_code": "B", "created_at": datetime.now()}
    with pytest.raises((NaiveDatetimeError, StatementError)), db.engine.begin() as connection:
        insert_entries(connection, [good, naive])
    assert _count(db) == 0
