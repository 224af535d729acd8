"""Assisted sessions: a clerk at a counter office serves one citizen who is present.

The clerk (signed in at level substantial or higher, holding the role
``counter_clerk`` and a clerk's membership of the office) starts a session
for a national code and a mobile number the mobile registry binds to that
person; a code is texted to it, and the citizen reads it out to prove
presence. Until then, and after the session's time runs out or it is ended,
nothing can be run. In a proven session the clerk may run only the services
the office's policy lists, only on that citizen.

Every act is one audit entry in the act's transaction, naming the clerk
(``actor_id``, a subject hash), the citizen (``subject_hash``) and the office
(``detail``); every refusal is one audit entry too, committed on its own
before :class:`CounterRefused` is raised (the refused act wrote nothing).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from idp.audit.log import AuditEvent, append, subject_hash
from idp.context import Hoviyat
from idp.counters import presence
from idp.counters.config import CounterSettings
from idp.counters.services import CounterService, allows
from idp.login.limits import Allowance, take
from idp.login.otp import OtpOutcome
from idp.storage import counters
from idp.storage.counters import CLERK, SUPERVISOR, AssistedSession, CounterOffice
from idp.tracking import new_tracking_code
from policies.assurance import SUBSTANTIAL, satisfies
from verifiers.dates import parse_date
from verifiers.identifiers import IdentifierError, validate_national_code
from verifiers.matching import FieldResult, PersonClaims, compare_person, overall_match
from verifiers.mobile import normalize_mobile

ROLE_CLERK = "counter_clerk"
ROLE_SUPERVISOR = "counter_supervisor"
ACTOR = "counter_clerk"
SUPERVISOR_ACTOR = "counter_supervisor"
# What only a supervisor does: a refusal of these names its actor as one.
SUPERVISOR_OPERATIONS = frozenset({"counter.review", "counter.flag"})
HOUR = 3600


class Reason(StrEnum):
    """Why a counter action was refused: the audit entry's ``detail.reason``."""

    LEVEL = "level_too_low"
    ROLE = "role_missing"
    NOT_MEMBER = "not_member_of_office"
    NO_OFFICE = "no_such_office"
    NO_SESSION = "no_such_session"
    NOT_YOURS = "not_your_session"
    NOT_PRESENT = "presence_not_proven"
    EXPIRED = "session_expired"
    ENDED = "session_ended"
    SERVICE = "service_not_in_policy"
    OTHER_CITIZEN = "other_citizen"
    MOBILE_NOT_OWNED = "mobile_not_owned"
    TOO_MANY_CODES = "too_many_codes"
    PRESENT = "presence_proven_already"


class CounterRefused(Exception):
    """The action was refused (and audited); ``reason`` says which rule."""

    def __init__(self, reason: Reason, tracking_code: str, wait_seconds: int = 0) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.tracking_code = tracking_code  # of the refusal's audit entry
        self.wait_seconds = wait_seconds


class BadInput(ValueError):
    """A typed value failed a rule (not audited: nothing was attempted)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Clerk:
    """Who acts at the counter: the console's signed-in user, as this module needs them."""

    person_key: str
    display_name: str
    acr: str
    roles: frozenset[str]


@dataclass(frozen=True)
class CodeToSend:
    """A code stored for the session; its text goes out once the transaction committed."""

    session_id: str
    mobile: str
    code: str
    office_name: str


@dataclass(frozen=True)
class ActResult:
    service: str
    outcome: str  # "match" or "no_match"; "issued" for an attestation
    fields: dict[str, FieldResult]
    tracking_code: str
    verification_code: str | None = None  # an attestation's, for the citizen to share


def now() -> datetime:
    return datetime.now(UTC)


def _office_detail(office: CounterOffice, clerk_name: str, **more: Any) -> dict[str, Any]:
    return {
        "office_id": office.national_id,
        "office_name": office.name,
        "clerk_name": clerk_name,
        **more,
    }


