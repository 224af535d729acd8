"""Issuing and revoking against real databases; status entries unique across processes."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

from attest_helpers import CITIZEN, SUBSTANTIAL
from sqlalchemy import select
from sqlmodel import col

from idp.attestations import sharing
from idp.attestations.claims import FactSelection
from idp.attestations.issuer import AttestationRequest, issue, revoke
from idp.audit.log import subject_hash
from idp.storage.attestations import (
    Attestation,
    AttestationShare,
    allocate_status_index,
    revoked_indexes,
)
from idp.storage.engine import Database
from idp.storage.models import AuditEntry

PEPPER = b"p" * 32


def _allocate_many(url: str, count: int, size: int, queue) -> None:
    database = Database(url)
    claimed = []
    for _ in range(count):
        with database.session() as session:
            slot = allocate_status_index(session, size=size)
            claimed.append((slot.list_id, slot.position))
    database.dispose()
    queue.put(claimed)


def test_status_entries_are_unique_across_processes(database_url):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_allocate_many, args=(database_url, 40, 16, queue)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    claimed = [entry for _ in workers for entry in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    assert len(claimed) == 160
    assert len(set(claimed)) == 160
    # Lists of 16 fill up one after another: ten lists, each index 0..15 used once.
    assert {list_id for list_id, _ in claimed} == set(range(1, 11))
    assert all(0 <= index < 16 for _, index in claimed)


def test_issue_records_row_and_audit_in_one_transaction(db, attestation_issuer):
    request = AttestationRequest("bank account", FactSelection.of(["alive"], age_over=[18]))
    with db.session() as session:
        issued = issue(
            session, attestation_issuer, CITIZEN, request, level=SUBSTANTIAL, pepper=PEPPER
        )
    with db.session() as session:
        row = session.get(Attestation, issued.id)
        assert row is not None
        assert row.holder_subject_hash == subject_hash(PEPPER, CITIZEN.national_code)
        assert row.facts == ["alive", "age_over_18"]
        assert row.expires_at - row.issued_at == timedelta(days=30)
        audit = session.execute(
            select(AuditEntry).where(col(AuditEntry.tracking_code) == issued.tracking_code)
        ).scalar_one()
        assert audit.event_type == "attestation.issued"
        assert CITIZEN.national_code not in str(audit.detail)


def test_failed_issue_leaves_nothing(db, attestation_issuer):
    request = AttestationRequest("x", FactSelection.of(["alive"]))
    try:
        with db.session() as session:
            issue(session, attestation_issuer, CITIZEN, request, level=SUBSTANTIAL, pepper=PEPPER)
            raise RuntimeError("the response could not be sent")
    except RuntimeError:
        pass
    with db.session() as session:
        assert session.execute(select(Attestation)).first() is None
        assert session.execute(select(AuditEntry)).first() is None


def test_only_the_holder_revokes_and_only_once(db, attestation_issuer):
    request = AttestationRequest("x", FactSelection.of(["alive"]))
    with db.session() as session:
        issued = issue(
            session, attestation_issuer, CITIZEN, request, level=SUBSTANTIAL, pepper=PEPPER
        )
    with db.session() as session:
        assert (
            revoke(
                session,
                issued.id,
                actor_type="citizen",
                actor_id=None,
                reason="lost",
                holder_subject_hash="someone-else",
            )
            is None
        )
    holder = subject_hash(PEPPER, CITIZEN.national_code)
    for _ in range(2):
        with db.session() as session:
            row = revoke(
                session,
                issued.id,
                actor_type="citizen",
                actor_id=None,
                reason="lost",
                holder_subject_hash=holder,
            )
            assert row is not None and row.revoked_at is not None
    with db.session() as session:
        assert revoked_indexes(session, issued.status_list_id) == [issued.status_index]
        revocations = session.execute(
            select(AuditEntry).where(col(AuditEntry.event_type) == "attestation.revoked")
        ).all()
        assert len(revocations) == 1


def test_shares_open_with_their_code_only_and_expired_ones_are_pruned(db, attestation_issuer):
    request = AttestationRequest("x", FactSelection.of(["alive"]))
    with db.session() as session:
        issued = issue(
            session, attestation_issuer, CITIZEN, request, level=SUBSTANTIAL, pepper=PEPPER
        )
        fresh = sharing.share(session, issued.id, issued.sd_jwt, issued.expires_at)
        stale = sharing.share(session, issued.id, issued.jwt, issued.issued_at - timedelta(days=1))
    with db.session() as session:
        assert sharing.open_share(session, fresh) == issued.sd_jwt
        assert sharing.open_share(session, stale) is None  # expired
        wrong = fresh[:-1] + ("0" if fresh[-1] != "0" else "1")
        assert sharing.open_share(session, wrong) is None
        sealed = session.get(AttestationShare, sharing.code_digest(fresh)).sealed
        assert b"alive" not in sealed and issued.sd_jwt.encode()[:40] not in sealed
    with db.session() as session:
        assert sharing.prune_shares(session) == 1
    with db.session() as session:
        assert sharing.open_share(session, fresh) == issued.sd_jwt


def test_prune_command_reports_what_it_removed(db, database_url, attestation_issuer, monkeypatch):
    from typer.testing import CliRunner

    from idp.cli.attest import attest_app

    request = AttestationRequest("x", FactSelection.of(["alive"]))
    with db.session() as session:
        issued = issue(
            session, attestation_issuer, CITIZEN, request, level=SUBSTANTIAL, pepper=PEPPER
        )
        sharing.share(session, issued.id, issued.jwt, issued.issued_at - timedelta(days=1))
    monkeypatch.setenv("HOVIYAT_DATABASE_URL", database_url)
    result = CliRunner().invoke(attest_app, ["prune", "--json"])
    assert result.exit_code == 0, result.output
    assert '"shares_removed": 1' in result.output
