"""Revocation (idp/pki/revocation.py) and CRL publication on real databases, checked by openssl."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlmodel import select
from status_helpers import ca_hierarchy, issue_leaf, lint, pem, run

from ca.revocation import InvalidReason, RevocationReason, parse_reason
from idp.pki.crl_publisher import CRLPublisher, UnknownCRL
from idp.pki.revocation import (
    Actor,
    CertificateNotFound,
    RevocationRefused,
    revoke,
)
from idp.storage.certificates import BlockedKey, CertificateRecord
from idp.storage.crls import CRLRecord
from idp.storage.models import AuditEntry

OPERATOR = Actor("operator", "test-operator", "subscriber reported a lost token")


@pytest.fixture
def hierarchy(db, tmp_path: Path):
    return ca_hierarchy(db, tmp_path)


def _audit(db, event_type: str) -> list[AuditEntry]:
    with db.session() as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.event_type == event_type)))


def test_parse_reason_accepts_rfc_names_and_refuses_others():
    assert parse_reason("keyCompromise") is RevocationReason.keyCompromise
    assert parse_reason("key_compromise") is RevocationReason.keyCompromise
    assert parse_reason("CESSATIONOFOPERATION") is RevocationReason.cessationOfOperation
    with pytest.raises(InvalidReason, match="removeFromCRL"):
        parse_reason("removeFromCRL")
    with pytest.raises(InvalidReason, match="use one of"):
        parse_reason("lostPhone")


def test_revoke_records_reason_dates_and_audit_in_one_go(db, hierarchy):
    ca = hierarchy.issuing_ca("infrastructure")
    certificate = issue_leaf(db, ca)
    invalid_since = datetime.now(UTC) - timedelta(days=2)
    outcome = revoke(
        db,
        certificate.serial_number,
        RevocationReason.affiliationChanged,
        OPERATOR,
        invalidity_date=invalid_since,
    )
    assert not outcome.already_revoked
    assert outcome.certificate.reason is RevocationReason.affiliationChanged
    assert outcome.certificate.invalidity_date == invalid_since.replace(microsecond=0)
    with db.session() as session:
        row = session.get(CertificateRecord, outcome.certificate.serial_hex)
        assert row is not None
        assert row.status == "revoked"
        assert row.revocation_reason == "affiliationChanged"
    entries = _audit(db, "certificate_revoked")
    assert [e.tracking_code for e in entries] == [outcome.tracking_code]
    assert entries[0].actor_id == "test-operator"
    assert entries[0].legal_basis == "subscriber reported a lost token"
    assert entries[0].detail["reason"] == "affiliationChanged"


def test_revoking_twice_keeps_the_first_reason(db, hierarchy):
    certificate = issue_leaf(db, hierarchy.issuing_ca("infrastructure"))
    first = revoke(db, certificate.serial_number, RevocationReason.superseded, OPERATOR)
    second = revoke(db, certificate.serial_number, RevocationReason.cessationOfOperation, OPERATOR)
    assert second.already_revoked
    assert second.certificate.reason is RevocationReason.superseded
    assert second.certificate.revoked_at == first.certificate.revoked_at
    outcomes = [e.outcome for e in _audit(db, "certificate_revoked")]
    assert sorted(outcomes) == ["already_revoked", "revoked"]


def test_a_hold_may_become_a_final_revocation(db, hierarchy):
    certificate = issue_leaf(db, hierarchy.issuing_ca("infrastructure"))
    revoke(db, certificate.serial_number, RevocationReason.certificateHold, OPERATOR)
    final = revoke(db, certificate.serial_number, RevocationReason.privilegeWithdrawn, OPERATOR)
    assert not final.already_revoked
    assert final.certificate.reason is RevocationReason.privilegeWithdrawn
    again = revoke(db, certificate.serial_number, RevocationReason.certificateHold, OPERATOR)
    assert again.already_revoked
    assert again.certificate.reason is RevocationReason.privilegeWithdrawn


def test_unknown_serial_is_not_found_and_writes_nothing(db, hierarchy):
    with pytest.raises(CertificateNotFound):
        revoke(db, 0x1234567890ABCDEF1234, RevocationReason.superseded, OPERATOR)
    assert _audit(db, "certificate_revoked") == []


def test_future_invalidity_date_is_refused(db, hierarchy):
    certificate = issue_leaf(db, hierarchy.issuing_ca("infrastructure"))
    with pytest.raises(RevocationRefused, match="invalidity_date"):
        revoke(
            db,
            certificate.serial_number,
            RevocationReason.keyCompromise,
            OPERATOR,
            invalidity_date=datetime.now(UTC) + timedelta(days=1),
        )
    with db.session() as session:
        row = session.exec(
            select(CertificateRecord).where(
                CertificateRecord.serial_hex == format(certificate.serial_number, "x").zfill(2)
            )
        ).first()
    assert row is None or row.status == "issued"
    assert _audit(db, "certificate_revoked") == []


def test_key_compromise_blocks_the_key_and_revokes_its_other_certificates(db, hierarchy):
    key = ec.generate_private_key(ec.SECP256R1())
    first = issue_leaf(db, hierarchy.issuing_ca("infrastructure"), key)
    second = issue_leaf(db, hierarchy.issuing_ca("infrastructure"), key)
    unrelated = issue_leaf(db, hierarchy.issuing_ca("infrastructure"))
    outcome = revoke(db, first.serial_number, RevocationReason.keyCompromise, OPERATOR)
    assert outcome.key_blocked
    with db.session() as session:
        rows = {r.serial_hex: r for r in session.exec(select(CertificateRecord))}
        blocked = session.exec(select(BlockedKey)).all()
    by_serial = {int(s, 16): r for s, r in rows.items()}
    assert by_serial[second.serial_number].status == "revoked"
    assert by_serial[second.serial_number].revocation_reason == "keyCompromise"
    assert outcome.also_revoked == (by_serial[second.serial_number].serial_hex,)
    assert by_serial[unrelated.serial_number].status == "issued"
    assert [b.spki_sha256 for b in blocked] == [by_serial[first.serial_number].spki_sha256]
    assert len(_audit(db, "certificate_revoked")) == 2


def _crl_files(tmp_path: Path, hierarchy, publisher: CRLPublisher, ca_name: str):
    ca = hierarchy.issuing_ca(ca_name)
    record = publisher.current(publisher.resolve(ca.publication_name))
    crl = x509.load_der_x509_crl(record.der)
    (tmp_path / "crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    (tmp_path / "crl.der").write_bytes(record.der)
    (tmp_path / "root.pem").write_bytes(pem(ca.chain[-1]))
    (tmp_path / "ca.pem").write_bytes(pem(ca.certificate))
    return record, crl


def _openssl_verify(tmp_path: Path, certificate: x509.Certificate):
    (tmp_path / "leaf.pem").write_bytes(pem(certificate))
    return run(
        "openssl", "verify", "-crl_check", "-CAfile", tmp_path / "root.pem",
        "-untrusted", tmp_path / "ca.pem", "-CRLfile", tmp_path / "crl.pem", tmp_path / "leaf.pem",
    )  # fmt: skip


def test_revoked_certificate_is_on_the_next_crl_and_openssl_agrees(db, hierarchy, tmp_path):
    publisher = CRLPublisher(db, hierarchy)
    ca = hierarchy.issuing_ca("infrastructure")
    good = issue_leaf(db, ca)
    bad = issue_leaf(db, ca)
    first, crl = _crl_files(tmp_path, hierarchy, publisher, "infrastructure")
    assert len(crl) == 0
    assert _openssl_verify(tmp_path, bad).returncode == 0

    revoke(db, bad.serial_number, RevocationReason.keyCompromise, OPERATOR)
    second, crl = _crl_files(tmp_path, hierarchy, publisher, "infrastructure")
    assert second.crl_number > first.crl_number
    assert crl.get_revoked_certificate_by_serial_number(bad.serial_number) is not None
    assert lint("lint_crl", tmp_path / "crl.der", "-t", "CRL", "-p", "PKIX").returncode == 0
    assert _openssl_verify(tmp_path, good).returncode == 0
    refused = _openssl_verify(tmp_path, bad)
    assert "certificate revoked" in refused.stdout + refused.stderr

    # nothing new: the stored CRL is served again, not reissued
    third, _ = _crl_files(tmp_path, hierarchy, publisher, "infrastructure")
    assert third.crl_number == second.crl_number
    assert [e.detail["crl_number"] for e in _audit(db, "crl_published")] == [
        first.crl_number,
        second.crl_number,
    ]


def test_delta_crl_lists_revocations_since_its_base(db, hierarchy, tmp_path):
    publisher = CRLPublisher(db, hierarchy)
    ca = hierarchy.issuing_ca("persons")
    certificate = issue_leaf(db, ca)
    base = publisher.current(publisher.resolve("persons"))
    revoke(db, certificate.serial_number, RevocationReason.superseded, OPERATOR)
    delta = publisher.current(publisher.resolve("persons-delta"))
    parsed = x509.load_der_x509_crl(delta.der)
    indicator = parsed.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
    full = publisher.current(publisher.resolve("persons"))
    # the revocation made the base stale, so a new base was published first
    assert full.crl_number > base.crl_number
    assert indicator.crl_number == full.crl_number
    assert delta.crl_number == full.crl_number + 1
    assert parsed.get_revoked_certificate_by_serial_number(certificate.serial_number)
    (tmp_path / "delta.der").write_bytes(delta.der)
    assert lint("lint_crl", tmp_path / "delta.der", "-t", "CRL", "-p", "PKIX").returncode == 0
    freshest = x509.load_der_x509_crl(full.der).extensions.get_extension_for_class(x509.FreshestCRL)
    assert freshest.value[0].full_name[0].value.endswith("/crl/persons-delta.crl")


def test_unknown_crl_names_are_refused(db, hierarchy):
    publisher = CRLPublisher(db, hierarchy)
    for name in ("nobody", "persons-p1", "persons-g7", "../etc/passwd", "persons-delta-delta"):
        with pytest.raises(UnknownCRL):
            publisher.resolve(name)


def test_partitioned_ca_publishes_one_crl_per_partition(db, tmp_path):
    hierarchy = ca_hierarchy(db, tmp_path, partitions=3)
    publisher = CRLPublisher(db, hierarchy)
    ca = hierarchy.issuing_ca("infrastructure")
    leaves = [issue_leaf(db, ca) for _ in range(9)]
    for leaf in leaves:
        revoke(db, leaf.serial_number, RevocationReason.cessationOfOperation, OPERATOR)
    seen: set[int] = set()
    for partition in range(3):
        record = publisher.current(publisher.resolve(f"infrastructure-p{partition}"))
        crl = x509.load_der_x509_crl(record.der)
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
        assert idp.full_name is not None
        assert idp.full_name[0].value.endswith(f"/crl/infrastructure-p{partition}.crl")
        serials = {entry.serial_number for entry in crl}
        assert all(serial % 3 == partition for serial in serials)
        seen |= serials
    assert seen == {leaf.serial_number for leaf in leaves}
    with pytest.raises(UnknownCRL):
        publisher.resolve("infrastructure")
    with db.session() as session:
        assert len(session.exec(select(CRLRecord)).all()) == 3


def test_openssl_checks_the_whole_chain_and_uses_delta_crls(db, hierarchy, tmp_path):
    """-crl_check_all with the root's CRL too; -use_deltas finds a revocation only on the delta."""
    publisher = CRLPublisher(db, hierarchy)
    ca = hierarchy.issuing_ca("persons")
    certificate = issue_leaf(db, ca)
    base = publisher.current(publisher.resolve(ca.publication_name))
    root_crl = publisher.current(publisher.resolve("root"))
    revoke(db, certificate.serial_number, RevocationReason.keyCompromise, OPERATOR)
    # only a delta on the old base: the base itself does not list the certificate
    delta = publisher.publish(publisher.resolve(f"{ca.publication_name}-delta"), delta=True)
    assert delta.base_crl_number == base.crl_number

    def to_pem(der: bytes) -> bytes:
        return x509.load_der_x509_crl(der).public_bytes(Encoding.PEM)

    (tmp_path / "root.pem").write_bytes(pem(ca.chain[-1]))
    (tmp_path / "ca.pem").write_bytes(pem(ca.certificate))
    (tmp_path / "leaf.pem").write_bytes(pem(certificate))
    (tmp_path / "base.pem").write_bytes(to_pem(base.der) + to_pem(root_crl.der))
    (tmp_path / "all.pem").write_bytes(to_pem(base.der) + to_pem(root_crl.der) + to_pem(delta.der))
    (tmp_path / "root.der").write_bytes(root_crl.der)
    assert lint("lint_crl", tmp_path / "root.der", "-t", "CRL", "-p", "PKIX").returncode == 0
    common = ["openssl", "verify", "-crl_check_all", "-CAfile", tmp_path / "root.pem",
              "-untrusted", tmp_path / "ca.pem"]  # fmt: skip
    without_delta = run(*common, "-CRLfile", tmp_path / "base.pem", tmp_path / "leaf.pem")
    assert without_delta.returncode == 0, without_delta.stdout + without_delta.stderr
    with_delta = run(
        *common, "-use_deltas", "-CRLfile", tmp_path / "all.pem", tmp_path / "leaf.pem"
    )
    assert with_delta.returncode != 0
    assert "certificate revoked" in with_delta.stdout + with_delta.stderr


