"""A throwaway three-level PKI (root, issuing CA, attestation signer) built with ``cryptography``.

It stands in for the Hoviyat CA in unit tests: the attestation code only needs
a private key and its chain, wherever they come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TestPki:
    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    issuing: x509.Certificate
    issuing_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hoviyat Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def build_pki(
    *, leaf_not_before: datetime | None = None, leaf_not_after: datetime | None = None
) -> TestPki:
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    long_ago, far = now - timedelta(days=1), now + timedelta(days=3650)
    root = _certificate(
        "Test Root", root_key, None, root_key, ca=True, not_before=long_ago, not_after=far
    )
    issuing = _certificate(
        "Test Issuing CA", issuing_key, root, root_key, ca=True, not_before=long_ago, not_after=far
    )
    leaf = _certificate(
        "Test Attestation Signer",
        leaf_key,
        issuing,
        issuing_key,
        ca=False,
        not_before=leaf_not_before or long_ago,
        not_after=leaf_not_after or now + timedelta(days=365),
    )
    return TestPki(root, root_key, issuing, issuing_key, leaf, leaf_key)
