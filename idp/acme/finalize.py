"""Finalizing an order (RFC 8555 §7.4): a CSR for exactly the order's names becomes a certificate.

- Only a ``ready`` order is finalized, and only once: ``ready`` → ``processing``
  is one conditional UPDATE, so of two finalize requests racing on any number
  of workers or hosts exactly one issues.
- The CSR (base64url DER) must name exactly the order's names, in its SAN (and
  its CN, if it has one), be signed by its key, with a key the profile allows
  and not the account's own (§11.1): otherwise ``badCSR`` and the order stays
  ``ready`` for a corrected CSR.
- Issuance is :meth:`idp.pki.registration.Pki.prepare` then ``issue_orders``,
  the registration decisions, pre-signing lint and intent records of every
  certificate, in a worker thread. A refusal after the claim puts the order
  back to ``ready`` (a key blocked meanwhile, the CA keys unavailable: 503 with
  ``Retry-After``) or makes it ``invalid`` (lint: a fault of ours, not the
  client's). The order records the issuance's tracking code, so an order whose
  worker died mid-issuance is settled from the certificates table
  (:func:`idp.acme.orders.settle`).
"""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from cryptography import x509
from cryptography.x509.oid import NameOID

from ca.issuance import Issued
from ca.issuance import Order as IssuanceOrder
from idp.acme.order_keys import key_thumbprint
from idp.acme.orders import owned_order
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.audit.log import AuditEvent, append, subject_hash
from idp.pki.csr import csr_dns_names, parse_csr
from idp.pki.refusals import CertificateRefused
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage import acme_orders as store
from idp.storage.acme_orders import AcmeOrder
from idp.storage.certificate_store import record_audit_event
from idp.storage.engine import Database
from idp.tracking import new_tracking_code

log = logging.getLogger("hoviyat.acme")

EVENT_FINALIZED = "acme_order_finalized"
ISSUANCE_DEADLINE_SECONDS = 120  # a processing order older than this lost its worker
# Refusals after the claim that a new CSR or a later try can fix: back to ready.
_RETRYABLE = frozenset({"csr-key-blocked", "csr-key-refused", "ca-keys-unavailable"})


def problem_for(refusal: CertificateRefused) -> AcmeProblem:
    """The ACME problem a registration refusal stands for."""
    if refusal.slug.startswith("csr-"):
        return AcmeProblem("badCSR", refusal.detail)
    if refusal.status == 429:
        return AcmeProblem("rateLimited", refusal.detail, 429)
    if refusal.status >= 500:
        headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else None
        return AcmeProblem("serverInternal", refusal.detail, refusal.status, headers=headers)
    if refusal.slug == "dns-name-invalid":
        return AcmeProblem("rejectedIdentifier", refusal.detail)
    log.warning("ACME issuance refused (%s): %s", refusal.slug, refusal.detail)
    return AcmeProblem("serverInternal", f"the certificate cannot be issued: {refusal.detail}", 500)


def csr_der(payload: dict[str, Any] | None) -> bytes:
    """The ``csr`` member (§7.4: base64url DER, no padding) as bytes."""
    if payload is None or not isinstance(payload.get("csr"), str):
        raise AcmeProblem("malformed", 'finalize takes {"csr": base64url DER}')
    text: str = payload["csr"]
    if not text or "=" in text or len(text) > 100_000:
        raise AcmeProblem("badCSR", "csr is not base64url without padding (§7.4)")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AcmeProblem("badCSR", "csr is not base64url (§7.4)") from None


def check_csr_names(der: bytes, names: list[str], account: AcmeAccount) -> None:
    """badCSR unless the CSR is well signed, names exactly ``names``, and is not the account key."""
    try:
        csr, public_key = parse_csr(der)
        requested, other = csr_dns_names(csr)
        common_names = [
            str(attribute.value).lower()
            for attribute in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        ]
    except CertificateRefused as refusal:
        raise AcmeProblem("badCSR", refusal.detail) from None
    except (ValueError, x509.UnsupportedGeneralNameType) as exc:
        raise AcmeProblem("badCSR", f"the CSR does not decode: {exc}") from None
    if other:
        raise AcmeProblem("badCSR", f"the CSR asks for names that are not DNS names: {other}")
    wanted = set(names)
    extra = sorted((set(requested) | set(common_names)) - wanted)
    missing = sorted(wanted - set(requested))
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"names not in the order: {', '.join(extra)}")
        if missing:
            parts.append(f"order names missing from its SAN: {', '.join(missing)}")
        raise AcmeProblem(
            "badCSR", "the CSR must name exactly the order's names; " + "; ".join(parts)
        )
    if key_thumbprint(public_key) == account.jwk_thumbprint:
        raise AcmeProblem("badCSR", "the CSR's key is the account key; use a key of its own")


