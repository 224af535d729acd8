"""A real PKI for the policy part's ACME tests: CA keys made once a session, rows per test.

The hierarchy (root, persons, organisations, infrastructure) is initialised once
in a session directory with file keys; each test copies its CA rows into that
test's database (SQLite or PostgreSQL), as ``tests/ca/conftest.py`` does. Import
the fixtures into a test module: ``from acme_pki_support import acme_pki  # noqa: F401``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.issuance import Issued
from ca.keys import KeyStore, open_keystore
from ca.settings import CASettings
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.certificates import CertificateAuthority
from idp.storage.engine import Database
from idp.storage.migrate import upgrade
from verifiers.registry.synthetic import SyntheticRegistry

ISSUER = "https://pki.hoviyat.ir"  # public-looking: the CA/B Forum linter refuses loopback URLs
VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


@dataclass
class _Template:
    keys: KeyStore
    rows: list[CertificateAuthority]


_TEMPLATE: list[_Template] = []


def _template(tmp_path_factory: pytest.TempPathFactory) -> _Template:
    if not _TEMPLATE:
        directory = tmp_path_factory.mktemp("acme-ca")
        keys = open_keystore(
            CASettings(key_backend="file", passphrase="acme policy tests"), directory
        )
        url = f"sqlite:///{directory / 'template.db'}"
        upgrade(url)
        template_db = Database(url)
        hierarchy = Hierarchy(template_db, keys, ISSUER)
        hierarchy.init()
        _TEMPLATE.append(_Template(keys, hierarchy.rows()))
        template_db.dispose()
    return _TEMPLATE[0]


@pytest.fixture
def acme_pki(
    db: Database, tmp_path_factory: pytest.TempPathFactory, synthetic_registry_path: Path
) -> Iterator[Pki]:
    """A :class:`Pki` over ``db`` with the session's CA hierarchy."""
    template = _template(tmp_path_factory)
    with db.session() as session:
        for row in template.rows:
            session.add(CertificateAuthority.model_validate(row.model_dump()))
    registries = SyntheticRegistry(synthetic_registry_path).registries()
    yield Pki.create(db, Hierarchy(db, template.keys, ISSUER), registries, b"p" * 32)
    registries.close()


def make_csr(names: tuple[str, ...]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def issue_tls(
    pki: Pki,
    names: tuple[str, ...],
    requested_by: str,
    profile: str = "tls-server-short",
    lint: bool | None = None,
) -> Issued:
    """A TLS server certificate for ``names``, through the registration step like ACME's."""
    return pki.request_certificate(
        Request(
            csr=make_csr(names),
            profile=profile,
            subject=SubjectReference(dns_names=names),
            requested_by=requested_by,
            request_reason="ACME policy test",
            actor_type="acme-account",
        ),
        lint,
    )


def write_pem(path: Path, certificates: list[x509.Certificate]) -> Path:
    path.write_text("".join(c.public_bytes(Encoding.PEM).decode() for c in certificates))
    return path


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True)
