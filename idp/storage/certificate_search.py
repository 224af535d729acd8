"""Certificates found by the console's filters: newest first, keyset pages.

Ordered by ``(created_at, serial_hex)`` descending; a page starts after the last
row of the one before, so a page costs the same at any depth and a certificate
issued meanwhile never shifts one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from idp.storage.certificates import CertificateRecord


def _like(text: str) -> str:
    """``text`` anywhere, case-insensitively, with ``%`` and ``_`` matched as themselves."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_page(
    db: Session,
    *,
    serial: str = "",
    subject: str = "",
    profile: str = "",
    status: str = "",
    after: tuple[datetime, str] | None = None,
    limit: int,
) -> list[CertificateRecord]:
    """Up to ``limit`` matching certificates, newest first, after the ``(created_at,
    serial_hex)`` cursor ``after`` when one is given; empty filters match everything."""
    query = select(CertificateRecord)
    if serial:
        query = query.where(CertificateRecord.serial_hex == serial)
    if subject:
        query = query.where(func.lower(CertificateRecord.subject).like(_like(subject), escape="\\"))
    if profile:
        query = query.where(CertificateRecord.profile == profile)
    if status:
        query = query.where(CertificateRecord.status == status)
    if after is not None:
        moment, last_serial = after
        created = col(CertificateRecord.created_at)
        query = query.where(
            or_(
                created < moment,
                and_(created == moment, col(CertificateRecord.serial_hex) < last_serial),
            )
        )
    query = query.order_by(
        col(CertificateRecord.created_at).desc(), col(CertificateRecord.serial_hex).desc()
    ).limit(limit)
    return list(db.exec(query).all())