class _Refusal(Exception):
    """Raised inside :func:`acting`; its audit entry commits there, then CounterRefused."""

    def __init__(self, event: AuditEvent, reason: Reason, wait_seconds: int) -> None:
        super().__init__(reason.value)
        self.event = event
        self.reason = reason
        self.wait_seconds = wait_seconds


def refuse(
    _hoviyat: Hoviyat,
    clerk: Clerk,
    reason: Reason,
    *,
    operation: str,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
    wait_seconds: int = 0,
) -> _Refusal:
    """The refusal to raise inside :func:`acting`, with its audit entry."""
    event = AuditEvent(
        tracking_code=new_tracking_code(),
        event_type="counter_refused",
        actor_type=SUPERVISOR_ACTOR if operation in SUPERVISOR_OPERATIONS else ACTOR,
        actor_id=clerk.person_key,
        operation=operation,
        subject_hash=subject,
        outcome="refused",
        detail={"reason": reason.value, "clerk_name": clerk.display_name, **(detail or {})},
    )
    return _Refusal(event, reason, wait_seconds)


@contextmanager
def acting(hoviyat: Hoviyat) -> Iterator[Session]:
    """One transaction for a counter action. A refusal raised inside commits its audit
    entry (and what was counted before it, such as a code-sending allowance; refusals
    come before the action's own writes) and surfaces as :class:`CounterRefused`."""
    refusal: _Refusal | None = None
    with hoviyat.db.session() as db:
        try:
            yield db
        except _Refusal as raised:
            append(db, raised.event)
            refusal = raised
    if refusal is not None:
        raise CounterRefused(refusal.reason, refusal.event.tracking_code, refusal.wait_seconds)


def gate(
    hoviyat: Hoviyat,
    db: Session,
    clerk: Clerk,
    office_id: str,
    *,
    role: str,
    operation: str,
    subject: str | None = None,
) -> CounterOffice:
    """The office, if ``clerk`` may act there in ``role``; else refused and audited."""
    member_role = CLERK if role == ROLE_CLERK else SUPERVISOR
    where = {"office_id": office_id}
    if not satisfies(clerk.acr, SUBSTANTIAL):
        raise refuse(
            hoviyat, clerk, Reason.LEVEL, operation=operation, subject=subject, detail=where
        )
    if role not in clerk.roles:
        raise refuse(
            hoviyat, clerk, Reason.ROLE, operation=operation, subject=subject, detail=where
        )
    office = counters.office(db, office_id)
    if office is None:
        raise refuse(
            hoviyat, clerk, Reason.NO_OFFICE, operation=operation, subject=subject, detail=where
        )
    if member_role not in counters.member_roles(db, office_id, clerk.person_key):
        raise refuse(
            hoviyat, clerk, Reason.NOT_MEMBER, operation=operation, subject=subject, detail=where
        )
    return office


def own_session(
    hoviyat: Hoviyat, db: Session, clerk: Clerk, session_id: str, operation: str
) -> tuple[AssistedSession, CounterOffice]:
    row = counters.session_row(db, session_id)
    if row is None:
        raise refuse(hoviyat, clerk, Reason.NO_SESSION, operation=operation)
    where = {"session_id": row.id, "office_id": row.office_id}
    if row.clerk_key != clerk.person_key:
        raise refuse(
            hoviyat,
            clerk,
            Reason.NOT_YOURS,
            operation=operation,
            subject=row.citizen_key,
            detail=where,
        )
    office = gate(
        hoviyat,
        db,
        clerk,
        row.office_id,
        role=ROLE_CLERK,
        operation=operation,
        subject=row.citizen_key,
    )
    return row, office


