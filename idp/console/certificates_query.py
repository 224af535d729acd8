"""A certificate search as the console carries it: filters from the query string, keyset pages.

The next page starts after the last row shown (``after=<created_at>~<serial>``);
the query itself is :func:`idp.storage.certificate_search.search_page`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from ca.serials import parse_serial, serial_hex
from idp.console.certificates_common import PROFILE_STATUSES, ascii_digits
from idp.storage.certificate_search import search_page
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


def run(db: Session, search: Search) -> tuple[list[CertificateRecord], str | None]:
    """One page of matches, and the ``after`` value of the next page (None: the last page)."""
    rows = search_page(
        db,
        serial=search.serial,
        subject=search.subject,
        profile=search.profile,
        status=search.status,
        after=search.after,
        limit=PAGE_SIZE + 1,
    )
    if len(rows) > PAGE_SIZE:
        return rows[:PAGE_SIZE], cursor_of(rows[PAGE_SIZE - 1])
    return rows, None
