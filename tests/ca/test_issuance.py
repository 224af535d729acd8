"""Issuing every profile from a CSR: the certificate is standard, recorded, audited.

Each case runs on SQLite and PostgreSQL (``db``) and with CA keys in files and
in SoftHSM2 (``ca_backend``). The certificates are checked by tools Hoviyat
does not control: ``openssl verify`` and pkilint's command-line linters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import (
    ExtendedKeyUsageOID,
    NameOID,
    SignatureAlgorithmOID,
)
from pki_helpers import make_csr, openssl_verify, pkilint, write_pem
from sqlmodel import select

from ca.issuance import spki_sha256
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.certificates import CertificateRecord
from idp.storage.models import AuditEntry

# profile -> (subject reference kind, openssl -purpose, pkilint tools beyond lint_pkix_cert)
PROFILES = {
    "person-authentication": (
        "person",
        "sslclient",
        [("lint_etsi_cert", "-t", "NCP-NATURAL-PERSON-CERTIFICATE")],
    ),
    "person-signing": (
        "person",
        None,
        [("lint_etsi_cert", "-t", "NCP-NATURAL-PERSON-CERTIFICATE")],
    ),
    "entity-seal": ("entity", None, [("lint_etsi_cert", "-t", "NCP-LEGAL-PERSON-CERTIFICATE")]),
    "tls-server": (
        "dns",
        "sslserver",
        [("lint_cabf_serverauth_cert", "-t", "DV-FINAL-CERTIFICATE")],
    ),
    "backoffice-client": ("entity", "sslclient", []),
    "oauth-client": ("entity", "sslclient", []),  # RFC 8705 clients, organisations CA
    "ocsp-responder": ("service", None, []),
    "service-signing": ("service", None, []),
}


def reference(kind: str, national_code: str, national_id: str) -> SubjectReference:
    return {
        "person": SubjectReference(national_code=national_code),
        "entity": SubjectReference(national_id=national_id, service_name=None),
        "dns": SubjectReference(dns_names=("www.agency.gov.ir", "api.agency.gov.ir")),
        "service": SubjectReference(service_name="Hoviyat token signing"),
    }[kind]


def issue(
    pki: Pki, profile: str, national_code: str, national_id: str
) -> tuple[str, x509.Certificate, tuple[x509.Certificate, ...]]:
    kind = PROFILES[profile][0]
    dns = ("www.agency.gov.ir",) if kind == "dns" else ()
    csr, _ = make_csr(dns=dns)
    # Responder and service-signing certificates come only from the CA's ceremony path.
    by = (
        pki.ceremony_certificate if pki.profiles[profile].ceremony_only else pki.request_certificate
    )
    issued = by(
        Request(
            csr=csr,
            profile=profile,
            subject=reference(kind, national_code, national_id),
            requested_by="operator-1",
            request_reason="test issuance",
            issuing_ca="persons" if profile == "ocsp-responder" else None,
        )
    )
    return issued.serial_hex, issued.certificate, issued.chain


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FILE_KEYS_ONLY = pytest.mark.parametrize("ca_backend", ["file"], indirect=True)


@SQLITE_ONLY
@FILE_KEYS_ONLY
@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_profile_verifies_with_openssl_and_is_recorded(
    pki: Pki, profile: str, living_person: str, active_entity: str, tmp_path: Path
) -> None:
    check_issued(pki, profile, living_person, active_entity, tmp_path)


@pytest.mark.parametrize("profile", ["person-authentication", "tls-server"])
def test_issuance_on_every_database_and_key_backend(
    pki: Pki, profile: str, living_person: str, active_entity: str, tmp_path: Path
) -> None:
    check_issued(pki, profile, living_person, active_entity, tmp_path)


def check_issued(
    pki: Pki, profile: str, living_person: str, active_entity: str, tmp_path: Path
) -> None:
    serial, certificate, chain = issue(pki, profile, living_person, active_entity)

    result = openssl_verify(tmp_path, certificate, chain, PROFILES[profile][1])
    assert result.returncode == 0, result.stdout + result.stderr

    assert certificate.serial_number.bit_length() > 64
    assert len(certificate.serial_number.to_bytes(20, "big").lstrip(b"\0")) <= 20
    with pki.db.session() as session:
        record = session.get(CertificateRecord, serial)
        assert record is not None
        assert record.status == "issued"
        assert record.der == certificate.public_bytes(Encoding.DER)
        assert record.spki_sha256 == spki_sha256(certificate.public_key())
        assert record.requested_by == "operator-1"
        audit = session.exec(
            select(AuditEntry).where(AuditEntry.tracking_code == record.tracking_code)
        ).all()
        assert [a.event_type for a in audit] == ["certificate_issued"]
        assert audit[0].detail["serial"] == serial
        if PROFILES[profile][0] in ("person", "entity"):
            assert record.subject_hash is not None and audit[0].subject_hash == record.subject_hash


def lint_all(path: Path, profile: str) -> None:
    tools = PROFILES[profile][2]
    # The CA/B Forum linter runs the RFC 5280 checks too, with the BR's own SKI rule
    # (which contradicts the RFC linter's SHOULD); elsewhere lint_pkix_cert is the base.
    if not any(tool == "lint_cabf_serverauth_cert" for tool, *_ in tools):
        result = pkilint("lint_pkix_cert", path)
        assert result.returncode == 0, result.stdout + result.stderr
    for tool, *extra in tools:
        result = pkilint(tool, path, *extra)
        assert result.returncode == 0, f"{tool}: {result.stdout}{result.stderr}"


@SQLITE_ONLY
@FILE_KEYS_ONLY
@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_profile_lints_clean_with_pkilint(
    pki: Pki, profile: str, living_person: str, active_entity: str, tmp_path: Path
) -> None:
    _, certificate, _ = issue(pki, profile, living_person, active_entity)
    lint_all(write_pem(tmp_path / f"{profile}.pem", [certificate]), profile)


@SQLITE_ONLY
@pytest.mark.parametrize("ca_backend", ["pkcs11"], indirect=True)
def test_hsm_signed_certificate_lints_clean(
    pki: Pki, living_person: str, active_entity: str, tmp_path: Path
) -> None:
    _, certificate, _ = issue(pki, "person-signing", living_person, active_entity)
    assert pki.hierarchy.issuing_ca("persons").signer.private_key is None  # really in the HSM
    lint_all(write_pem(tmp_path / "hsm.pem", [certificate]), "person-signing")


def test_person_subject_comes_from_the_registry_not_the_csr(
    pki: Pki, living_person: str, active_entity: str
) -> None:
    _, certificate, _ = issue(pki, "person-authentication", living_person, active_entity)
    person = pki.registries.civil.person(living_person)
    assert person is not None
    subject = certificate.subject
    assert (
        subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == f"PNOIR-{living_person}"
    )
    assert subject.get_attributes_for_oid(NameOID.GIVEN_NAME)[0].value == person.first_name
    assert subject.get_attributes_for_oid(NameOID.SURNAME)[0].value == person.last_name
    assert "ignored by the CA" not in subject.rfc4514_string()
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_entity_seal_carries_the_national_identifier(
    pki: Pki, living_person: str, active_entity: str
) -> None:
    _, certificate, _ = issue(pki, "entity-seal", living_person, active_entity)
    entity = pki.registries.deeds.entity(active_entity)
    assert entity is not None
    value = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value
    assert value == f"NTRIR-{active_entity}"
    assert (
        certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        == entity.name
    )


def test_aia_and_cdp_point_at_the_agreed_urls(
    pki: Pki, living_person: str, active_entity: str
) -> None:
    _, certificate, _ = issue(pki, "person-authentication", living_person, active_entity)
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = sorted(d.access_location.value for d in aia)
    assert urls == ["http://pki.hoviyat.ir/ca/persons.crt", "http://pki.hoviyat.ir/ocsp"]
    cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [p.full_name[0].value for p in cdp] == ["http://pki.hoviyat.ir/crl/persons.crl"]


def test_ocsp_responder_has_nocheck_and_no_revocation_pointers(
    pki: Pki, living_person: str, active_entity: str
) -> None:
    _, certificate, _ = issue(pki, "ocsp-responder", living_person, active_entity)
    certificate.extensions.get_extension_for_class(x509.OCSPNoCheck)
    with pytest.raises(x509.ExtensionNotFound):
        certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]


def test_lint_off_issues_the_same_kind_of_certificate(pki: Pki, living_person: str) -> None:
    csr, _ = make_csr(ec.generate_private_key(ec.SECP384R1()))
    request = Request(
        csr=csr,
        profile="person-authentication",
        subject=SubjectReference(national_code=living_person),
        requested_by="bulk",
    )
    issued = pki.request_certificate(request, lint=False)
    assert issued.certificate.issuer == pki.hierarchy.issuing_ca("persons").certificate.subject


def test_record_subject_is_readable(pki: Pki, living_person: str, active_entity: str) -> None:
    serial, _, _ = issue(pki, "person-authentication", living_person, active_entity)
    record = pki.record(serial)
    assert record is not None
    assert f"serialNumber=PNOIR-{living_person}" in record.subject
    assert ",SN=" in record.subject and ",GN=" in record.subject and "2.5.4" not in record.subject


def builder_tbs(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """What ``cryptography``'s own builder encodes from the certificate's parsed contents."""
    builder = x509.CertificateBuilder(
        issuer_name=issuer.subject,
        subject_name=certificate.subject,
        public_key=certificate.public_key(),  # type: ignore[arg-type]
        serial_number=certificate.serial_number,
        not_valid_before=certificate.not_valid_before_utc,
        not_valid_after=certificate.not_valid_after_utc,
        extensions=list(certificate.extensions),
    )
    return builder.sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()
    ).tbs_certificate_bytes


@SQLITE_ONLY
@FILE_KEYS_ONLY
@pytest.mark.parametrize("profile", list(PROFILES))
def test_hand_assembled_der_is_what_cryptography_builds(
    pki: Pki, profile: str, living_person: str, active_entity: str
) -> None:
    """Byte for byte, so the DER is canonical and every extension is where the builder put it."""
    _, certificate, chain = issue(pki, profile, living_person, active_entity)
    assert certificate.tbs_certificate_bytes == builder_tbs(certificate, chain[0])
    # P-256 issuing CAs sign with SHA-256 (RFC 5480 section 4), whatever the root used.
    assert certificate.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    certificate.verify_directly_issued_by(chain[0])
    if profile != "tls-server":  # the BR discourage an SKI in subscriber certificates
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())  # type: ignore[arg-type]


@SQLITE_ONLY
@FILE_KEYS_ONLY
@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), id="rsa-2048"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="p-384"),
        pytest.param(ed25519.Ed25519PrivateKey.generate, id="ed25519"),
    ],
)
def test_every_key_type_gets_the_builders_encoding_and_key_identifier(
    pki: Pki, key: Callable[[], object], living_person: str
) -> None:
    profile = "service-signing" if "ed25519" in type(key()).__name__.lower() else "person-signing"
    subject = (
        SubjectReference(service_name="Hoviyat audit signing")
        if profile == "service-signing"
        else SubjectReference(national_code=living_person)
    )
    csr, _ = make_csr(key())
    by = (
        pki.ceremony_certificate if pki.profiles[profile].ceremony_only else pki.request_certificate
    )
    issued = by(Request(csr=csr, profile=profile, subject=subject, requested_by="t"), lint=False)
    certificate = issued.certificate
    assert issued.der == certificate.public_bytes(Encoding.DER)
    assert certificate.tbs_certificate_bytes == builder_tbs(certificate, issued.chain[0])
    ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())  # type: ignore[arg-type]
