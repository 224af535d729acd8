"""Helpers for the order-side tests: accounts as the resources see them, CSRs, and
orders brought to a state through the same functions the routes call."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from idp.acme.authorizations import claim, owned_authorization
from idp.acme.order_requests import OrderRequest
from idp.acme.orders import create_order, settle
from idp.acme.requests import AcmeAccount
from idp.acme.settings import AcmeSettings
from idp.storage import acme_orders as store
from idp.storage.acme_orders import AcmeOrder
from idp.storage.engine import Database

PEPPER = b"p" * 32
ENTITY = "10100000001"
VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def account(service_code: str = "demo-tax-portal", status: str = "valid") -> AcmeAccount:
    return AcmeAccount(
        id=secrets.token_urlsafe(12),
        status=status,
        jwk_thumbprint=secrets.token_urlsafe(32),
        national_id=ENTITY,
        service_code=service_code,
        eab_key_id="eab-" + secrets.token_hex(4),
    )


def csr_der(
    names: tuple[str, ...], key: Any = None, common_name: str | None = None
) -> tuple[bytes, Any]:
    """A DER CSR for ``names`` (SAN), and its key (P-256 unless given)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = (
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name is not None else []
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER), key


def new_order(
    db: Database,
    who: AcmeAccount,
    names: tuple[str, ...],
    settings: AcmeSettings | None = None,
    profile: str = "tls-server",
    ca: str = "infrastructure",
) -> tuple[AcmeOrder, list[str]]:
    return create_order(
        db,
        who,
        ca,
        OrderRequest(names=names, profile=profile, replaces=None),
        settings or AcmeSettings(),
        PEPPER,
        datetime.now(UTC),
    )


def prove(
    db: Database, who: AcmeAccount, authz_id: str, settings: AcmeSettings, error: Any = None
) -> None:
    """Record a validation's result for the authorization through the real claim and
    record path (the network side is what the HTTP tests exercise)."""
    authz, challenges = owned_authorization(db, authz_id, who, "infrastructure")
    job = claim(db, challenges[0], authz, who, settings, datetime.now(UTC))
    assert job is not None
    with db.session() as session:
        assert store.record_validation(
            session,
            job.challenge,
            job.attempt,
            error,
            datetime.now(UTC),
            datetime.now(UTC) + timedelta(days=7),
        )


def ready_order(
    db: Database, who: AcmeAccount, names: tuple[str, ...], settings: AcmeSettings | None = None
) -> AcmeOrder:
    settings = settings or AcmeSettings()
    order, authz_ids = new_order(db, who, names, settings)
    for authz_id in authz_ids:
        prove(db, who, authz_id, settings)
    with db.session() as session:
        found = store.get_order(session, order.id)
        assert found is not None
        settled = settle(session, found, datetime.now(UTC))
    assert settled.status == "ready", settled
    return settled


def run_async(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def write_pem(path: Path, certificates: list[x509.Certificate]) -> Path:
    path.write_text("".join(c.public_bytes(Encoding.PEM).decode() for c in certificates))
    return path


def openssl_verify(
    tmp_path: Path, pem_chain: str, root: x509.Certificate
) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` of the served chain's leaf, its intermediates untrusted, the root
    the only anchor (the chain as served must not need it)."""
    certificates = x509.load_pem_x509_certificates(pem_chain.encode())
    leaf, intermediates = certificates[0], certificates[1:]
    root_path = write_pem(tmp_path / "root.pem", [root])
    leaf_path = write_pem(tmp_path / "leaf.pem", [leaf])
    command = [
        "openssl",
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-CAfile",
        str(root_path),
    ]
    if intermediates:
        command += ["-untrusted", str(write_pem(tmp_path / "chain.pem", intermediates))]
    return subprocess.run([*command, str(leaf_path)], capture_output=True, text=True)


def pkilint_serverauth(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(VENV_BIN / "lint_cabf_serverauth_cert"),
            "lint",
            "-s",
            "WARNING",
            "-t",
            "DV-FINAL-CERTIFICATE",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
