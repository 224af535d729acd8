"""Where the server's attestation signer comes from: the Hoviyat CA, once, kept on disk.

On first use (or ``hoviyat attest signer``) a fresh P-256 key is generated,
its CSR goes through the registration step under the ``service-signing``
profile (token/audit/attestation signing keys of Hoviyat itself), and the key
(PKCS#8, encrypted under the server's key-encryption key) is written with the
leaf, issuing CA and root certificates into one PEM bundle, atomically, so a
key and a chain that do not belong together can never be read back. A
certificate that expires within ``renew_days_before_expiry`` is replaced the
same way. Before use, the chain is checked exactly as a receiver will check it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idp.attestations.signing import AttestationSigner
from idp.attestations.x5c import ChainVerifier
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference

PROFILE = "service-signing"
SERVICE_NAME = "Hoviyat attestations"


@dataclass(frozen=True)
class SignerBundle:
    signer: AttestationSigner
    root: x509.Certificate

    @property
    def not_after(self) -> datetime:
        return self.signer.certificate.not_valid_after_utc


# Issues a certificate for the CSR under PROFILE; returns (leaf, [issuing CA..., root]).
CertificateSource = Callable[[bytes], tuple[x509.Certificate, tuple[x509.Certificate, ...]]]


def default_path(data_dir: Path) -> Path:
    return data_dir / "attestation" / "signer.pem"


def load_bundle(path: Path, kek: bytes) -> SignerBundle | None:
    if not path.exists():
        return None
    data = path.read_bytes()
    key = serialization.load_pem_private_key(data, password=kek)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} does not hold an EC private key")
    certificates = x509.load_pem_x509_certificates(data)
    if len(certificates) < 2:
        raise ValueError(f"{path} must hold the leaf, its issuing CA(s) and the root")
    signer = AttestationSigner(key, tuple(certificates[:-1]))
    return SignerBundle(signer, certificates[-1])


def write_bundle(path: Path, bundle: SignerBundle, kek: bytes) -> None:
    key_pem = bundle.signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(kek),
    )
    certs = [*bundle.signer.chain, bundle.root]
    pem = key_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)


def obtain_bundle(source: CertificateSource) -> SignerBundle:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, SERVICE_NAME)]))
        .sign(key, hashes.SHA256())
    )
    leaf, chain = source(csr.public_bytes(serialization.Encoding.PEM))
    if not chain:
        raise ValueError("the CA returned no chain for the attestation certificate")
    bundle = SignerBundle(AttestationSigner(key, (leaf, *chain[:-1])), chain[-1])
    # Refuse to sign with a certificate our own receivers would reject.
    ChainVerifier([bundle.root]).validate(list(bundle.signer.x5c), datetime.now(UTC))
    return bundle


def ensure_bundle(
    path: Path,
    kek: bytes,
    source: Callable[[], CertificateSource],
    renew_before: timedelta = timedelta(days=30),
) -> SignerBundle:
    """The signer on disk, obtained (or renewed) from the CA when missing or expiring."""
    bundle = load_bundle(path, kek)
    if bundle is not None and bundle.not_after - datetime.now(UTC) > renew_before:
        return bundle
    bundle = obtain_bundle(source())
    write_bundle(path, bundle, kek)
    return bundle


def pki_source(pki: Pki) -> CertificateSource:
    """A :data:`CertificateSource` backed by ``idp.pki`` (the registration step, then ``ca/``)."""

    def issue(csr_pem: bytes) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
        issued = pki.ceremony_certificate(
            Request(
                csr=csr_pem,
                profile=PROFILE,
                subject=SubjectReference(service_name=SERVICE_NAME),
                requested_by="hoviyat",
                request_reason="attestation signing key",
                actor_type="system",
            )
        )
        return issued.certificate, tuple(issued.chain)

    return issue
