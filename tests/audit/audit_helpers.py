"""Helpers for audit tests: appending real entries through ``idp.audit.log.append``."""

from __future__ import annotations

from idp.audit.log import AuditEvent, append, subject_hash
from idp.storage.engine import Database
from idp.tracking import new_tracking_code

PEPPER = b"p" * 32


def append_events(db: Database, count: int, *, national_code: str = "0499370899") -> list[str]:
    """Append ``count`` verification events, one transaction each; their tracking codes."""
    codes = []
    for i in range(count):
        code = new_tracking_code()
        with db.session() as session:
            append(
                session,
                AuditEvent(
                    tracking_code=code,
                    event_type="verification",
                    actor_type="client",
                    actor_id=f"client-{i % 3}",
                    service_code="demo-bank-kyc",
                    legal_basis="bylaw art. 6",
                    operation="person.match",
                    subject_hash=subject_hash(PEPPER, national_code),
                    outcome="match" if i % 2 else "no_match",
                    detail={"attributes": ["birth_date"], "n": i},
                ),
            )
        codes.append(code)
    return codes