def test_oversize_crl_is_published_and_reported(db, hierarchy, caplog):
    from idp.pki.status_settings import StatusSettings

    publisher = CRLPublisher(db, hierarchy, StatusSettings(crl_max_entries=2))
    ca = hierarchy.issuing_ca("persons")
    for _ in range(3):
        revoke(db, issue_leaf(db, ca).serial_number, RevocationReason.superseded, OPERATOR)
    with caplog.at_level("WARNING", logger="hoviyat.crl"):
        record = publisher.current(publisher.resolve("persons"))
    assert record.entries == 3
    assert "roll the CA over with 3 partitions" in caplog.text
    assert _audit(db, "crl_published")[-1].detail["oversize"] is True


def test_simultaneous_key_compromise_reports_for_one_key(db, hierarchy):
    """Two connections report the same key through two certificates at once: no deadlock."""
    import threading

    from idp.storage.engine import Database

    key = ec.generate_private_key(ec.SECP256R1())
    ca = hierarchy.issuing_ca("infrastructure")
    certificates = [issue_leaf(db, ca, key) for _ in range(4)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def report(certificate: x509.Certificate) -> None:
        own = Database(db.url)
        try:
            barrier.wait()
            revoke(own, certificate.serial_number, RevocationReason.keyCompromise, OPERATOR)
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=report, args=(c,)) for c in certificates[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session() as session:
        rows = session.exec(select(CertificateRecord)).all()
        blocked = session.exec(select(BlockedKey)).all()
    assert {r.status for r in rows} == {"revoked"}
    assert {r.revocation_reason for r in rows} == {"keyCompromise"}
    assert len(blocked) == 1
