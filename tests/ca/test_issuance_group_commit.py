"""Issuance through the server's group committer: concurrent requests share the intent
and result commits, and each keeps every guarantee of the one-transaction-each path.

Real threads, a real :class:`GroupCommitter`, SQLite and PostgreSQL (``db``).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from pki_helpers import PEPPER, make_csr
from sqlalchemy import func
from sqlmodel import select

from ca.issuance import spki_sha256
from idp.pki.hierarchy import Hierarchy
from idp.pki.refusals import CertificateRefused
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.certificates import BlockedKey, CertificateRecord
from idp.storage.engine import Database
from idp.storage.group_commit import GroupCommitter
from idp.storage.models import AuditEntry
from verifiers.registry.base import Registries

pytestmark = pytest.mark.parametrize("ca_backend", ["file"], indirect=True)
THREADS = 8
PER_THREAD = 15


@pytest.fixture
def committer(db: Database) -> Iterator[GroupCommitter]:
    committer = GroupCommitter(db)
    yield committer
    committer.close()


@pytest.fixture
def grouped_pki(
    db: Database, hierarchy: Hierarchy, registry: Registries, committer: GroupCommitter
) -> Pki:
    return Pki.create(db, hierarchy, registry, PEPPER, committer)


def request(csr: bytes, national_code: str) -> Request:
    return Request(
        csr=csr,
        profile="person-authentication",
        subject=SubjectReference(national_code=national_code),
        requested_by="agency-7",
    )


def test_concurrent_requests_are_each_issued_recorded_and_audited(
    grouped_pki: Pki, living_person: str
) -> None:
    csrs = [make_csr()[0] for _ in range(THREADS * PER_THREAD)]

    def issue_share(share: list[bytes]) -> list[str]:
        return [
            grouped_pki.request_certificate(request(csr, living_person), lint=False).serial_hex
            for csr in share
        ]

    with ThreadPoolExecutor(THREADS) as pool:
        shares = [csrs[i::THREADS] for i in range(THREADS)]
        serials = [s for result in pool.map(issue_share, shares) for s in result]

    assert len(set(serials)) == len(csrs)
    with grouped_pki.db.session() as session:
        rows = session.exec(select(CertificateRecord)).all()
        audit = session.exec(
            select(AuditEntry).where(AuditEntry.event_type == "certificate_issued")
        ).all()
    assert {r.serial_hex for r in rows} == set(serials)
    assert {r.status for r in rows} == {"issued"} and all(r.der for r in rows)
    assert sorted(a.detail["serial"] for a in audit) == sorted(serials)


def test_a_blocked_key_is_refused_without_failing_its_neighbours(
    grouped_pki: Pki, living_person: str
) -> None:
    blocked_csr, blocked_key = make_csr()
    with grouped_pki.db.session() as session:
        session.add(
            BlockedKey(spki_sha256=spki_sha256(blocked_key.public_key()), reason="keyCompromise")  # type: ignore[attr-defined]
        )
    csrs = [make_csr()[0] for _ in range(2 * THREADS)]

    def attempt(csr: bytes) -> str:
        try:
            return grouped_pki.request_certificate(request(csr, living_person)).serial_hex
        except CertificateRefused as refusal:
            return refusal.slug

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(attempt, [blocked_csr, *csrs, blocked_csr]))

    assert outcomes[0] == outcomes[-1] == "csr-key-blocked"
    with grouped_pki.db.session() as session:
        count = session.exec(select(func.count()).select_from(CertificateRecord)).one()
        blocked_rows = session.exec(
            select(CertificateRecord).where(
                CertificateRecord.spki_sha256 == spki_sha256(blocked_key.public_key())  # type: ignore[attr-defined]
            )
        ).all()
    assert count == len(csrs) and blocked_rows == []
    assert not any(outcome.startswith("csr-") for outcome in outcomes[1:-1])


def test_the_intent_is_committed_before_the_signature(
    grouped_pki: Pki, living_person: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the CA key signs, another connection already sees the pending row."""
    seen: list[tuple[str, str | None]] = []
    issuing_ca = grouped_pki.hierarchy.issuing_ca("persons")
    sign = type(issuing_ca).sign_tbs

    def sign_and_look(self: object, tbs: bytes) -> bytes:
        with grouped_pki.db.read() as session:
            for row in session.exec(select(CertificateRecord)).all():
                seen.append((row.status, "der" if row.der is not None else None))
        return sign(self, tbs)  # type: ignore[arg-type]

    monkeypatch.setattr(type(issuing_ca), "sign_tbs", sign_and_look)
    csr, _ = make_csr()
    grouped_pki.request_certificate(request(csr, living_person), lint=False)
    assert seen == [("pending", None)]
