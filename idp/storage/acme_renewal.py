"""The certificate a certID (RFC 9773 §4.1) names: its serial under one issuer key.

A read on :meth:`Database.read`: on SQLite it does not take the write lock, so
clients polling renewal information never queue behind issuance.
"""

from __future__ import annotations

from sqlmodel import select

from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database


def certificate_by_issuer_serial(
    db: Database, issuer_key_id: str, serial_hex: str
) -> CertificateRecord | None:
    """The row of serial ``serial_hex`` signed by the CA key ``issuer_key_id`` (hex AKI)."""
    with db.read() as session:
        return session.exec(
            select(CertificateRecord).where(
                CertificateRecord.serial_hex == serial_hex,
                CertificateRecord.issuer_key_id == issuer_key_id,
            )
        ).first()
