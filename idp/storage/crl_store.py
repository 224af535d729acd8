"""Certificate status records: published CRLs, partition revisions, OCSP responder certificates.

Typed reads and writes for ``idp/pki/crl_publisher.py`` and
``idp/pki/ocsp_responder.py``; each opens its own transaction, except where
reads must agree with each other (:func:`crl_state`, :func:`publication_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ca.crl import RevokedEntry
from ca.revocation import RevocationReason
from idp.audit.log import AuditEvent, append
from idp.storage.certificates import CertificateRecord
from idp.storage.crls import CRLRecord, CRLRevision, OCSPResponderRecord
from idp.storage.engine import Database


class CRLNumberTaken(Exception):
    """Another process stored a CRL with this number first (the unique constraint)."""


def _revision(session: Session, key_id: str, partition: int) -> int:
    row = session.get(CRLRevision, (key_id, partition))
    return row.revision if row is not None else 0


def _latest(
    session: Session, key_id: str, partition: int, delta: bool, base: int | None = None
) -> CRLRecord | None:
    query = select(CRLRecord).where(
        CRLRecord.issuer_key_id == key_id,
        CRLRecord.partition == partition,
        CRLRecord.is_delta == delta,
    )
    if base is not None:
        query = query.where(CRLRecord.base_crl_number == base)
    return session.exec(query.order_by(col(CRLRecord.crl_number).desc()).limit(1)).first()


def _highest(session: Session, key_id: str, partition: int) -> int | None:
    return session.exec(
        select(func.max(CRLRecord.crl_number)).where(
            CRLRecord.issuer_key_id == key_id, CRLRecord.partition == partition
        )
    ).one()


def latest_crl(db: Database, key_id: str, partition: int, delta: bool) -> CRLRecord | None:
    """The highest-numbered full (or delta) CRL of a partition."""
    with db.session() as session:
        return _latest(session, key_id, partition, delta)


def highest_crl_number(db: Database, key_id: str, partition: int) -> int | None:
    """The highest CRL number, full or delta, of a partition (they share one sequence)."""
    with db.session() as session:
        return _highest(session, key_id, partition)


@dataclass(frozen=True)
class CRLState:
    """What serving a CRL needs to know, read in one transaction."""

    revision: int
    full: CRLRecord | None
    delta: CRLRecord | None  # on top of ``full``; only when asked for


def crl_state(db: Database, key_id: str, partition: int, *, with_delta: bool) -> CRLState:
    with db.session() as session:
        revision = _revision(session, key_id, partition)
        full = _latest(session, key_id, partition, delta=False)
        delta = (
            _latest(session, key_id, partition, True, base=full.crl_number)
            if with_delta and full is not None
            else None
        )
    return CRLState(revision, full, delta)


def _revoked_entries(
    session: Session,
    key_id: str,
    partition: int,
    partitions: int,
    keep_after: datetime,
    since: datetime | None,
) -> list[RevokedEntry]:
    query = select(
        CertificateRecord.serial_hex,
        CertificateRecord.revoked_at,
        CertificateRecord.revocation_reason,
        CertificateRecord.invalidity_date,
    ).where(
        CertificateRecord.issuer_key_id == key_id,
        CertificateRecord.status == "revoked",
        col(CertificateRecord.not_after) > keep_after,
    )
    if since is not None:
        query = query.where(col(CertificateRecord.revoked_at) >= since)
    reasons = RevocationReason.__members__
    entries = []
    for serial_text, revoked_at, reason, invalidity in session.exec(query):
        serial = int(serial_text, 16)
        if serial % partitions != partition:
            continue
        assert revoked_at is not None  # status "revoked" always has a time
        entries.append(
            RevokedEntry(
                serial,
                revoked_at,
                reasons[reason] if reason else RevocationReason.unspecified,
                invalidity,
            )
        )
    entries.sort(key=lambda entry: entry.serial)
    return entries


@dataclass(frozen=True)
class PublicationInputs:
    """Everything a new CRL is built from, read in one transaction."""

    revision: int
    base: CRLRecord | None  # the full CRL a delta builds on
    entries: list[RevokedEntry]
    highest: int | None  # the highest CRL number so far


def publication_inputs(
    db: Database,
    key_id: str,
    partition: int,
    partitions: int,
    *,
    delta: bool,
    keep_after: datetime,
    overlap: timedelta,
) -> PublicationInputs:
    """The partition's revision, base (for a delta), entries and highest number.

    Entries are those of certificates expiring after ``keep_after``; a delta's
    are those revoked since ``overlap`` before its base was built. With no base,
    a delta gets no entries (the caller refuses it).
    """
    with db.session() as session:
        # Revision first, then entries: the entries include every revocation counted.
        revision = _revision(session, key_id, partition)
        base = _latest(session, key_id, partition, delta=False) if delta else None
        if delta and base is None:
            return PublicationInputs(revision, None, [], None)
        since = base.this_update - overlap if base is not None else None
        entries = _revoked_entries(session, key_id, partition, partitions, keep_after, since)
        highest = _highest(session, key_id, partition)
    return PublicationInputs(revision, base, entries, highest)


def store_crl(
    db: Database, record: CRLRecord, event: AuditEvent, *, stamp_revision: bool = False
) -> None:
    """Store a signed CRL with its audit entry; :class:`CRLNumberTaken` if its number is.

    ``stamp_revision`` sets the record's revision to the partition's current one,
    in the same transaction (a CRL signed elsewhere reflects every revocation here).
    """
    try:
        with db.session() as session:
            if stamp_revision:
                record.revision = _revision(session, record.issuer_key_id, record.partition)
            session.add(record)
            append(session, event)
    except IntegrityError as exc:
        raise CRLNumberTaken(str(exc.orig)) from exc


# --- OCSP responder certificates -------------------------------------------------------


def responders_valid_after(
    db: Database, issuer_key_id: str, moment: datetime
) -> list[OCSPResponderRecord]:
    """The CA generation's responder certificates that live past ``moment``, longest first."""
    with db.session() as session:
        return list(
            session.exec(
                select(OCSPResponderRecord)
                .where(
                    OCSPResponderRecord.issuer_key_id == issuer_key_id,
                    col(OCSPResponderRecord.not_after) > moment,
                )
                .order_by(col(OCSPResponderRecord.not_after).desc())
            ).all()
        )


def add_responder(db: Database, record: OCSPResponderRecord) -> None:
    with db.session() as session:
        session.add(record)