def require_live(
    hoviyat: Hoviyat, clerk: Clerk, row: AssistedSession, office: CounterOffice, operation: str
) -> None:
    detail = _office_detail(office, clerk.display_name, session_id=row.id)
    if row.ended_at is not None:
        raise refuse(
            hoviyat,
            clerk,
            Reason.ENDED,
            operation=operation,
            subject=row.citizen_key,
            detail=detail,
        )
    if row.expires_at <= now():
        raise refuse(
            hoviyat,
            clerk,
            Reason.EXPIRED,
            operation=operation,
            subject=row.citizen_key,
            detail=detail,
        )


def national_code_of(typed: str) -> str:
    try:
        return validate_national_code(typed)
    except IdentifierError as error:
        raise BadInput("national_code", error.message) from None


def _mobile(typed: str) -> str:
    try:
        return normalize_mobile(typed)
    except IdentifierError as error:
        raise BadInput("mobile", error.message) from None


def _check_number(
    hoviyat: Hoviyat,
    db: Session,
    clerk: Clerk,
    office: CounterOffice,
    citizen_key: str,
    national_code: str,
    mobile: str,
    operation: str,
    session_id: str | None,
) -> None:
    """The number must be the citizen's; the asking counts against the login's sending
    limits first, so guessing which number a person owns is as slow here as at login."""
    login = hoviyat.login_settings
    detail = _office_detail(office, clerk.display_name, session_id=session_id)
    wait = take(
        db,
        [
            Allowance(f"otp:mobile:{mobile}", login.otp_per_mobile_per_hour),
            Allowance(f"otp:nc:{citizen_key}", login.otp_per_national_code_per_hour),
        ],
        HOUR,
    )
    if wait is not None:
        raise refuse(
            hoviyat,
            clerk,
            Reason.TOO_MANY_CODES,
            operation=operation,
            subject=citizen_key,
            detail=detail,
            wait_seconds=wait,
        )
    if not hoviyat.registries.mobile.owns(national_code, mobile):
        raise refuse(
            hoviyat,
            clerk,
            Reason.MOBILE_NOT_OWNED,
            operation=operation,
            subject=citizen_key,
            detail=detail,
        )


def _store_code(
    hoviyat: Hoviyat,
    db: Session,
    clerk: Clerk,
    settings: CounterSettings,
    row: AssistedSession,
    office: CounterOffice,
    mobile: str,
    operation: str,
) -> CodeToSend:
    login = hoviyat.login_settings
    code = presence.issue(
        db,
        presence.presence_key(hoviyat.secrets),
        row.id,
        now=now(),
        ttl_seconds=login.otp_ttl_seconds,
        max_attempts=login.otp_max_attempts,
        max_sends=settings.codes_per_session,
    )
    if code is None:
        detail = _office_detail(office, clerk.display_name, session_id=row.id)
        raise refuse(
            hoviyat,
            clerk,
            Reason.TOO_MANY_CODES,
            operation=operation,
            subject=row.citizen_key,
            detail=detail,
        )
    return CodeToSend(row.id, mobile, code, office.name)


def start(
    hoviyat: Hoviyat,
    settings: CounterSettings,
    clerk: Clerk,
    office_id: str,
    national_code: str,
    mobile: str,
) -> CodeToSend:
    """Open a session for the citizen and store a presence code for their number.

    Asks the mobile registry: call from a worker thread. The caller texts the
    code after this returns (the transaction has committed), and calls
    :func:`withdraw` if it cannot.
    """
    operation = "counter.session.start"
    code = national_code_of(national_code)
    number = _mobile(mobile)
    citizen = subject_hash(hoviyat.secrets.subject_pepper, code)
    started = now()
    with acting(hoviyat) as db:
        office = gate(
            hoviyat, db, clerk, office_id, role=ROLE_CLERK, operation=operation, subject=citizen
        )
        row = AssistedSession(
            id=secrets.token_urlsafe(12),
            office_id=office.national_id,
            clerk_key=clerk.person_key,
            clerk_name=clerk.display_name,
            citizen_key=citizen,
            tracking_code=new_tracking_code(),
            created_at=started,
            expires_at=started + timedelta(minutes=settings.session_minutes),
        )
        _check_number(hoviyat, db, clerk, office, citizen, code, number, operation, None)
        counters.add_session(db, row)
        to_send = _store_code(hoviyat, db, clerk, settings, row, office, number, operation)
        record(db, "counter_session", "started", clerk, row, office, operation)
    return to_send


