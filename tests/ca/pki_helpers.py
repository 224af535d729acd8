"""Helpers for the issuance tests: CSRs, and the external tools that judge certificates."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

ISSUER = "https://pki.hoviyat.ir"  # a public-looking name: the ETSI/CABF linters reject loopback
PEPPER = b"p" * 32
VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def make_csr(
    key: object | None = None,
    common_name: str = "ignored by the CA",
    dns: tuple[str, ...] = (),
    other_san: list[x509.GeneralName] | None = None,
) -> tuple[bytes, object]:
    """A PEM CSR and its private key (P-256 by default)."""
    private_key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + list(other_san or [])
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if _is_edwards(private_key) else hashes.SHA256()
    csr = builder.sign(private_key, algorithm)  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM), private_key


def _is_edwards(key: object) -> bool:
    return isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)


def write_pem(
    path: Path, certificates: list[x509.Certificate] | tuple[x509.Certificate, ...]
) -> Path:
    path.write_text("".join(c.public_bytes(Encoding.PEM).decode() for c in certificates))
    return path


def openssl_verify(
    tmp_path: Path,
    leaf: x509.Certificate,
    chain: tuple[x509.Certificate, ...],
    purpose: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` with the root as trust anchor and the intermediates untrusted."""
    root = write_pem(tmp_path / "root.pem", [chain[-1]])
    leaf_path = write_pem(tmp_path / "leaf.pem", [leaf])
    command = ["openssl", "verify", "-x509_strict", "-CAfile", str(root)]
    if len(chain) > 1:
        untrusted = write_pem(tmp_path / "untrusted.pem", list(chain[:-1]))
        command += ["-untrusted", str(untrusted)]
    if purpose:
        command += ["-purpose", purpose]
    return subprocess.run([*command, str(leaf_path)], capture_output=True, text=True)


def pkilint(tool: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / tool), "lint", "-s", "WARNING", *extra, str(path)],
        capture_output=True,
        text=True,
    )
