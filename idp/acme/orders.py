"""newOrder and the order's life (RFC 8555 §7.4, §7.1.6).

The payload is checked first (:mod:`idp.acme.order_requests`). Each name then
gets one authorization: a valid, unexpired one of the same account is reused,
otherwise a new pending one with http-01, dns-01 and tls-alpn-01 challenges
(dns-01 only for a wildcard, §7.1.3). An account keeps at most
:data:`MAX_PENDING_AUTHORIZATIONS` waiting. Every order, and every order
refused by policy, is audited with the entity.

:func:`settle` moves an order on from what its authorizations and the clock
say (``pending`` → ``ready`` | ``invalid``; a ``processing`` order whose
issuance worker died → ``valid`` if the certificate was recorded, else
``invalid``), each move a conditional UPDATE so concurrent readers agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from idp import randomness
from idp.acme.order_documents import (
    CHALLENGE_TYPES,
    FAILED_AUTHORIZATION,
    WILDCARD_CHALLENGE_TYPES,
    authorization_status,
)
from idp.acme.order_requests import OrderRequest
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.acme.settings import AcmeSettings
from idp.audit.log import AuditEvent, append, subject_hash
from idp.storage import acme_orders as store
from idp.storage.acme_orders import AcmeAuthorization, AcmeChallenge, AcmeOrder
from idp.storage.certificate_store import record_audit_event
from idp.storage.engine import Database
from idp.tracking import new_tracking_code

EVENT_ORDER = "acme_order_created"
EVENT_ORDER_REFUSED = "acme_order_refused"
# One account may keep at most this many authorizations waiting (Boulder's limit):
# orders nobody validates would otherwise fill the tables.
MAX_PENDING_AUTHORIZATIONS = 1000
PENDING_RETRY_AFTER_SECONDS = 300


def new_id() -> str:
    """A resource id for URLs: 128 random bits, base64url."""
    return randomness.token_urlsafe(16)


def problem_document(error: str, detail: str, status: int = 400) -> dict[str, Any]:
    return AcmeProblem(error, detail, status).to_dict()


# --- writing -------------------------------------------------------------------------


def _audit(
    account: AcmeAccount, pepper: bytes, event_type: str, outcome: str, detail: dict[str, Any]
) -> AuditEvent:
    return AuditEvent(
        tracking_code=new_tracking_code(),
        event_type=event_type,
        actor_type="acme-account",
        actor_id=f"acme:{account.id}",
        service_code=account.service_code,
        operation="acme.new_order",
        subject_hash=subject_hash(pepper, account.national_id),
        outcome=outcome,
        detail={"national_id": account.national_id, **detail},
    )


def audit_refusal(
    db: Database, account: AcmeAccount, pepper: bytes, ca: str, problem: AcmeProblem
) -> None:
    """An order refused by policy: who tried which names, in a transaction of its own."""
    names = [s["identifier"]["value"] for s in problem.subproblems or []]
    record_audit_event(
        db,
        _audit(
            account,
            pepper,
            EVENT_ORDER_REFUSED,
            "refused",
            {"ca": ca, "reason": problem.error, "names_count": len(names), "names": names},
        ),
    )


def _new_authorization(
    account: AcmeAccount, ca: str, name: str, expires_at: datetime
) -> tuple[AcmeAuthorization, list[AcmeChallenge]]:
    wildcard = name.startswith("*.")
    authz = AcmeAuthorization(
        id=new_id(),
        account_id=account.id,
        ca=ca,
        identifier=name.removeprefix("*."),
        wildcard=wildcard,
        status="pending",
        expires_at=expires_at,
    )
    kinds = WILDCARD_CHALLENGE_TYPES if wildcard else CHALLENGE_TYPES
    challenges = [
        AcmeChallenge(
            id=new_id(),
            authz_id=authz.id,
            type=kind,
            token=randomness.token_urlsafe(32),  # §8.1: at least 128 bits of entropy
            status="pending",
        )
        for kind in kinds
    ]
    return authz, challenges


def create_order(
    db: Database,
    account: AcmeAccount,
    ca: str,
    wanted: OrderRequest,
    settings: AcmeSettings,
    pepper: bytes,
    now: datetime,
) -> tuple[AcmeOrder, list[str]]:
    """The order and its authorization ids, with its audit entry, in one transaction.

    Raises ``alreadyReplaced`` when another live order replaces the same certificate.
    """
    expires_at = now + timedelta(seconds=settings.order_lifetime_seconds)
    order = AcmeOrder(
        id=new_id(),
        account_id=account.id,
        ca=ca,
        status="pending",
        names=list(wanted.names),
        profile=wanted.profile,
        replaces=wanted.replaces,
        expires_at=expires_at,
        created_at=now,
    )
    with db.session() as session:
        authorizations: list[AcmeAuthorization] = []
        new_rows: list[AcmeAuthorization | AcmeChallenge] = []
        reused_count = 0
        for name in wanted.names:
            reused = store.reusable_authorization(
                session, account.id, ca, name.removeprefix("*."), name.startswith("*."), expires_at
            )
            if reused is not None:
                authorizations.append(reused)
                reused_count += 1
                continue
            authz, challenges = _new_authorization(account, ca, name, expires_at)
            authorizations.append(authz)
            new_rows += [authz, *challenges]
        fresh = sum(isinstance(row, AcmeAuthorization) for row in new_rows)
        if fresh and (
            store.pending_authorization_count(session, account.id, now) + fresh
            > MAX_PENDING_AUTHORIZATIONS
        ):
            raise AcmeProblem(
                "rateLimited",
                f"the account has too many pending authorizations (at most "
                f"{MAX_PENDING_AUTHORIZATIONS}); validate or deactivate them, or wait for "
                "them to expire",
                429,
                headers={"Retry-After": str(PENDING_RETRY_AFTER_SECONDS)},
            )
        if all(a.status == "valid" for a in authorizations):
            order.status = "ready"  # every name already proven (§7.1.6)
        if not store.add_order(session, order, authorizations, new_rows):
            raise AcmeProblem(
                "alreadyReplaced",
                f"certificate {wanted.replaces} is already being replaced by another order",
                409,
            )
        append(
            session,
            _audit(
                account,
                pepper,
                EVENT_ORDER,
                "created",
                {
                    "ca": ca,
                    "order": order.id,
                    "names_count": len(wanted.names),
                    "names": list(wanted.names),
                    "profile": wanted.profile,
                    "replaces": wanted.replaces,
                    "reused_authorizations": reused_count,
                },
            ),
        )
    return order, [a.id for a in authorizations]


# --- the order's life ----------------------------------------------------------------


def _authorizations_verdict(
    session: Session, order: AcmeOrder, now: datetime
) -> tuple[str, dict[str, Any] | None]:
    """``ready``, ``invalid`` (with the error) or ``pending``, from the authorizations."""
    waiting = False
    for authz in store.order_authorizations(session, order.id):
        status = authorization_status(authz, now)
        if status in FAILED_AUTHORIZATION:
            name = ("*." if authz.wildcard else "") + authz.identifier
            return "invalid", problem_document(
                "unauthorized", f"the authorization for {name} is {status}", 403
            )
        waiting = waiting or status != "valid"
    return ("pending" if waiting else "ready"), None


def settle(session: Session, order: AcmeOrder, now: datetime) -> AcmeOrder:
    """The order as it stands now; moves it on (once, whoever reads first) if it must."""
    moved = False
    if order.status in ("pending", "ready"):
        if order.expires_at <= now:
            moved = store.move_order(
                session,
                order.id,
                (order.status,),
                status="invalid",
                error=problem_document("malformed", "the order expired before it was finalized"),
            )
        else:
            verdict, error = _authorizations_verdict(session, order, now)
            if verdict != order.status:
                moved = store.move_order(
                    session, order.id, (order.status,), status=verdict, error=error
                )
    elif (
        order.status == "processing"
        and order.processing_until is not None
        and order.processing_until <= now
        and order.tracking_code
    ):
        # The worker that was issuing died: the certificates table says whether
        # it got as far as the signature being recorded.
        serial = store.issued_serial(session, order.tracking_code)
        values: dict[str, Any] = (
            {"status": "valid", "certificate_serial": serial}
            if serial
            else {
                "status": "invalid",
                "error": problem_document(
                    "serverInternal", "issuance did not complete; place a new order", 500
                ),
            }
        )
        moved = store.finish_processing(session, order.id, order.tracking_code, **values)
    if moved:
        session.flush()
        session.refresh(order)
    return order


def _needs_settling(session: Session, order: AcmeOrder, now: datetime) -> bool:
    if order.status in ("pending", "ready"):
        if order.expires_at <= now:
            return True
        return _authorizations_verdict(session, order, now)[0] != order.status
    return (
        order.status == "processing"
        and order.processing_until is not None
        and order.processing_until <= now
    )


def owned_order(
    db: Database, order_id: str, account: AcmeAccount, ca: str
) -> tuple[AcmeOrder, list[str]]:
    """The account's order as it stands now (settled) and its authorization ids; 404 if
    there is no such order of this account at this CA (another's is not told apart).

    Read without the write lock (SQLite's is one per database): the write
    transaction is opened only when the order has to move on.
    """
    now = datetime.now(UTC)
    with db.read() as session:
        order = store.get_order(session, order_id)
        if order is None or order.account_id != account.id or order.ca != ca:
            raise AcmeProblem("malformed", "no such order", 404)
        authz_ids = [a.id for a in store.order_authorizations(session, order.id)]
        if not _needs_settling(session, order, now):
            return order, authz_ids
    with db.session() as session:
        fresh = store.get_order(session, order_id)
        assert fresh is not None  # orders are never deleted
        return settle(session, fresh, now), authz_ids


def account_orders(db: Database, account: AcmeAccount, ca: str, limit: int) -> list[str]:
    with db.read() as session:
        return store.account_order_ids(session, account.id, ca, limit)