def resend(
    hoviyat: Hoviyat,
    settings: CounterSettings,
    clerk: Clerk,
    session_id: str,
    national_code: str,
    mobile: str,
) -> CodeToSend:
    """A new presence code for a session still awaiting presence (the last one stops working)."""
    operation = "counter.session.resend"
    code = national_code_of(national_code)
    number = _mobile(mobile)
    with acting(hoviyat) as db:
        row, office = own_session(hoviyat, db, clerk, session_id, operation)
        require_live(hoviyat, clerk, row, office, operation)
        _same_citizen(hoviyat, clerk, row, office, code, operation)
        _check_number(hoviyat, db, clerk, office, row.citizen_key, code, number, operation, row.id)
        to_send = _store_code(hoviyat, db, clerk, settings, row, office, number, operation)
        record(db, "counter_session", "requested", clerk, row, office, operation)
    return to_send


def withdraw(hoviyat: Hoviyat, session_id: str) -> None:
    """The text could not be sent: the stored code must not be enterable."""
    with hoviyat.db.session() as db:
        counters.withdraw_code(db, session_id)


def prove_presence(hoviyat: Hoviyat, clerk: Clerk, session_id: str, typed_code: str) -> OtpOutcome:
    """The code the citizen read out; accepted once, within its attempts and time."""
    operation = "counter.session.presence"
    with acting(hoviyat) as db:
        row, office = own_session(hoviyat, db, clerk, session_id, operation)
        outcome = presence.check(
            db, presence.presence_key(hoviyat.secrets), row.id, typed_code, now()
        )
        record(db, "counter_session", f"otp_{outcome.value}", clerk, row, office, operation)
    return outcome


def _same_citizen(
    hoviyat: Hoviyat,
    clerk: Clerk,
    row: AssistedSession,
    office: CounterOffice,
    national_code: str,
    operation: str,
) -> None:
    other = subject_hash(hoviyat.secrets.subject_pepper, national_code)
    if other != row.citizen_key:
        # The person looked up is the one who should read about it in their history.
        detail = _office_detail(office, clerk.display_name, session_id=row.id)
        raise refuse(
            hoviyat, clerk, Reason.OTHER_CITIZEN, operation=operation, subject=other, detail=detail
        )


def run_service(
    hoviyat: Hoviyat, clerk: Clerk, session_id: str, service: str, form: dict[str, str]
) -> ActResult:
    """Run one listed service on the session's citizen. Asks a registry: call from a worker thread.

    ``form``: ``national_code`` (must be the session's citizen), and the service's
    own fields (person_verification: first_name, last_name, birth_date;
    mobile_verification: mobile).
    """
    operation = f"counter.{service}"[:64]
    code = national_code_of(form.get("national_code", ""))
    with acting(hoviyat) as db:
        row, office = admit(hoviyat, db, clerk, session_id, service, code, operation)
        detail = _office_detail(office, clerk.display_name, session_id=row.id)
        fields = _serve(hoviyat, CounterService(service), code, form)
        if not counters.count_act(db, row.id, now()):
            # Ended or expired while the registry answered: the answer is not given.
            raise refuse(
                hoviyat,
                clerk,
                Reason.EXPIRED,
                operation=operation,
                subject=row.citizen_key,
                detail=detail,
            )
        outcome = "match" if overall_match(fields) else "no_match"
        entry = record(
            db,
            "counter_service",
            outcome,
            clerk,
            row,
            office,
            operation,
            service=service,
            fields=fields,
        )
    return ActResult(service, outcome, fields, entry)


