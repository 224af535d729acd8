"""The first administrator, made from the command line (``hoviyat console grant-admin``).

Every later role grant goes through the console's two-person approval; this
one cannot, as there is nobody to approve it. So it is refused once anyone
holds ``admin``, and it is audited like any grant, naming the operator.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from idp.audit.log import AuditEvent, append, subject_hash
from idp.console.roles import Role
from idp.storage import console as store
from idp.tracking import new_tracking_code


class BootstrapRefused(ValueError):
    """The first administrator cannot be made this way (the message says why)."""


def grant_first_admin(db: Session, pepper: bytes, national_code: str, operator: str) -> str:
    """Make the person named by ``national_code`` (already validated) the first
    administrator; returns the tracking code of the audit entry."""
    if store.holds_any(db, Role.ADMIN.value):
        raise BootstrapRefused(
            "an administrator exists already; further roles are granted in the console "
            "(/console/roles), requested by one administrator and approved by another"
        )
    person_key = subject_hash(pepper, national_code)
    store.grant_role(db, person_key, Role.ADMIN.value, operator, datetime.now(UTC))
    tracking_code = new_tracking_code()
    append(
        db,
        AuditEvent(
            tracking_code=tracking_code,
            event_type="console_role",
            actor_type="operator",
            actor_id=operator,
            outcome="granted",
            operation=Role.ADMIN.value,
            subject_hash=person_key,
            detail={"bootstrap": True},
        ),
    )
    return tracking_code
