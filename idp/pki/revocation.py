"""Revoking certificates: the database change and its audit entry in one transaction.

Rules (issue 3, RFC 5280 section 5.3.1):

- Any RFC 5280 reason except removeFromCRL; an optional invalidity date, not
  in the future (section 5.3.2: when the key is known or suspected to have
  been compromised).
- Revoking twice keeps the first reason and answers with the state already
  recorded (``already_revoked``): the HTTP API says 200, not 409, so a retried
  request is harmless. Two exceptions: a hold, which a later revocation with a
  final reason replaces; and keyCompromise, which replaces any other reason
  (CA/B BR 4.9.1.1, 7.2.2), keeping the first revocation date, so that what
  the CRL and OCSP say agrees with the key being blocked.
- keyCompromise blocks the public key (``blocked_keys``, refused by issuance)
  and revokes every other certificate that carries the same key, whatever
  CA issued it; those already revoked for another reason become keyCompromise.
- An unknown serial, or one whose issuance failed before signing, is
  ``CertificateNotFound`` (HTTP 404).

Every revoked certificate increments its CRL partition's revision in the same
transaction, which is what makes the next CRL request reissue the CRL, and
the row itself is what the OCSP responder reads, so OCSP answers revoked from
the moment of commit, in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ca.crl import crl_partition_for
from ca.revocation import RevocationReason, blocks_key, replaces
from ca.serials import serial_hex
from idp.audit.log import AuditEvent
from idp.pki.status_settings import utc
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database
from idp.storage.revocation_store import RevocationChanges, issuer_key_ids, revocation
from idp.tracking import new_tracking_code

EVENT_REVOKED = "certificate_revoked"
REVOCABLE_STATES = ("issued", "pending", "revoked")
"""A pending row may name a certificate that was signed just before a crash: revocable."""


class CertificateNotFound(LookupError):
    """No certificate with this serial was ever issued here."""


class RevocationRefused(ValueError):
    """The request cannot be honoured as asked (the message says which field and why)."""


@dataclass(frozen=True)
class Actor:
    """Who asked, and why: recorded in the audit entry."""

    actor_type: str  # "client" (HTTP, an operator's token) | "operator" (CLI) | "system"
    actor_id: str
    reason_text: str | None = None


@dataclass(frozen=True)
class RevokedCertificate:
    serial_hex: str
    issuer_ca: str
    reason: RevocationReason
    revoked_at: datetime
    invalidity_date: datetime | None


@dataclass(frozen=True)
class RevocationOutcome:
    certificate: RevokedCertificate
    already_revoked: bool
    tracking_code: str
    key_blocked: bool = False
    also_revoked: tuple[str, ...] = field(default_factory=tuple)
    """Other serials revoked because they carry the compromised key."""

    def as_dict(self) -> dict[str, object]:
        return {
            "serial": self.certificate.serial_hex,
            "status": "revoked",
            "issuer_ca": self.certificate.issuer_ca,
            "reason": self.certificate.reason.name,
            "revoked_at": self.certificate.revoked_at.isoformat(),
            "invalidity_date": (
                self.certificate.invalidity_date.isoformat()
                if self.certificate.invalidity_date
                else None
            ),
            "already_revoked": self.already_revoked,
            "key_blocked": self.key_blocked,
            "also_revoked": list(self.also_revoked),
            "tracking_code": self.tracking_code,
        }


def _state(row: CertificateRecord) -> RevokedCertificate:
    assert row.revoked_at is not None and row.revocation_reason is not None
    return RevokedCertificate(
        serial_hex=row.serial_hex,
        issuer_ca=row.issuer_ca,
        reason=RevocationReason[row.revocation_reason],
        revoked_at=row.revoked_at,
        invalidity_date=row.invalidity_date,
    )


def _event(
    row: CertificateRecord,
    actor: Actor,
    tracking_code: str,
    outcome: str,
    detail: dict[str, object],
) -> AuditEvent:
    """A ``certificate_revoked`` audit entry about ``row``: revoked, or already_revoked."""
    return AuditEvent(
        tracking_code=tracking_code,
        event_type=EVENT_REVOKED,
        actor_type=actor.actor_type,
        actor_id=actor.actor_id,
        legal_basis=actor.reason_text,
        operation="revoke",
        subject_hash=row.subject_hash,
        outcome=outcome,
        detail={"serial": row.serial_hex, "issuer_ca": row.issuer_ca, **detail},
    )


def _mark_revoked(
    changes: RevocationChanges,
    row: CertificateRecord,
    reason: RevocationReason,
    invalidity_date: datetime | None,
    now: datetime,
    actor: Actor,
    tracking_code: str,
    touched: set[tuple[str, int]],
    cause: str | None = None,
) -> None:
    previous = row.revocation_reason
    row.status = "revoked"
    if previous is None or previous == RevocationReason.certificateHold.name:
        row.revoked_at = now
    # else a final revocation upgraded to keyCompromise: BR 7.2.2 lets the CA
    # change the reasonCode, and the revocation date only to an earlier one.
    if invalidity_date is not None or previous is None:
        row.invalidity_date = invalidity_date
    row.revocation_reason = reason.name
    changes.save(row)
    serial = int(row.serial_hex, 16)
    touched.add(
        (row.issuer_key_id, crl_partition_for(serial, changes.partitions_of(row.issuer_key_id)))
    )
    detail: dict[str, object] = {
        "profile": row.profile,
        "reason": reason.name,
        "invalidity_date": invalidity_date.isoformat() if invalidity_date else None,
    }
    if previous:
        detail["replaced_reason"] = previous
    if cause:
        detail["cause"] = cause
    changes.audit(_event(row, actor, tracking_code, "revoked", detail))


def _block_key(
    changes: RevocationChanges,
    row: CertificateRecord,
    invalidity_date: datetime | None,
    now: datetime,
    actor: Actor,
    tracking_code: str,
    touched: set[tuple[str, int]],
) -> tuple[str, ...]:
    """Block the SPKI and revoke every other certificate that carries it."""
    # Already blocked (another report of the same key): the first block stands.
    changes.block_key(
        row.spki_sha256,
        f"keyCompromise reported with certificate {row.serial_hex}",
        row.serial_hex,
        now,
    )
    # Unrevoked, held, or revoked for another reason: each one's published
    # reason must say keyCompromise, as the blocked key does.
    siblings = changes.same_key_not_compromised(
        row, REVOCABLE_STATES, RevocationReason.keyCompromise.name
    )
    for sibling in siblings:
        _mark_revoked(
            changes,
            sibling,
            RevocationReason.keyCompromise,
            invalidity_date,
            now,
            actor,
            tracking_code,
            touched,
            cause=f"same key as {row.serial_hex}",
        )
    return tuple(sorted(s.serial_hex for s in siblings))


def revoke(
    db: Database,
    serial: int,
    reason: RevocationReason,
    actor: Actor,
    *,
    invalidity_date: datetime | None = None,
    now: datetime | None = None,
) -> RevocationOutcome:
    """Revoke the certificate with ``serial``; see the module docstring for the rules."""
    if reason is RevocationReason.removeFromCRL:
        raise RevocationRefused("removeFromCRL is not a reason to revoke")
    now = utc(now or datetime.now(UTC)).replace(microsecond=0)
    if invalidity_date is not None:
        invalidity_date = utc(invalidity_date).replace(microsecond=0)
        if invalidity_date > now:
            raise RevocationRefused(
                "invalidity_date is in the future; it is when the key was (suspected) compromised"
            )
    tracking_code = new_tracking_code()
    touched: set[tuple[str, int]] = set()
    with revocation(db) as changes:
        row = changes.lock(serial_hex(serial), blocks_key(reason))
        if row is None or row.status not in REVOCABLE_STATES:
            raise CertificateNotFound(f"no certificate with serial {serial_hex(serial)} was issued")
        already = row.status == "revoked"
        if already and not replaces(
            RevocationReason[row.revocation_reason or "unspecified"], reason
        ):
            changes.audit(
                _event(
                    row,
                    actor,
                    tracking_code,
                    "already_revoked",
                    {"requested_reason": reason.name, "kept_reason": row.revocation_reason},
                )
            )
            also: tuple[str, ...] = ()
            if blocks_key(reason):
                # The first reason stands for this certificate, but the report of a
                # compromised key is acted on: no certificate may keep using it.
                also = _block_key(changes, row, invalidity_date, now, actor, tracking_code, touched)
            changes.bump_revisions(touched)
            return RevocationOutcome(
                _state(row), True, tracking_code, key_blocked=blocks_key(reason), also_revoked=also
            )
        _mark_revoked(changes, row, reason, invalidity_date, now, actor, tracking_code, touched)
        also = ()
        if blocks_key(reason):
            also = _block_key(changes, row, invalidity_date, now, actor, tracking_code, touched)
        changes.bump_revisions(touched)
        changes.flush()
        return RevocationOutcome(
            _state(row), False, tracking_code, key_blocked=blocks_key(reason), also_revoked=also
        )


def issuers_touched(db: Database, serials: list[str]) -> set[str]:
    """The CA key ids whose CRLs the revocation of ``serials`` changed."""
    return issuer_key_ids(db, serials)
