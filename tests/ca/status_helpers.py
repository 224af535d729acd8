"""Throwaway PKIs for the revocation, CRL and OCSP tests, and the external tools they call.

A P-384 root, an issuing CA under it (P-384 or P-256), leaves with AIA and CDP
extensions, and a delegated OCSP responder certificate: built with
``cryptography`` directly, so these tests do not depend on the issuance code.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.hierarchy import ca_key_usage
from ca.rfc5280 import authority_information_access, crl_distribution_points

BASE_URL = "http://127.0.0.1:8000"
NOW = datetime.now(UTC).replace(microsecond=0)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hoviyat Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _hash_for(key: ec.EllipticCurvePrivateKey) -> hashes.SHA256 | hashes.SHA384:
    return hashes.SHA384() if key.curve.name == "secp384r1" else hashes.SHA256()


def _ca_certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    path_length: int | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(120) | (1 << 120))
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, _hash_for(issuer_key))


@dataclass
class ThrowawayPKI:
    """A root, one issuing CA named ``ca_name``, and helpers to issue under it."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    ca_name: str = "persons"
    partitions: int = 1
    issued: list[x509.Certificate] = field(default_factory=list)

    def leaf(
        self, serial: int | None = None, *, cdp: str | None = None
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        from ca.crl import crl_distribution_point

        key = ec.generate_private_key(ec.SECP256R1())
        serial = serial if serial is not None else secrets.randbits(127) | (1 << 126)
        cdp = cdp or crl_distribution_point(
            BASE_URL, self.ca_name, serial, partitions=self.partitions
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"leaf {serial:x}"))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(NOW - timedelta(hours=1))
            .not_valid_after(NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                authority_information_access(
                    ocsp=f"{BASE_URL}/ocsp", ca_issuers=f"{BASE_URL}/ca/{self.ca_name}.cer"
                ),
                critical=False,
            )
            .add_extension(crl_distribution_points(cdp), critical=False)
            .sign(self.ca_key, _hash_for(self.ca_key))
        )
        self.issued.append(certificate)
        return certificate, key

    def responder(
        self, curve: ec.EllipticCurve | None = None
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A delegated OCSP responder certificate issued by the CA (RFC 6960 4.2.2.2)."""
        key = ec.generate_private_key(curve or ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"Hoviyat Test {self.ca_name} OCSP responder"))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(secrets.randbits(120) | (1 << 120))
            .not_valid_before(NOW - timedelta(hours=1))
            .not_valid_after(NOW + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
            )
            .add_extension(x509.OCSPNoCheck(), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .sign(self.ca_key, _hash_for(self.ca_key))
        )
        return certificate, key

    def write(self, directory: Path) -> dict[str, Path]:
        """PEM files for the openssl CLI: root, ca, and chain (ca + root)."""
        paths = {
            "root": directory / "root.pem",
            "ca": directory / "ca.pem",
            "chain": directory / "chain.pem",
        }
        paths["root"].write_bytes(pem(self.root))
        paths["ca"].write_bytes(pem(self.ca))
        paths["chain"].write_bytes(pem(self.ca) + pem(self.root))
        return paths


def make_pki(
    ca_curve: ec.EllipticCurve | None = None, ca_name: str = "persons", partitions: int = 1
) -> ThrowawayPKI:
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _ca_certificate(_name("Hoviyat Test Root"), root_key, None, root_key, None)
    ca_key = ec.generate_private_key(ca_curve or ec.SECP384R1())
    ca = _ca_certificate(_name(f"Hoviyat Test {ca_name}"), ca_key, root, root_key, 0)
    return ThrowawayPKI(root_key, root, ca_key, ca, ca_name=ca_name, partitions=partitions)


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def run(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run an external tool (openssl, pkilint), capturing its output for the assertion message."""
    result = subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result


def lint(tool: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """pkilint at WARNING: exits non-zero on any warning or error finding."""
    from shutil import which

    executable = which(tool) or str(Path(__file__).parents[2] / ".venv" / "bin" / tool)
    return run(executable, "lint", "-s", "WARNING", *extra, path)


# --- a real Hoviyat CA (ca.hierarchy) on a test database ---------------------


def ca_hierarchy(db, directory: Path, issuer_url: str = BASE_URL, partitions: int = 1):
    """Root + issuing CAs made by ``Hierarchy.init`` with file keys under ``directory``."""
    from sqlmodel import select

    from ca.keys.files import FileKeyStore
    from idp.pki.hierarchy import Hierarchy
    from idp.storage.certificates import CertificateAuthority

    hierarchy = Hierarchy(db, FileKeyStore(directory / "keys", b"test passphrase"), issuer_url)
    hierarchy.init()
    if partitions > 1:
        with db.session() as session:
            for row in session.exec(select(CertificateAuthority)):
                row.crl_partitions = partitions
                session.add(row)
        hierarchy.forget()
    return hierarchy


def issue_leaf(db, ca, key: ec.EllipticCurvePrivateKey | None = None) -> x509.Certificate:
    """A back-office client certificate issued by ``ca`` through ca.issuance (no lint)."""
    from ca.issuance import Order, issue
    from idp.storage.certificate_store import IntentRecords
    from idp.tracking import new_tracking_code
    from policies.certificate_profiles import load_profiles

    key = key or ec.generate_private_key(ec.SECP256R1())
    order = Order(
        profile=load_profiles()["backoffice-client"],
        issuing_ca=ca,
        public_key=key.public_key(),
        subject=_name(f"system {secrets.token_hex(4)}"),
        requested_by="test",
        tracking_code=new_tracking_code(),
    )
    return issue(IntentRecords(db), order, lint=False).certificate
