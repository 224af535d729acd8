"""The supervisor's review of an office's assisted sessions, and flags for auditors.

Only a person holding the role ``counter_supervisor`` and a supervisor's
membership of the office sees its queue or flags a session; anyone else is
refused and audited (:func:`idp.counters.assisted.gate`). A flag is one
conditional UPDATE (a session is flagged once) and one ``counter_flagged``
audit entry, the event type auditors search by.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from idp.audit.log import AuditEvent, append
from idp.context import Hoviyat
from idp.counters.assisted import (
    ROLE_SUPERVISOR,
    SUPERVISOR_ACTOR,
    BadInput,
    Clerk,
    Reason,
    acting,
    gate,
    refuse,
)
from idp.storage import counters
from idp.storage.counters import AssistedSession, CounterOffice
from idp.tracking import new_tracking_code

MAX_REASON = 500


def queue(
    hoviyat: Hoviyat, supervisor: Clerk, office_id: str, limit: int
) -> tuple[CounterOffice, Sequence[AssistedSession]]:
    """The office and its sessions, newest first."""
    with acting(hoviyat) as db:
        office = gate(
            hoviyat, db, supervisor, office_id, role=ROLE_SUPERVISOR, operation="counter.review"
        )
        return office, counters.review_queue(db, office.national_id, limit)


def flag(hoviyat: Hoviyat, supervisor: Clerk, office_id: str, session_id: str, reason: str) -> bool:
    """Flag the office's session with a reason; False if it was flagged already."""
    text = " ".join(reason.split())
    if not text or len(text) > MAX_REASON:
        raise BadInput("reason", f"a reason of 1 to {MAX_REASON} characters is required")
    operation = "counter.flag"
    with acting(hoviyat) as db:
        office = gate(hoviyat, db, supervisor, office_id, role=ROLE_SUPERVISOR, operation=operation)
        row = counters.session_row(db, session_id)
        if row is None or row.office_id != office.national_id:
            # Another office's session is none of this supervisor's business.
            raise refuse(
                hoviyat,
                supervisor,
                Reason.NO_SESSION,
                operation=operation,
                detail={"office_id": office.national_id},
            )
        flagged = counters.flag(
            db, row.id, by=supervisor.person_key, reason=text, now=datetime.now(UTC)
        )
        if flagged:
            append(
                db,
                AuditEvent(
                    tracking_code=new_tracking_code(),
                    event_type="counter_flagged",
                    actor_type=SUPERVISOR_ACTOR,
                    actor_id=supervisor.person_key,
                    operation=operation,
                    subject_hash=row.citizen_key,
                    outcome="flagged",
                    detail={
                        "office_id": office.national_id,
                        "office_name": office.name,
                        "session_id": row.id,
                        "session_tracking_code": row.tracking_code,
                        "clerk": row.clerk_key,
                        "clerk_name": row.clerk_name,
                        "supervisor_name": supervisor.display_name,
                        "reason": text,
                    },
                ),
            )
    return flagged
