"""A certificate search as the console carries it: filters from the query string, keyset pages.

Newest first by ``(created_at, serial_hex)``; the next page starts after the
last row shown (``after=<created_at>~<serial>``), so a page costs the same at
any depth and a certificate issued meanwhile never shifts a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from ca.serials import parse_serial, serial_hex
from idp.console.certificates_common import PROFILE_STATUSES, ascii_digits
from idp.storage.certificates import CertificateRecord

PAGE_SIZE = 50
MAX_SUBJECT = 200


class BadSearch(ValueError):
    """A filter or page link this page cannot use: the message key says which."""


@dataclass(frozen=True)
class Search:
    subject: str = ""
    serial: str = ""  # normalised hex, as stored
    profile: str = ""
    status: str = ""
    after: tuple[datetime, str] | None = None

    def query(self) -> dict[str, str]:
        """The filters as query parameters (without the page)."""
        return {
            "subject": self.subject,
            "serial": self.serial,
            "profile": self.profile,
            "status": self.status,
        }


def parse(params: Mapping[str, str], profiles: set[str]) -> Search:
    subject = params.get("subject", "").strip()[:MAX_SUBJECT]
    serial = ascii_digits(params.get("serial", "").strip()).replace(":", "")
    if serial:
        number = parse_serial(serial)
        if number is None:
            raise BadSearch("console.certs.bad_serial")
        serial = serial_hex(number)
    profile = params.get("profile", "")
    status = params.get("status", "")
    after = _cursor(params.get("after", ""))
    return Search(
        subject=subject,
        serial=serial,
        profile=profile if profile in profiles else "",
        status=status if status in PROFILE_STATUSES else "",
        after=after,
    )


def _cursor(value: str) -> tuple[datetime, str] | None:
    if not value:
        return None
    moment, _, serial = value.partition("~")
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        raise BadSearch("console.certs.bad_page") from None
    number = parse_serial(serial)
    if parsed.tzinfo is None or number is None:
        raise BadSearch("console.certs.bad_page")
    return parsed, serial_hex(number)


def cursor_of(row: CertificateRecord) -> str:
    return f"{row.created_at.isoformat()}~{row.serial_hex}"


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def run(db: Session, search: Search) -> tuple[list[CertificateRecord], str | None]:
    """One page of matches, and the ``after`` value of the next page (None: the last page)."""
    query = select(CertificateRecord)
    if search.serial:
        query = query.where(CertificateRecord.serial_hex == search.serial)
    if search.subject:
        query = query.where(
            func.lower(CertificateRecord.subject).like(_like(search.subject), escape="\\")
        )
    if search.profile:
        query = query.where(CertificateRecord.profile == search.profile)
    if search.status:
        query = query.where(CertificateRecord.status == search.status)
    if search.after is not None:
        moment, serial = search.after
        created = col(CertificateRecord.created_at)
        query = query.where(
            or_(
                created < moment,
                and_(created == moment, col(CertificateRecord.serial_hex) < serial),
            )
        )
    query = query.order_by(
        col(CertificateRecord.created_at).desc(), col(CertificateRecord.serial_hex).desc()
    ).limit(PAGE_SIZE + 1)
    rows = list(db.exec(query).all())
    if len(rows) > PAGE_SIZE:
        return rows[:PAGE_SIZE], cursor_of(rows[PAGE_SIZE - 1])
    return rows, None
