"""What the certificates pages share: the app's PKI and status services, and small parsers.

The PKI is the app's own (:func:`idp.pki.service.get_pki`), the same object the
HTTP API issues with, so the console decides and signs exactly as
``POST /v1/certificates`` does. Each PKI is also remembered by its database
engine: an approved request is carried out by :mod:`idp.console.approvals`,
which hands the approval's kind only a database session.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import HTMLResponse

from idp.console.framework import render
from idp.http.revocation import StatusServices, get_status_services
from idp.pki.registration import Pki
from idp.pki.service import get_pki

PROFILE_STATUSES = ("pending", "issued", "revoked", "failed")
# Persian and Arabic-Indic digits, as Persian keyboards type them.
DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


def pki_of(request: Request) -> Pki:
    return get_pki(request)


async def status_of(request: Request) -> StatusServices:
    pki_of(request)
    return await get_status_services(request)


def ascii_digits(value: str) -> str:
    return value.translate(DIGITS)


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def message_page(
    request: Request,
    message_key: str,
    status_code: int,
    *,
    link_path: str = "/console/certs",
    **values: str,
) -> HTMLResponse:
    return render(
        request,
        "message.html",
        {
            "message_key": message_key,
            "message_values": values,
            "is_error": status_code >= 400,
            "link_path": link_path,
            "link_key": "console.certs",
        },
        status_code=status_code,
        title_key="console.error.title" if status_code >= 400 else "console.certs",
    )
