"""The audit log's signing keys and the checkpoints they signed.

Tables in :mod:`idp.storage.audit_log`; the key's sealing is
:mod:`idp.secrets_at_rest`'s and the note format :mod:`idp.audit.signed_note`'s.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from idp.storage.audit_log import AuditCheckpoint, AuditSigningKey


def active_key(session: Session) -> AuditSigningKey | None:
    return session.exec(select(AuditSigningKey).where(AuditSigningKey.state == "active")).first()


def all_keys(session: Session) -> list[AuditSigningKey]:
    """Every key that has signed checkpoints, oldest first."""
    return list(session.exec(select(AuditSigningKey).order_by(col(AuditSigningKey.created_at))))


def add_key(session: Session, row: AuditSigningKey) -> AuditSigningKey:
    """Insert ``row`` now (flushed), so a racing creator meets its primary key."""
    session.add(row)
    session.flush()
    return row


def set_certificate_chain(session: Session, key_id: str, chain_pem: str) -> None:
    row = session.get(AuditSigningKey, key_id)
    if row is None:
        raise LookupError(f"no audit signing key {key_id}")
    row.certificate_chain_pem = chain_pem
    session.add(row)


def add_checkpoint(session: Session, row: AuditCheckpoint) -> AuditCheckpoint:
    session.add(row)
    return row


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc()).limit(1)
    return session.exec(query).first()


def all_checkpoints(session: Session) -> list[AuditCheckpoint]:
    """Every checkpoint, oldest first."""
    return list(session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.id))))
