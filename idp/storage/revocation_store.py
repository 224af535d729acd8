"""Revocation's transaction: locked certificate rows, blocked keys, CRL revisions, audit.

``idp/pki/revocation.py`` decides (which reason stands, which rows change);
this module is how those decisions reach the database, all in the one
transaction :func:`revocation` opens, so a revocation, its key block, its CRL
revision bumps and its audit entries commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from idp.audit.log import AuditEvent, append
from idp.storage.certificates import BlockedKey, CertificateAuthority, CertificateRecord
from idp.storage.crls import CRLRevision
from idp.storage.engine import Database


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (both PostgreSQL and SQLite do)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


class RevocationChanges:
    """The writes and locked reads of one revocation, on one session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def lock(self, serial_hex: str, whole_key: bool) -> CertificateRecord | None:
        """Lock the certificate's row (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises).

        With ``whole_key``, every row with the same key is locked, in serial order,
        so two reports about one key queue instead of deadlocking.
        """
        row = self.session.exec(
            select(CertificateRecord).where(CertificateRecord.serial_hex == serial_hex)
        ).first()
        if row is None:
            return None
        query = select(CertificateRecord).execution_options(populate_existing=True)
        if whole_key:
            query = query.where(CertificateRecord.spki_sha256 == row.spki_sha256).order_by(
                col(CertificateRecord.serial_hex)
            )
        else:
            query = query.where(CertificateRecord.serial_hex == serial_hex)
        self.session.exec(query.with_for_update()).all()
        return row

    def same_key_not_compromised(
        self, row: CertificateRecord, states: tuple[str, ...], compromised: str
    ) -> list[CertificateRecord]:
        """The other rows in ``states`` with ``row``'s key whose reason is not ``compromised``."""
        return list(
            self.session.exec(
                select(CertificateRecord)
                .where(
                    CertificateRecord.spki_sha256 == row.spki_sha256,
                    CertificateRecord.serial_hex != row.serial_hex,
                    col(CertificateRecord.status).in_(states),
                    or_(
                        col(CertificateRecord.revocation_reason).is_(None),
                        col(CertificateRecord.revocation_reason) != compromised,
                    ),
                )
                .with_for_update()
            ).all()
        )

    def block_key(self, spki_sha256: str, reason: str, serial_hex: str, now: datetime) -> None:
        """Refuse the key from now on; a key already blocked keeps its first block."""
        statement = _insert(self.session)(BlockedKey).values(
            spki_sha256=spki_sha256, reason=reason, serial_hex=serial_hex, blocked_at=now
        )
        self.session.execute(statement.on_conflict_do_nothing(index_elements=["spki_sha256"]))

    def save(self, row: CertificateRecord) -> None:
        self.session.add(row)

    def partitions_of(self, issuer_key_id: str) -> int:
        authority = self.session.get(CertificateAuthority, issuer_key_id)
        return authority.crl_partitions if authority is not None else 1

    def bump_revisions(self, partitions: set[tuple[str, int]]) -> None:
        """revision += 1 for each (CA key, partition) once, atomically across processes
        (an upsert), in a fixed order (no lock-order deadlock)."""
        for issuer_key_id, partition in sorted(partitions):
            statement = _insert(self.session)(CRLRevision).values(
                issuer_key_id=issuer_key_id, partition=partition, revision=1
            )
            statement = statement.on_conflict_do_update(
                index_elements=["issuer_key_id", "partition"],
                set_={"revision": CRLRevision.__table__.c.revision + 1},  # type: ignore[attr-defined]
            )
            self.session.execute(statement)

    def audit(self, event: AuditEvent) -> None:
        append(self.session, event)

    def flush(self) -> None:
        self.session.flush()


@contextmanager
def revocation(db: Database) -> Iterator[RevocationChanges]:
    """One revocation's transaction: commits on success, rolls back on any error."""
    with db.session() as session:
        yield RevocationChanges(session)


def issuer_key_ids(db: Database, serials: list[str]) -> set[str]:
    """The CA key ids that issued these serials."""
    with db.session() as session:
        rows = session.exec(
            select(CertificateRecord.issuer_key_id).where(
                col(CertificateRecord.serial_hex).in_(serials)
            )
        ).all()
    return set(rows)
