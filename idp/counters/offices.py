"""Registering a counter office and its people.

An office is a legal entity the deeds registry knows as active (its national
identifier, شناسه ملی), with a policy: the services its clerks may run. Its
people are clerks and supervisors, kept by the keyed digest of their national
code (:func:`idp.audit.log.subject_hash`). Each change is one audit entry in
the change's own transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

from idp.audit.log import AuditEvent, append, subject_hash
from idp.context import Hoviyat
from idp.counters.services import parse_services
from idp.storage import counters
from idp.storage.counters import CLERK, SUPERVISOR, CounterMember, CounterOffice
from idp.tracking import new_tracking_code
from verifiers.identifiers import IdentifierError, validate_national_code, validate_national_id


class OfficeRefused(ValueError):
    """The office or member cannot be registered; ``str(e)`` says why."""


def register_office(
    hoviyat: Hoviyat, national_id: str, services: list[str], *, operator: str
) -> CounterOffice:
    """Register an active legal entity as a counter office with these services.

    Asks the deeds registry (raises ``RegistryUnavailable`` when it cannot
    answer): call from a worker thread.
    """
    try:
        canonical = validate_national_id(national_id)
        policy = parse_services(services)
    except (IdentifierError, ValueError) as error:
        raise OfficeRefused(str(error)) from None
    entity = hoviyat.registries.deeds.entity(canonical)
    if entity is None:
        raise OfficeRefused(
            "no legal entity with this national identifier is in the deeds registry"
        )
    if entity.status != "active":
        raise OfficeRefused(f"the legal entity is {entity.status}, not active")
    now = datetime.now(UTC)
    row = CounterOffice(national_id=canonical, name=entity.name, services=policy, created_at=now)
    with hoviyat.db.session() as db:
        if counters.office(db, canonical) is not None:
            raise OfficeRefused("this legal entity is already a counter office")
        counters.add_office(db, row)
        append(
            db,
            AuditEvent(
                tracking_code=new_tracking_code(),
                event_type="counter_office",
                actor_type="operator",
                actor_id=operator,
                operation="counter.office.register",
                subject_hash=subject_hash(hoviyat.secrets.subject_pepper, canonical),
                outcome="registered",
                detail={"office_id": canonical, "office_name": entity.name, "services": policy},
            ),
        )
    return row


def add_member(
    hoviyat: Hoviyat,
    office_id: str,
    national_code: str,
    role: str,
    display_name: str,
    *,
    operator: str,
) -> CounterMember:
    """Make the person a clerk or supervisor of the office."""
    if role not in (CLERK, SUPERVISOR):
        raise OfficeRefused(f"role must be {CLERK!r} or {SUPERVISOR!r}, not {role!r}")
    name = " ".join(display_name.split())
    if not name or len(name) > 200:
        raise OfficeRefused("display_name must be 1 to 200 characters")
    try:
        code = validate_national_code(national_code)
    except IdentifierError as error:
        raise OfficeRefused(str(error)) from None
    key = subject_hash(hoviyat.secrets.subject_pepper, code)
    row = CounterMember(
        office_id=office_id,
        person_key=key,
        role=role,
        display_name=name,
        added_at=datetime.now(UTC),
    )
    with hoviyat.db.session() as db:
        if counters.office(db, office_id) is None:
            raise OfficeRefused(f"no counter office {office_id!r}")
        if role in counters.member_roles(db, office_id, key):
            raise OfficeRefused(f"this person is already a {role} of the office")
        counters.add_member(db, row)
        append(
            db,
            AuditEvent(
                tracking_code=new_tracking_code(),
                event_type="counter_office",
                actor_type="operator",
                actor_id=operator,
                operation=f"counter.member.{role}",
                subject_hash=key,
                outcome="created",
                detail={"office_id": office_id, "role": role, "display_name": name},
            ),
        )
    return row