def admit(
    hoviyat: Hoviyat,
    db: Session,
    clerk: Clerk,
    session_id: str,
    service: str,
    national_code: str,
    operation: str,
) -> tuple[AssistedSession, CounterOffice]:
    """The clerk's own live, proven session, if the service is on the office's policy and
    the act is for the session's citizen; every other case refused (and audited)."""
    row, office = own_session(hoviyat, db, clerk, session_id, operation)
    require_live(hoviyat, clerk, row, office, operation)
    detail = _office_detail(office, clerk.display_name, session_id=row.id)
    if row.present_at is None:
        raise refuse(
            hoviyat,
            clerk,
            Reason.NOT_PRESENT,
            operation=operation,
            subject=row.citizen_key,
            detail=detail,
        )
    if service not in set(CounterService) or not allows(office.services, service):
        raise refuse(
            hoviyat,
            clerk,
            Reason.SERVICE,
            operation=operation,
            subject=row.citizen_key,
            detail={**detail, "service": service[:64]},
        )
    _same_citizen(hoviyat, clerk, row, office, national_code, operation)
    return row, office


def _serve(
    hoviyat: Hoviyat, service: CounterService, national_code: str, form: dict[str, str]
) -> dict[str, FieldResult]:
    if service is CounterService.ATTESTATION_ISSUE:
        raise BadInput("service", "attestations are issued by idp.counters.attest")
    if service is CounterService.MOBILE_VERIFICATION:
        number = _mobile(form.get("mobile", ""))
        owned = hoviyat.registries.mobile.owns(national_code, number)
        return {"mobile": "match" if owned else "mismatch"}
    first, last = form.get("first_name", "").strip(), form.get("last_name", "").strip()
    if not first or len(first) > 100:
        raise BadInput("first_name", "first name is required (at most 100 characters)")
    if not last or len(last) > 100:
        raise BadInput("last_name", "last name is required (at most 100 characters)")
    try:
        born = parse_date(form.get("birth_date", ""))
    except IdentifierError as error:
        raise BadInput("birth_date", error.message) from None
    person = hoviyat.registries.civil.person(national_code)
    claims = PersonClaims(first_name=first, last_name=last, birth_date=born)
    return {
        name: result
        for name, result in compare_person(person, claims).items()
        if result != "not_checked"
    }


def end(hoviyat: Hoviyat, clerk: Clerk, session_id: str) -> bool:
    """End the session now; False if it had ended already."""
    operation = "counter.session.end"
    with acting(hoviyat) as db:
        row, office = own_session(hoviyat, db, clerk, session_id, operation)
        ended = counters.end(db, row.id, now())
        if ended:
            record(db, "counter_session", "ended", clerk, row, office, operation)
    return ended


def session_of(
    hoviyat: Hoviyat, clerk: Clerk, session_id: str
) -> tuple[AssistedSession, CounterOffice]:
    """The clerk's own session and its office, for showing (refused and audited otherwise)."""
    with acting(hoviyat) as db:
        return own_session(hoviyat, db, clerk, session_id, "counter.session.view")


def record(
    db: Session,
    event_type: str,
    outcome: str,
    clerk: Clerk,
    row: AssistedSession,
    office: CounterOffice,
    operation: str,
    **detail: Any,
) -> str:
    """One audit entry naming clerk, citizen and office, in the action's transaction."""
    tracking = new_tracking_code()
    append(
        db,
        AuditEvent(
            tracking_code=tracking,
            event_type=event_type,
            actor_type=ACTOR,
            actor_id=clerk.person_key,
            operation=operation,
            subject_hash=row.citizen_key,
            outcome=outcome,
            detail=_office_detail(
                office,
                clerk.display_name,
                session_id=row.id,
                session_tracking_code=row.tracking_code,
                **detail,
            ),
        ),
    )
    return tracking
