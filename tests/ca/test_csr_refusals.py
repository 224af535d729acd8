"""Requests the registration step must refuse, each with its own reason, writing nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from asn1crypto import csr as asn1_csr
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pki_helpers import make_csr
from sqlalchemy import func
from sqlmodel import select

from ca.issuance import spki_sha256
from idp.pki.refusals import CertificateRefused
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.certificates import BlockedKey, CertificateRecord
from idp.storage.models import AuditEntry

pytestmark = pytest.mark.parametrize("ca_backend", ["file"], indirect=True)


def counts(pki: Pki) -> tuple[int, int]:
    with pki.db.session() as session:
        certificates = session.exec(select(func.count()).select_from(CertificateRecord)).one()
        audit = session.exec(select(func.count()).select_from(AuditEntry)).one()
    return int(certificates), int(audit)


def refused(pki: Pki, request: Request) -> CertificateRefused:
    before = counts(pki)
    with pytest.raises(CertificateRefused) as caught:
        pki.request_certificate(request)
    assert counts(pki) == before, "a refused request wrote something"
    return caught.value


def person_request(
    csr: bytes | str, national_code: str, profile: str = "person-authentication"
) -> Request:
    return Request(
        csr=csr,
        profile=profile,
        subject=SubjectReference(national_code=national_code),
        requested_by="operator",
    )


def tampered(csr_pem: bytes) -> bytes:
    """The same CSR with one byte of its signature flipped."""
    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(Encoding.DER))
    der[-5] ^= 0x01
    return bytes(der)


def signed_by_another_key(digest: hashes.HashAlgorithm) -> bytes:
    """A CSR naming one ECDSA key whose signature (well formed) was made by another."""
    named = x509.load_pem_x509_csr(make_csr()[0])
    other = ec.generate_private_key(ec.SECP256R1())
    signature = other.sign(named.tbs_certrequest_bytes, ec.ECDSA(digest))
    request = asn1_csr.CertificationRequest.load(named.public_bytes(Encoding.DER))
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": request["certification_request_info"],
            "signature_algorithm": request["signature_algorithm"],
            "signature": signature,
        }
    ).dump()


def hash_swapped(csr_pem: bytes) -> bytes:
    """A valid ECDSA-with-SHA256 signature presented as ECDSA-with-SHA384."""
    request = asn1_csr.CertificationRequest.load(
        x509.load_pem_x509_csr(csr_pem).public_bytes(Encoding.DER)
    )
    return asn1_csr.CertificationRequest(
        {
            "certification_request_info": request["certification_request_info"],
            "signature_algorithm": {"algorithm": "sha384_ecdsa"},
            "signature": request["signature"],
        }
    ).dump()


CASES: dict[str, tuple[Callable[[], bytes | str], str]] = {
    "garbage": (lambda: b"\x00\x01garbage that is not a CSR", "csr-malformed"),
    "empty": (lambda: b"", "csr-malformed"),
    "pem-certificate-not-csr": (
        lambda: b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "csr-malformed",
    ),
    "bad-signature": (lambda: tampered(make_csr()[0]), "csr-bad-signature"),
    "ecdsa-signed-by-another-key": (
        lambda: signed_by_another_key(hashes.SHA256()),
        "csr-bad-signature",
    ),
    "ecdsa-hash-swapped": (lambda: hash_swapped(make_csr()[0]), "csr-bad-signature"),
    "rsa-bad-signature": (
        lambda: tampered(make_csr(rsa.generate_private_key(65537, 2048))[0]),
        "csr-bad-signature",
    ),
    "rsa-1024": (lambda: make_csr(rsa.generate_private_key(65537, 1024))[0], "csr-key-refused"),
    "secp256k1": (lambda: make_csr(ec.generate_private_key(ec.SECP256K1()))[0], "csr-key-refused"),
    "ed25519-not-in-person-profile": (
        lambda: make_csr(ed25519.Ed25519PrivateKey.generate())[0],
        "csr-key-refused",
    ),
    "san-in-person-csr": (lambda: make_csr(dns=("evil.example.ir",))[0], "csr-san-refused"),
    "email-san-in-person-csr": (
        lambda: make_csr(other_san=[x509.RFC822Name("a@b.ir")])[0],
        "csr-san-refused",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_csr_is_refused_with_its_reason(pki: Pki, living_person: str, case: str) -> None:
    make, slug = CASES[case]
    refusal = refused(pki, person_request(make(), living_person))
    assert refusal.slug == slug
    assert refusal.status == 400
    assert refusal.detail


def test_small_rsa_key_reason_names_the_size(pki: Pki, living_person: str) -> None:
    csr, _ = make_csr(rsa.generate_private_key(65537, 1024))
    refusal = refused(pki, person_request(csr, living_person))
    assert "1024 bits is too small" in refusal.detail


def test_blocked_key_is_refused(pki: Pki, living_person: str) -> None:
    csr, key = make_csr()
    with pki.db.session() as session:
        session.add(BlockedKey(spki_sha256=spki_sha256(key.public_key()), reason="keyCompromise"))
    refusal = refused(pki, person_request(csr, living_person))
    assert refusal.slug == "csr-key-blocked"


def test_ca_key_is_refused(pki: Pki, living_person: str) -> None:
    signer = pki.hierarchy.issuing_ca("persons").signer
    if signer.private_key is None:
        pytest.skip("an HSM key cannot sign a CSR outside the CA")
    csr, _ = make_csr(signer.private_key)
    assert refused(pki, person_request(csr, living_person)).slug == "csr-key-refused"


def test_unapproved_dns_name_in_tls_csr_is_refused(pki: Pki) -> None:
    csr, _ = make_csr(dns=("www.agency.gov.ir", "other.example.ir"))
    request = Request(
        csr=csr,
        profile="tls-server",
        subject=SubjectReference(dns_names=("www.agency.gov.ir",)),
        requested_by="op",
    )
    refusal = refused(pki, request)
    assert refusal.slug == "csr-san-refused"
    assert "other.example.ir" in refusal.detail


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "bad_label.ir", "-x.ir", "a..ir"])
def test_invalid_dns_name_is_refused(pki: Pki, name: str) -> None:
    csr, _ = make_csr()
    request = Request(
        csr=csr,
        profile="tls-server",
        subject=SubjectReference(dns_names=(name,)),
        requested_by="op",
    )
    assert refused(pki, request).slug == "dns-name-invalid"


def test_person_unknown_to_registry_is_refused(pki: Pki) -> None:
    csr, _ = make_csr()
    # A valid checksum, but the synthetic registry does not hold it.
    refusal = refused(pki, person_request(csr, "0499370899"))
    assert refusal.slug in {"subject-not-in-registry"}


def test_invalid_national_code_says_which_rule(pki: Pki) -> None:
    csr, _ = make_csr()
    refusal = refused(pki, person_request(csr, "0499370898"))
    assert refusal.slug == "invalid-national-code"
    assert "check digit" in refusal.detail


def test_missing_subject_reference_and_unknown_profile(pki: Pki) -> None:
    csr, _ = make_csr()
    assert (
        refused(
            pki,
            Request(
                csr=csr,
                profile="person-authentication",
                subject=SubjectReference(),
                requested_by="op",
            ),
        ).slug
        == "subject-reference-missing"
    )
    assert (
        refused(
            pki,
            Request(
                csr=csr, profile="no-such-profile", subject=SubjectReference(), requested_by="op"
            ),
        ).slug
        == "unknown-profile"
    )


def test_lint_failure_refuses_and_names_the_rule(pki: Pki, living_person: str) -> None:
    from dataclasses import replace

    # A profile mistake the lint must catch: a TLS certificate longer-lived than the
    # CA/B Forum allows.
    profile = replace(pki.profiles["tls-server"], validity_days=800)
    pki.profiles = {**pki.profiles, "tls-server": profile}
    csr, _ = make_csr(dns=("www.agency.gov.ir",))
    request = Request(
        csr=csr,
        profile="tls-server",
        subject=SubjectReference(dns_names=("www.agency.gov.ir",)),
        requested_by="op",
    )
    refusal = refused(pki, request)
    assert refusal.slug == "lint-failed"
    assert "validity_period" in refusal.detail


def test_etsi_lint_refuses_mixed_key_usage(pki: Pki, living_person: str) -> None:
    from dataclasses import replace

    # ETSI EN 319 412-2 4.3.2: a non-repudiation key is not also an authentication key.
    profile = replace(
        pki.profiles["person-signing"], key_usage=("digital_signature", "content_commitment")
    )
    pki.profiles = {**pki.profiles, "person-signing": profile}
    csr, _ = make_csr()
    refusal = refused(pki, person_request(csr, living_person, profile="person-signing"))
    assert refusal.slug == "lint-failed"
    assert "etsi:NCP-NATURAL-PERSON-CERTIFICATE" in refusal.detail
    assert "mixed_key_usage" in refusal.detail
