"""Auditor search: every filter, on SQLite and PostgreSQL; identifiers hashed at query time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from audit_helpers import PEPPER, append_events
from sqlalchemy import update

from idp.audit.log import AuditEvent, append, subject_hash
from idp.audit.search import AuditQuery, search
from idp.storage.engine import Database
from idp.storage.models import AuditEntry
from verifiers.identifiers import IdentifierError

ENTITY = "10380284790"


def test_every_filter_narrows_the_search(db: Database) -> None:
    codes = append_events(db, 6)
    with db.session() as session:
        entity = append(
            session,
            AuditEvent(
                tracking_code="ENTITY-1", event_type="certificate_issued",
                actor_type="administrator", actor_id="op", service_code="hoviyat-admin",
                outcome="issued",
                subject_hash=subject_hash(PEPPER, ENTITY),
            ),
        )  # fmt: skip
        long_ago = datetime.now(UTC) - timedelta(days=30)
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.tracking_code == codes[0])
            .values(created_at=long_ago)
        )

    def found(**filters: Any) -> list[str]:
        with db.session() as session:
            return [e.tracking_code for e in search(session, PEPPER, AuditQuery(**filters))]

    assert found(tracking_code=codes[2]) == [codes[2]]
    assert found(event_type="certificate_issued") == ["ENTITY-1"]
    assert found(national_id=ENTITY) == ["ENTITY-1"]
    assert found(national_code="۰۴۹۹۳۷۰۸۹۹") == codes  # Persian digits normalised
    assert found(service_code="demo-bank-kyc", outcome="match") == [codes[1], codes[3], codes[5]]
    assert found(actor_id="client-0") == [codes[0], codes[3]]
    assert found(until=datetime.now(UTC) - timedelta(days=1)) == [codes[0]]
    assert codes[0] not in found(since=datetime.now(UTC) - timedelta(days=1))
    first_page = found(limit=3)
    assert found(after_id=entity.id) == [] and len(first_page) == 3
    with pytest.raises(IdentifierError):
        found(national_code="0499370898")  # wrong check digit: said, not silently empty
