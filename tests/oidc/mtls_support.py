"""A real CA hierarchy for the mutual-TLS tests, and client certificates from it (RFC 8705).

The hierarchy (root, persons, organisations, infrastructure; file keys) is made
once a session in a template database; each test copies the CA rows into its own
database (SQLite or PostgreSQL), as tests/ca/conftest.py does. Certificates for
OAuth clients come from the registration authority, profile ``oauth-client``
(organisations CA), for an active legal entity of the synthetic registry.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.keys import KeyStore, open_keystore
from ca.settings import CASettings
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.certificates import CertificateAuthority
from idp.storage.engine import Database
from idp.storage.migrate import upgrade
from verifiers.registry.synthetic import SyntheticRegistry

CA_ISSUER = "https://pki.hoviyat.ir"
PROFILE = "oauth-client"


@dataclass
class CaTemplate:
    keys: KeyStore
    rows: list[CertificateAuthority]


def make_template(directory: Path) -> CaTemplate:
    keys = open_keystore(CASettings(key_backend="file", passphrase="mtls tests"), directory)
    url = f"sqlite:///{directory / 'template.db'}"
    upgrade(url)
    template_db = Database(url)
    hierarchy = Hierarchy(template_db, keys, CA_ISSUER)
    hierarchy.init()
    rows = hierarchy.rows()
    template_db.dispose()
    return CaTemplate(keys, rows)


def pki_on(db: Database, template: CaTemplate, registry_path: Path) -> Pki:
    with db.session() as session:
        for row in template.rows:
            session.add(CertificateAuthority.model_validate(row.model_dump()))
    registries = SyntheticRegistry(registry_path).registries()
    return Pki.create(db, Hierarchy(db, template.keys, CA_ISSUER), registries, b"p" * 32)


def active_entities(registry_path: Path, count: int = 2) -> list[str]:
    registry = SyntheticRegistry(registry_path)
    today = datetime.date.today()
    try:
        return [
            entity.national_id
            for entity in registry.iter_entities(300)
            if entity.status == "active" and entity.registration_date <= today
        ][:count]
    finally:
        registry.close()


@dataclass(frozen=True)
class ClientCertificate:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def subject_dn(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def header(self) -> str:
        """As nginx's ``$ssl_client_escaped_cert`` forwards it."""
        pem = self.certificate.public_bytes(serialization.Encoding.PEM).decode()
        return quote(pem, safe="")

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        cert, key = folder / f"{name}.crt", folder / f"{name}.key"
        cert.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert, key


def issue_client_certificate(
    pki: Pki, national_id: str, system: str, profile: str = PROFILE
) -> ClientCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, system)]))
        .sign(key, hashes.SHA256())
    )
    issued = pki.request_certificate(
        Request(
            csr=csr.public_bytes(serialization.Encoding.PEM),
            profile=profile,
            subject=SubjectReference(national_id=national_id, service_name=system),
            requested_by="operator-1",
            request_reason="mutual-TLS client of an agency",
        )
    )
    return ClientCertificate(issued.certificate, key)


def self_signed(name: str = "agency self-signed", *, like: x509.Certificate | None = None,
                issuer: x509.Name | None = None) -> ClientCertificate:  # fmt: skip
    """A certificate signed by a key of its own; ``like`` copies a real certificate's
    subject, serial and extensions (a forgery naming Hoviyat's CA as its issuer)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = like.subject if like else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or (like.issuer if like else subject))
        .public_key(key.public_key())
        .serial_number(like.serial_number if like else x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if like is not None:
        for extension in like.extensions:
            builder = builder.add_extension(extension.value, extension.critical)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return ClientCertificate(builder.sign(key, hashes.SHA256()), key)
