"""The CA hierarchy: idempotent init, key rollover, the offline-root ceremony, HSM keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pki_helpers import ISSUER, PEPPER, make_csr, openssl_verify, pkilint, write_pem

from ca.hierarchy import HierarchyError
from ca.keys import KeyStore
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Pki, Request
from idp.pki.subjects import SubjectReference
from idp.storage.engine import Database
from verifiers.registry.base import Registries

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def issue_person(hierarchy: Hierarchy, registry: Registries, national_code: str):
    pki = Pki.create(hierarchy.db, hierarchy, registry, PEPPER)
    csr, _ = make_csr()
    return pki.request_certificate(
        Request(
            csr=csr,
            profile="person-authentication",
            subject=SubjectReference(national_code=national_code),
            requested_by="op",
        )
    )


def test_init_creates_root_and_issuing_cas_once(db: Database, fresh_keys: KeyStore) -> None:
    hierarchy = Hierarchy(db, fresh_keys, ISSUER)
    assert hierarchy.init() == ["root", "persons", "organisations", "infrastructure"]
    assert hierarchy.init() == []
    rows = hierarchy.rows()
    assert sorted(r.name for r in rows) == ["infrastructure", "organisations", "persons", "root"]
    root = hierarchy.issuing_ca("root")
    assert isinstance(root.certificate.public_key(), ec.EllipticCurvePublicKey)
    assert root.certificate.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]
    for name in ("persons", "organisations", "infrastructure"):
        ca = hierarchy.issuing_ca(name)
        assert ca.chain[-1] == root.certificate
        ca.certificate.verify_directly_issued_by(root.certificate)
        constraints = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0


@SQLITE_ONLY
def test_ca_certificates_lint_clean_and_verify(
    db: Database, fresh_keys: KeyStore, tmp_path: Path
) -> None:
    hierarchy = Hierarchy(db, fresh_keys, ISSUER)
    hierarchy.init()
    root = hierarchy.issuing_ca("root")
    persons = hierarchy.issuing_ca("persons")
    for name, certificate in (("root", root.certificate), ("persons", persons.certificate)):
        result = pkilint("lint_pkix_cert", write_pem(tmp_path / f"{name}.pem", [certificate]))
        assert result.returncode == 0, result.stdout
    result = openssl_verify(tmp_path, persons.certificate, (root.certificate,))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hsm_keys_never_leave_the_token(
    db: Database, fresh_keys: KeyStore, ca_backend: str
) -> None:
    if ca_backend != "pkcs11":
        pytest.skip("file keys are encrypted PKCS#8, checked below")
    from pkcs11 import Attribute

    hierarchy = Hierarchy(db, fresh_keys, ISSUER)
    hierarchy.init()
    signer = hierarchy.issuing_ca("persons").signer
    assert signer.private_key is None
    key = signer._key  # type: ignore[attr-defined]
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False


def test_file_keys_are_encrypted_and_private(
    db: Database, fresh_keys: KeyStore, ca_backend: str
) -> None:
    if ca_backend != "file":
        pytest.skip("HSM keys are checked above")
    Hierarchy(db, fresh_keys, ISSUER).init()
    directory = fresh_keys.directory  # type: ignore[attr-defined]
    files = sorted(directory.glob("*.key.pem"))
    assert len(files) == 4
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o600
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in path.read_bytes()


def test_rollover_keeps_old_certificates_valid(
    db: Database, fresh_keys: KeyStore, registry: Registries, living_person: str, tmp_path: Path
) -> None:
    hierarchy = Hierarchy(db, fresh_keys, ISSUER)
    hierarchy.init()
    before = issue_person(hierarchy, registry, living_person)
    old_ca = hierarchy.issuing_ca("persons")

    new_ca = hierarchy.rollover("persons")
    after = issue_person(hierarchy, registry, living_person)

    assert new_ca.generation == 2 and new_ca.key_id != old_ca.key_id
    assert hierarchy.issuing_ca("persons").key_id == new_ca.key_id
    assert hierarchy.issuing_ca("persons", key_id=old_ca.key_id).generation == 1
    after.certificate.verify_directly_issued_by(new_ca.certificate)
    # The old leaf still verifies through the old CA certificate, still published.
    assert hierarchy.certificate_by_publication("persons") is not None
    assert hierarchy.certificate_by_publication("persons-g2") is not None
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    assert openssl_verify(tmp_path / "old", before.certificate, before.chain).returncode == 0
    assert openssl_verify(tmp_path / "new", after.certificate, after.chain).returncode == 0
    cdp = after.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://pki.hoviyat.ir/crl/persons-g2.crl"


def test_offline_root_ceremony(
    tmp_path: Path,
    fresh_keys: KeyStore,
    registry: Registries,
    living_person: str,
) -> None:
    from idp.storage.migrate import upgrade

    # The root's machine: its own database and keys.
    root_url = f"sqlite:///{tmp_path / 'root.db'}"
    upgrade(root_url)
    root_db = Database(root_url)
    root_side = Hierarchy(root_db, fresh_keys, ISSUER)
    assert root_side.init(root_only=True) == ["root"]

    # The server: another database and another key store, no root key.
    from ca.keys import open_keystore
    from ca.settings import CASettings

    server_url = f"sqlite:///{tmp_path / 'server.db'}"
    upgrade(server_url)
    server_db = Database(server_url)
    server_keys = open_keystore(
        CASettings(key_backend="file", passphrase="other"), tmp_path / "srv"
    )
    server = Hierarchy(server_db, server_keys, ISSUER)

    csr = server.issuing_csr("persons")
    assert server.issuing_csr("persons").public_key() == csr.public_key()  # same pending key
    certificate = root_side.sign_issuing(csr, online_url=ISSUER)
    chain = [certificate, root_side.issuing_ca("root").certificate]
    assert server.install_issuing(chain) == "persons"

    issued = issue_person(server, registry, living_person)
    issued.certificate.verify_directly_issued_by(certificate)
    assert openssl_verify(tmp_path, issued.certificate, issued.chain).returncode == 0
    with pytest.raises(HierarchyError, match="offline"):
        server.init()
    root_db.dispose()
    server_db.dispose()


def test_sign_issuing_refuses_foreign_subjects(db: Database, fresh_keys: KeyStore) -> None:
    hierarchy = Hierarchy(db, fresh_keys, ISSUER)
    hierarchy.init(root_only=True)
    csr, _ = make_csr(common_name="Evil CA")
    with pytest.raises(HierarchyError, match="not a Hoviyat issuing CA"):
        hierarchy.sign_issuing(x509.load_pem_x509_csr(csr), online_url=ISSUER)


def test_install_refuses_a_certificate_from_another_root(
    db: Database, fresh_keys: KeyStore, tmp_path: Path
) -> None:
    from ca.keys import open_keystore
    from ca.settings import CASettings
    from idp.storage.migrate import upgrade

    server = Hierarchy(db, fresh_keys, ISSUER)
    server.init(root_only=True)
    csr = server.issuing_csr("persons")

    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    other_db = Database(other_url)
    other_keys = open_keystore(CASettings(key_backend="file", passphrase="x"), tmp_path / "o")
    other = Hierarchy(other_db, other_keys, ISSUER)
    other.init(root_only=True)
    foreign = other.sign_issuing(csr, online_url=ISSUER)
    with pytest.raises(HierarchyError, match="not issued by this root"):
        server.install_issuing([foreign])
    other_db.dispose()


def test_issuing_csr_carries_the_new_key_and_verifies(db: Database, fresh_keys: KeyStore) -> None:
    hierarchy = Hierarchy(db, fresh_keys, ISSUER)
    hierarchy.init(root_only=True)
    csr = hierarchy.issuing_csr("infrastructure")
    assert csr.is_signature_valid
    pending = [r for r in hierarchy.rows() if r.name == "infrastructure"]
    assert len(pending) == 1 and pending[0].certificate is None and not pending[0].active
    signer = fresh_keys.load(pending[0].key_ref)
    assert csr.public_key() == signer.public_key()