def _finalized_event(
    account: AcmeAccount, pepper: bytes, order: AcmeOrder, outcome: str, detail: dict[str, Any]
) -> AuditEvent:
    return AuditEvent(
        tracking_code=order.tracking_code or new_tracking_code(),
        event_type=EVENT_FINALIZED,
        actor_type="acme-account",
        actor_id=f"acme:{account.id}",
        service_code=account.service_code,
        operation="acme.finalize",
        subject_hash=subject_hash(pepper, account.national_id),
        outcome=outcome,
        detail={
            "national_id": account.national_id,
            "ca": order.ca,
            "order": order.id,
            "names_count": len(order.names),
            "profile": order.profile,
            **detail,
        },
    )


def _decide(
    db: Database,
    pki: Pki,
    account: AcmeAccount,
    pepper: bytes,
    order: AcmeOrder,
    payload: dict[str, Any] | None,
    tracking_code: str,
) -> IssuanceOrder:
    """Every decision before the claim, no writes but the audit entry of a refusal:
    a refused CSR leaves the order ready for a corrected one."""
    try:
        der = csr_der(payload)
        check_csr_names(der, order.names, account)
        request = Request(
            csr=der,
            profile=order.profile,
            subject=SubjectReference(dns_names=tuple(order.names)),
            requested_by=f"acme:{account.id}",
            request_reason=f"ACME order {order.id} ({account.service_code})",
            actor_type="acme-account",
            issuing_ca=order.ca,
        )
        try:
            return pki.prepare(request, tracking_code)
        except CertificateRefused as refusal:
            raise problem_for(refusal) from None
    except AcmeProblem as problem:
        if problem.status < 500:
            event = _finalized_event(
                account,
                pepper,
                order,
                "refused",
                {"reason": problem.error, "detail": problem.detail[:300]},
            )
            record_audit_event(db, event)
        raise


def _claim(db: Database, order: AcmeOrder, tracking_code: str) -> None:
    now = datetime.now(UTC)
    until = now + timedelta(seconds=ISSUANCE_DEADLINE_SECONDS)
    with db.session() as session:
        if not store.claim_finalize(session, order.id, tracking_code, now, until):
            raise AcmeProblem("orderNotReady", "the order is no longer ready to finalize", 403)
    order.tracking_code = tracking_code


def _finish(
    db: Database,
    account: AcmeAccount,
    pepper: bytes,
    order: AcmeOrder,
    values: dict[str, Any],
    event: tuple[str, dict[str, Any]],
) -> AcmeOrder:
    assert order.tracking_code is not None
    with db.session() as session:
        if store.finish_processing(session, order.id, order.tracking_code, **values):
            append(session, _finalized_event(account, pepper, order, *event))
        fresh = store.get_order(session, order.id)
    assert fresh is not None
    return fresh


async def finalize(
    db: Database,
    pki: Pki,
    account: AcmeAccount,
    pepper: bytes,
    order_id: str,
    ca: str,
    payload: dict[str, Any] | None,
) -> tuple[AcmeOrder, list[str]]:
    """Finalize the account's order: the order as it then stands (``valid``) and its
    authorization ids, or a problem."""
    order, authz_ids = await anyio.to_thread.run_sync(owned_order, db, order_id, account, ca)
    if order.status != "ready":
        raise AcmeProblem(
            "orderNotReady", f"the order is {order.status}; only a ready order is finalized", 403
        )
    tracking_code = new_tracking_code()
    prepared: IssuanceOrder = await anyio.to_thread.run_sync(
        _decide, db, pki, account, pepper, order, payload, tracking_code
    )
    await anyio.to_thread.run_sync(_claim, db, order, tracking_code)
    # Any other failure (the database or the CA keys gone mid-issuance) reaches the
    # app's handlers (503); the order stays processing and is settled after its
    # deadline from what the certificates table says.
    try:
        issued: list[Issued] = await anyio.to_thread.run_sync(pki.issue_orders, [prepared])
    except CertificateRefused as refusal:
        values: dict[str, Any] = (
            {"status": "ready", "tracking_code": None, "processing_until": None}
            if refusal.slug in _RETRYABLE
            else {
                "status": "invalid",
                "error": problem_for(refusal).to_dict(),
            }
        )
        event = ("refused", {"reason": refusal.slug})
        await anyio.to_thread.run_sync(_finish, db, account, pepper, order, values, event)
        raise problem_for(refusal) from None
    serial = issued[0].serial_hex
    done = await anyio.to_thread.run_sync(
        _finish,
        db,
        account,
        pepper,
        order,
        {"status": "valid", "certificate_serial": serial, "processing_until": None},
        ("issued", {"serial": serial}),
    )
    return done, authz_ids
