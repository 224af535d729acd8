"""CRL and OCSP health and the CA hierarchy (CA operators only): what is about to lapse.

For each CA key generation: its certificate's expiry, the last full CRL of each
partition (number, thisUpdate, nextUpdate; past nextUpdate is flagged) and the
current delegated OCSP responder certificate. Anything that ends within
:data:`WARNING_DAYS` is marked, so a rollover or a responder renewal is started
in time. Read only: it signs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from ca import names
from idp.console.certificates_common import pki_of, when
from idp.console.framework import ConsoleUser, render, require_role
from idp.console.roles import Role
from idp.storage.certificate_store import authority_rows
from idp.storage.certificates import CertificateAuthority
from idp.storage.crl_store import latest_crl, responders_valid_after
from idp.storage.engine import Database

router = APIRouter(include_in_schema=False)
WARNING_DAYS = 90


@dataclass(frozen=True)
class Expiry:
    at: str
    days: int
    warn: bool
    expired: bool


def expiry(not_after: datetime, now: datetime) -> Expiry:
    left = not_after - now
    days = left.days
    return Expiry(when(not_after), days, days < WARNING_DAYS, left.total_seconds() <= 0)


def _label(row: CertificateAuthority) -> str:
    return row.name if row.generation <= 1 else f"{row.name}-g{row.generation}"


def _authority(
    row: CertificateAuthority, parents: dict[str, str], now: datetime
) -> dict[str, object]:
    certificate = x509.load_der_x509_certificate(row.certificate) if row.certificate else None
    return {
        "label": _label(row),
        "name": row.name,
        "generation": row.generation,
        "key_id": row.key_id[:16],
        "parent": parents.get(row.parent_key_id or "", ""),
        "active": row.active,
        "subject": certificate.subject.rfc4514_string() if certificate else "",
        "expiry": expiry(certificate.not_valid_after_utc, now) if certificate else None,
    }


def _crls(db: Database, row: CertificateAuthority, now: datetime) -> list[dict[str, object]]:
    found = []
    for partition in range(max(row.crl_partitions, 1)):
        record = latest_crl(db, row.key_id, partition, False)
        found.append(
            {
                "label": _label(row),
                "partition": partition,
                "crl_number": record.crl_number if record else None,
                "this_update": when(record.this_update) if record else "",
                "next_update": when(record.next_update) if record else "",
                "entries": record.entries if record else 0,
                "overdue": bool(record and record.next_update <= now),
            }
        )
    return found


def _responder(db: Database, row: CertificateAuthority, now: datetime) -> dict[str, object]:
    current = responders_valid_after(db, row.key_id, now)
    first = current[0] if current else None
    return {
        "label": _label(row),
        "serial": first.serial_hex if first else "",
        "expiry": expiry(first.not_after, now) if first else None,
    }


def health(db: Database, rows: list[CertificateAuthority]) -> dict[str, object]:
    now = datetime.now(UTC)
    parents = {row.key_id: _label(row) for row in rows}
    certified = [row for row in rows if row.certificate is not None]
    issuing = [row for row in certified if row.name != names.ROOT and row.active]
    return {
        "authorities": [_authority(row, parents, now) for row in rows],
        "crls": [crl for row in certified for crl in _crls(db, row, now)],
        "responders": [_responder(db, row, now) for row in issuing],
        "warning_days": WARNING_DAYS,
    }


def _page(request: Request) -> HTMLResponse:
    pki = pki_of(request)
    context = health(pki.db, authority_rows(pki.db))
    return render(request, "certificates/health.html", context, title_key="console.certs.health")


@router.get("/certs/health")
async def health_page(
    request: Request, _user: ConsoleUser = Depends(require_role(Role.CA_OPERATOR))
) -> HTMLResponse:
    return await run_in_threadpool(_page, request)
