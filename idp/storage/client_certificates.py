"""The reads mutual-TLS client authentication makes (RFC 8705 §2.1): a CA's certified
generations and one certificate's status, on the caller's session.

On the caller's session, not a new one: /token and introspection authenticate
inside their write transaction, and on SQLite a second writing session would
wait for the lock that transaction holds.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from idp.storage.certificates import CertificateAuthority, CertificateRecord


def certified_generations(session: Session, name: str) -> list[tuple[str, bytes]]:
    """(key id, DER certificate) of every generation of CA ``name`` that has its certificate."""
    rows = session.exec(
        select(CertificateAuthority.key_id, CertificateAuthority.certificate).where(
            CertificateAuthority.name == name,
            col(CertificateAuthority.certificate).is_not(None),
        )
    ).all()
    return [(key_id, der) for key_id, der in rows if der is not None]


def certificate_status(session: Session, serial_hex: str, issuer_key_id: str) -> str | None:
    """pending | issued | revoked | failed; None when the store never recorded it."""
    return session.exec(
        select(CertificateRecord.status).where(
            CertificateRecord.serial_hex == serial_hex,
            CertificateRecord.issuer_key_id == issuer_key_id,
        )
    ).first()
