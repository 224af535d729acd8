"""newOrder and the order's life (RFC 8555 §7.4, §7.1.6).

An order asks for DNS names only (§9.7.7 "dns"; no IP or other identifier
types), each one the legal entity's service policy allows
(:func:`policies.acme.names_refused`); validity comes from the certificate
profile, so ``notBefore``/``notAfter`` are refused. It may name a ``profile``
(draft-ietf-acme-profiles) among those this CA offers, and the certificate it
``replaces`` (RFC 9773 §5). Each name gets one authorization: a valid,
unexpired one of the same account is reused, otherwise a new pending one with
http-01, dns-01 and tls-alpn-01 challenges (dns-01 only for a wildcard).
Every order, and every order refused by policy, is audited with the entity.

:func:`settle` moves an order on from what its authorizations and the clock
say (``pending`` → ``ready`` | ``invalid``; a ``processing`` order whose
issuance worker died → ``valid`` if the certificate was recorded, else
``invalid``), each move a conditional UPDATE so concurrent readers agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from ca import names as ca_names
from idp import randomness
from idp.acme.order_documents import (
    CHALLENGE_TYPES,
    FAILED_AUTHORIZATION,
    WILDCARD_CHALLENGE_TYPES,
    authorization_status,
)
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.acme.settings import AcmeSettings
from idp.audit.log import AuditEvent, append, subject_hash
from idp.storage import acme_orders as store
from idp.storage.acme_orders import AcmeAuthorization, AcmeChallenge, AcmeOrder
from idp.storage.certificate_store import record_audit_event
from idp.storage.engine import Database
from idp.tracking import new_tracking_code
from policies.acme import NameRefused, names_refused, normalise_name
from policies.service_policy import ServicePolicy

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


# --- the request ---------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRequest:
    """A newOrder payload, checked: the names normalised, the profile decided."""

    names: tuple[str, ...]
    profile: str
    replaces: str | None


def _identifier_problem(kind: str, value: object, detail: str) -> dict[str, Any]:
    shown = value if isinstance(value, str) else repr(value)[:100]
    return {
        "type": f"urn:ietf:params:acme:error:{kind}",
        "detail": detail,
        "identifier": {"type": "dns", "value": shown[:300]},
    }


def _names(identifiers: object, settings: AcmeSettings) -> tuple[str, ...]:
    if not isinstance(identifiers, list) or not identifiers:
        raise AcmeProblem("malformed", "identifiers must be a non-empty list (§7.4)")
    if len(identifiers) > settings.max_identifiers:
        raise AcmeProblem(
            "rejectedIdentifier",
            f"an order may name at most {settings.max_identifiers} identifiers",
        )
    unsupported: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    found: list[str] = []
    for identifier in identifiers:
        if not isinstance(identifier, dict) or not isinstance(identifier.get("value"), str):
            raise AcmeProblem("malformed", "each identifier is an object with type and value")
        kind, value = identifier.get("type"), identifier["value"]
        if kind != "dns":
            unsupported.append(
                {
                    "type": "urn:ietf:params:acme:error:unsupportedIdentifier",
                    "detail": f"identifier type {str(kind)[:20]!r} is not issued here; "
                    "only dns names",
                    "identifier": {"type": str(kind)[:20], "value": value[:300]},
                }
            )
            continue
        try:
            name = normalise_name(value)
            # What the certificate may carry at all: no public suffix, no
            # Internal Name (CA/B BR 3.2.2.6, 1.6.1); refused now, not at finalize.
            ca_names.check_dns_name(name)
        except (NameRefused, ca_names.InvalidDNSName) as exc:
            rejected.append(_identifier_problem("rejectedIdentifier", value, str(exc)))
            continue
        found.append(name)
    if unsupported:
        raise AcmeProblem(
            "unsupportedIdentifier",
            "only dns identifiers are issued by this server",
            subproblems=unsupported + rejected,
        )
    if rejected:
        raise AcmeProblem(
            "rejectedIdentifier", "some identifiers cannot be issued", subproblems=rejected
        )
    return tuple(dict.fromkeys(found))


def _profile(payload: dict[str, Any], offered: tuple[str, ...], default: str) -> str:
    if "profile" not in payload:
        if default in offered:
            return default
        if offered:
            return offered[0]
        raise AcmeProblem("invalidProfile", "this CA offers no certificate profile over ACME")
    profile = payload["profile"]
    if not isinstance(profile, str) or profile not in offered:
        raise AcmeProblem(
            "invalidProfile",
            f"profile {str(profile)[:60]!r} is not offered here; offered: {', '.join(offered)}",
        )
    return profile


def parse_order_request(
    payload: dict[str, Any] | None, settings: AcmeSettings, offered: tuple[str, ...]
) -> OrderRequest:
    """The newOrder payload (§7.4), or :class:`AcmeProblem` saying which member is wrong."""
    if payload is None:
        raise AcmeProblem("malformed", "newOrder takes a JSON object, not POST-as-GET")
    for member in ("notBefore", "notAfter"):
        if member in payload:
            raise AcmeProblem(
                "malformed",
                f"{member} is not accepted: the certificate profile decides the validity",
            )
    replaces = payload.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        raise AcmeProblem("malformed", "replaces must be a certID string (RFC 9773 §5)")
    return OrderRequest(
        names=_names(payload.get("identifiers"), settings),
        profile=_profile(payload, offered, settings.default_profile),
        replaces=replaces,
    )


def refused_by_policy(policy: ServicePolicy | None, names: tuple[str, ...]) -> AcmeProblem | None:
    """rejectedIdentifier with one subproblem per name the entity may not order."""
    refused = (
        [(name, "the account's service policy allows no names") for name in names]
        if policy is None
        else names_refused(policy, names)
    )
    if not refused:
        return None
    return AcmeProblem(
        "rejectedIdentifier",
        f"{len(refused)} of the names are outside what this entity may order",
        subproblems=[
            _identifier_problem("rejectedIdentifier", name, reason) for name, reason in refused
        ],
    )


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


def owned_order(
    db: Database, order_id: str, account: AcmeAccount, ca: str
) -> tuple[AcmeOrder, list[str]]:
    """The account's order as it stands now (settled) and its authorization ids; 404 if
    there is no such order of this account at this CA (another's is not told apart)."""
    with db.session() as session:
        order = store.get_order(session, order_id)
        if order is None or order.account_id != account.id or order.ca != ca:
            raise AcmeProblem("malformed", "no such order", 404)
        order = settle(session, order, datetime.now(UTC))
        return order, [a.id for a in store.order_authorizations(session, order.id)]


def account_orders(db: Database, account: AcmeAccount, ca: str, limit: int) -> list[str]:
    with db.read() as session:
        return store.account_order_ids(session, account.id, ca, limit)
