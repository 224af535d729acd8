"""CRLs and OCSP with CA keys in files and in SoftHSM2, and publication racing across connections.

The ``hierarchy`` fixture (tests/ca/conftest.py) is parametrised over the key
backends, so each test here runs with file keys and with PKCS#11 keys.
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlmodel import select
from status_helpers import issue_leaf, lint

from ca.revocation import RevocationReason
from idp.pki.crl_publisher import CRLPublisher
from idp.pki.ocsp_responder import OCSPService
from idp.pki.revocation import Actor, revoke
from idp.storage.crls import CRLRecord, OCSPResponderRecord
from idp.storage.engine import Database

OPERATOR = Actor("operator", "backend-test")


def test_crl_and_ocsp_signed_by_either_backend(db, hierarchy, tmp_path: Path):
    ca = hierarchy.issuing_ca("persons")
    good = issue_leaf(db, ca)
    revoked = issue_leaf(db, ca)
    revoke(db, revoked.serial_number, RevocationReason.keyCompromise, OPERATOR)

    publisher = CRLPublisher(db, hierarchy)
    record = publisher.current(publisher.resolve(ca.publication_name))
    crl = x509.load_der_x509_crl(record.der)
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    (tmp_path / "crl.der").write_bytes(record.der)
    assert lint("lint_crl", tmp_path / "crl.der", "-t", "CRL", "-p", "PKIX").returncode == 0

    service = OCSPService(db, hierarchy)
    for certificate, expected in (
        (good, ocsp.OCSPCertStatus.GOOD),
        (revoked, ocsp.OCSPCertStatus.REVOKED),
    ):
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, ca.certificate, hashes.SHA256())
            .add_extension(x509.OCSPNonce(b"n" * 20), critical=False)
            .build()
        )
        answer = service.respond(request.public_bytes(serialization.Encoding.DER))
        response = ocsp.load_der_ocsp_response(answer.der)
        assert response.certificate_status == expected
        responder = response.certificates[0]
        responder.verify_directly_issued_by(ca.certificate)
        assert x509.OCSPNoCheck in {type(e.value) for e in responder.extensions}
        (tmp_path / "resp.der").write_bytes(answer.der)
        assert lint("lint_ocsp_response", tmp_path / "resp.der").returncode == 0
    with db.session() as session:
        responders = session.exec(select(OCSPResponderRecord)).all()
    # one responder per issuing CA generation, its key in the same key store as the CA's
    assert {r.issuer_key_id for r in responders} >= {ca.key_id}
    assert all(r.key_ref.split(":")[0] == ca.signer.key_ref.split(":")[0] for r in responders)


def test_concurrent_publishers_never_share_a_crl_number(db, hierarchy):
    """Four connections publish at once: the unique constraint sorts them out."""
    ca = hierarchy.issuing_ca("organisations")
    issue_leaf(db, ca)
    address = CRLPublisher(db, hierarchy).resolve(ca.publication_name)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def publish() -> None:
        own = Database(db.url)
        try:
            barrier.wait()
            for _ in range(3):
                CRLPublisher(own, hierarchy).publish(address)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session() as session:
        numbers = [r.crl_number for r in session.exec(select(CRLRecord))]
    assert len(numbers) == len(set(numbers))
    assert sorted(numbers) == list(range(1, len(numbers) + 1))


def test_rollover_gives_the_new_generation_its_own_crl_and_responder(db, hierarchy):
    old_ca = hierarchy.issuing_ca("persons")
    old_leaf = issue_leaf(db, old_ca)
    service = OCSPService(db, hierarchy)

    def status(certificate: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
        request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
        der = service.respond(request.build().public_bytes(serialization.Encoding.DER)).der
        return ocsp.load_der_ocsp_response(der)

    assert status(old_leaf, old_ca.certificate).certificate_status == ocsp.OCSPCertStatus.GOOD
    new_ca = hierarchy.rollover("persons")
    assert new_ca.generation == old_ca.generation + 1
    new_leaf = issue_leaf(db, new_ca)
    revoke(db, old_leaf.serial_number, RevocationReason.superseded, OPERATOR)

    answer = status(new_leaf, new_ca.certificate)
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    answer.certificates[0].verify_directly_issued_by(new_ca.certificate)
    old_answer = status(old_leaf, old_ca.certificate)
    assert old_answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    old_answer.certificates[0].verify_directly_issued_by(old_ca.certificate)

    publisher = CRLPublisher(db, hierarchy)
    old_crl = x509.load_der_x509_crl(publisher.current(publisher.resolve("persons")).der)
    new_crl = x509.load_der_x509_crl(
        publisher.current(publisher.resolve(new_ca.publication_name)).der
    )
    assert old_crl.is_signature_valid(old_ca.certificate.public_key())  # type: ignore[arg-type]
    assert new_crl.is_signature_valid(new_ca.certificate.public_key())  # type: ignore[arg-type]
    assert old_crl.get_revoked_certificate_by_serial_number(old_leaf.serial_number)
    assert len(new_crl) == 0
