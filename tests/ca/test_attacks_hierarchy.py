"""Attacks on the CA hierarchy, its CRLs and its lifecycle (issue #12), and a losing
keyCompromise report (issue #18): each test is named after the attack it stops.

Real parts only: the CA hierarchy on the test databases (SQLite and PostgreSQL),
the ``hoviyat`` CLI, the app over real HTTP, and the ``openssl`` CLI as judge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlmodel import select
from status_helpers import issue_leaf, pem, run
from typer.testing import CliRunner

from ca import names
from ca.hierarchy import EVENT_LIFECYCLE, HierarchyError
from ca.keys import open_keystore
from ca.keys.files import FileKeyStore
from ca.revocation import RevocationReason
from ca.settings import CASettings
from idp.cli.audit import audit_app
from idp.cli.ca import ca_app
from idp.cli.main import app as hoviyat_cli
from idp.pki.crl_publisher import CRLImportRefused, CRLPublisher
from idp.pki.hierarchy import Hierarchy
from idp.pki.ocsp_responder import OCSPService
from idp.pki.revocation import Actor, revoke
from idp.pki.status_settings import StatusSettings
from idp.secrets import ensure_secrets
from idp.settings import Settings
from idp.storage.certificates import BlockedKey, CertificateAuthority, CertificateRecord
from idp.storage.engine import Database
from idp.storage.migrate import upgrade
from idp.storage.models import AuditEntry

BASE_URL = "http://127.0.0.1:8000"
ROOT_MACHINE_URL = "http://root-ca.internal"
OPERATOR = Actor("operator", "test-operator", "attack tests")
HOVIYAT = Path(sys.executable).parent / "hoviyat"


def _hierarchy(db: Database, directory: Path, **options: Any) -> Hierarchy:
    return Hierarchy(db, FileKeyStore(directory / "keys", b"test passphrase"), BASE_URL, **options)


def _lifecycle(db: Database) -> list[AuditEntry]:
    with db.session() as session:
        return list(
            session.exec(select(AuditEntry).where(AuditEntry.event_type == EVENT_LIFECYCLE))
        )


def _crl_pem(path: Path, der: bytes) -> Path:
    crl = x509.load_der_x509_crl(der)
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


def _verify(tmp_path: Path, leaf: x509.Certificate, chain, crls: list[Path], *extra: str):
    (tmp_path / "root.pem").write_bytes(pem(chain[-1]))
    (tmp_path / "untrusted.pem").write_bytes(b"".join(pem(c) for c in chain[:-1]))
    (tmp_path / "leaf.pem").write_bytes(pem(leaf))
    crl_args = [arg for crl in crls for arg in ("-CRLfile", str(crl))]
    return run(
        "openssl", "verify", "-crl_check_all", *extra,
        "-CAfile", tmp_path / "root.pem", "-untrusted", tmp_path / "untrusted.pem",
        *crl_args, tmp_path / "leaf.pem",
    )  # fmt: skip


# --- delta CRLs of a partitioned CA -------------------------------------------------


def test_attack_partitioned_delta_crl_with_its_own_scope_hides_a_revocation(db, tmp_path):
    """A revocation listed only on the delta must make openssl refuse, in every partition."""
    partitions = 3
    hierarchy = _hierarchy(db, tmp_path, crl_partitions=partitions)
    hierarchy.init()
    ca = hierarchy.issuing_ca("infrastructure")
    assert ca.crl_partitions == partitions
    leaves: dict[int, x509.Certificate] = {}
    while len(leaves) < partitions:
        leaf = issue_leaf(db, ca)
        leaves.setdefault(leaf.serial_number % partitions, leaf)
    publisher = CRLPublisher(db, hierarchy, StatusSettings(crl_reissue_on_revocation=False))
    root_crl = _crl_pem(tmp_path / "root.crl.pem", publisher.current(publisher.resolve("root")).der)
    bases = {a.partition: publisher.publish(a) for a in publisher.addresses(ca)}
    for leaf in leaves.values():
        revoke(db, leaf.serial_number, RevocationReason.superseded, OPERATOR)
    for address in publisher.addresses(ca):
        leaf = leaves[address.partition]
        delta = publisher.publish(address, delta=True)
        assert delta.base_crl_number == bases[address.partition].crl_number
        base_path = _crl_pem(
            tmp_path / f"base{address.partition}.pem", bases[address.partition].der
        )
        delta_path = _crl_pem(tmp_path / f"delta{address.partition}.pem", delta.der)
        # The base alone predates the revocation: only the delta can reveal it.
        stale = _verify(tmp_path, leaf, ca.chain, [root_crl, base_path])
        assert stale.returncode == 0, stale.stdout + stale.stderr
        both = _verify(tmp_path, leaf, ca.chain, [root_crl, base_path, delta_path], "-use_deltas")
        output = both.stdout + both.stderr
        assert both.returncode != 0 and "certificate revoked" in output, (address, output)
        idp = x509.IssuingDistributionPoint
        base_idp = x509.load_der_x509_crl(bases[address.partition].der).extensions
        delta_idp = x509.load_der_x509_crl(delta.der).extensions
        assert (
            base_idp.get_extension_for_class(idp).value
            == delta_idp.get_extension_for_class(idp).value
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_operator_sets_the_crl_partitions_of_new_generations(
    database_url, tmp_path, monkeypatch, synthetic_registry_path
):
    _cli_environment(tmp_path, database_url, synthetic_registry_path, monkeypatch)
    monkeypatch.setenv("HOVIYAT_CA_CRL_PARTITIONS", "4")
    result = CliRunner().invoke(ca_app, ["init", "--json"])
    assert result.exit_code == 0, result.output
    db = Database(database_url)
    try:
        with db.session() as session:
            rows = session.exec(select(CertificateAuthority)).all()
        assert {r.name: r.crl_partitions for r in rows} == {
            "root": 1, "persons": 4, "organisations": 4, "infrastructure": 4,
        }  # fmt: skip
    finally:
        db.dispose()
    monkeypatch.setenv("HOVIYAT_CA_CRL_PARTITIONS", "0")
    refused = CliRunner().invoke(ca_app, ["rollover", "--issuing", "persons"])
    assert refused.exit_code != 0


# --- the offline root ---------------------------------------------------------------


def _csr(subject: x509.Name, key: Any) -> x509.CertificateSigningRequest:
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


@pytest.mark.parametrize(
    "weak_key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 1024), id="rsa-1024"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256K1()), id="secp256k1"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP224R1()), id="p-224"),
    ],
)
def test_attack_root_signing_a_weak_issuing_ca_key_is_refused_and_audited(db, tmp_path, weak_key):
    root_side = _hierarchy(db, tmp_path)
    root_side.init(root_only=True)
    csr = _csr(names.ca_subject("persons", 1), weak_key())
    with pytest.raises(HierarchyError, match=r"BR 6\.1\.5"):
        root_side.sign_issuing(csr, online_url=BASE_URL)
    with db.session() as session:
        assert session.exec(select(CertificateRecord)).all() == []
    refusals = [e for e in _lifecycle(db) if e.outcome == "refused"]
    assert [e.operation for e in refusals] == ["sign_issuing"]
    assert "BR 6.1.5" in refusals[0].detail["reason"]


def _two_machines(db: Database, tmp_path: Path) -> tuple[Hierarchy, Hierarchy, Database]:
    """(root machine, online machine, root machine's database)."""
    root_url = f"sqlite:///{tmp_path / 'root.db'}"
    upgrade(root_url)
    root_db = Database(root_url)
    root_side = Hierarchy(root_db, FileKeyStore(tmp_path / "root-keys", b"r"), ROOT_MACHINE_URL)
    root_side.init(root_only=True)
    online = Hierarchy(db, FileKeyStore(tmp_path / "online-keys", b"o"), BASE_URL)
    return root_side, online, root_db


def test_sign_issuing_points_aia_and_cdp_at_the_online_machine(db, tmp_path):
    root_side, online, root_db = _two_machines(db, tmp_path)
    try:
        certificate = root_side.sign_issuing(online.issuing_csr("persons"), online_url=BASE_URL)
        aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
        cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        assert [str(d.access_location.value) for d in aia.value] == [f"{BASE_URL}/ca/root.crt"]
        assert [str(n.value) for p in cdp.value for n in p.full_name or []] == [
            f"{BASE_URL}/crl/root.crl"
        ]
        # Recorded on the root's machine, so it can be revoked there and listed on its CRL.
        with root_db.session() as session:
            record = session.exec(select(CertificateRecord)).one()
        assert record.profile == "issuing-ca" and record.status == "issued"
    finally:
        root_db.dispose()


def test_attack_issuing_ca_pointing_at_the_root_machine_is_refused_at_install(db, tmp_path):
    root_side, online, root_db = _two_machines(db, tmp_path)
    try:
        csr = online.issuing_csr("persons")
        wrong = root_side.sign_issuing(csr, online_url=ROOT_MACHINE_URL)
        root = root_side.issuing_ca("root").certificate
        with pytest.raises(HierarchyError, match="do not name this machine"):
            online.install_issuing([wrong, root])
        assert [r.certificate for r in online.rows() if r.name == "persons"] == [None]
        assert [e.operation for e in _lifecycle(db) if e.outcome == "refused"] == [
            "install_issuing"
        ]
        right = root_side.sign_issuing(csr, online_url=BASE_URL)
        assert online.install_issuing([right, root]) == "persons"
    finally:
        root_db.dispose()


def test_attack_install_of_a_certificate_for_another_key_than_the_pending_one_is_refused(
    db, tmp_path
):
    root_side, online, root_db = _two_machines(db, tmp_path)
    try:
        online.issuing_csr("persons")
        # Someone else's key under the pending CA's name, certified by the real root.
        intruder = _csr(names.ca_subject("persons", 1), ec.generate_private_key(ec.SECP256R1()))
        foreign = root_side.sign_issuing(intruder, online_url=BASE_URL)
        root = root_side.issuing_ca("root").certificate
        with pytest.raises(HierarchyError, match="not the pending key"):
            online.install_issuing([foreign, root])
        with pytest.raises(HierarchyError):
            online.issuing_ca("persons")
    finally:
        root_db.dispose()


def test_attack_replayed_or_forged_root_crl_is_refused_by_import(db, tmp_path):
    root_side, online, root_db = _two_machines(db, tmp_path)
    try:
        csr = online.issuing_csr("persons")
        certificate = root_side.sign_issuing(csr, online_url=BASE_URL)
        online.install_issuing([certificate, root_side.issuing_ca("root").certificate])
        root_publisher = CRLPublisher(root_db, root_side)
        old = root_publisher.publish(root_publisher.resolve("root"))
        new = root_publisher.publish(root_publisher.resolve("root"))
        publisher = CRLPublisher(db, online)
        assert publisher.import_crl(new.der).crl_number == new.crl_number
        with pytest.raises(CRLImportRefused, match="not above"):
            publisher.import_crl(old.der)
        # Another root with the same name (its own key): its CRLs must not pass for ours.
        other_db_url = f"sqlite:///{tmp_path / 'other.db'}"
        upgrade(other_db_url)
        other_db = Database(other_db_url)
        try:
            other_side = Hierarchy(other_db, FileKeyStore(tmp_path / "ok", b"x"), BASE_URL)
            other_side.init(root_only=True)
            other_publisher = CRLPublisher(other_db, other_side)
            for _ in range(5):
                fake = other_publisher.publish(other_publisher.resolve("root"))
            with pytest.raises(CRLImportRefused, match="not from a CA installed here"):
                publisher.import_crl(fake.der)
        finally:
            other_db.dispose()
        served = publisher.current(publisher.resolve("root"))
        assert served.crl_number == new.crl_number
        imports = [e for e in _audit(db, "crl_published") if e.operation == "import_crl"]
        assert sorted(e.outcome for e in imports) == ["published", "refused", "refused"]
    finally:
        root_db.dispose()


def _audit(db: Database, event_type: str) -> list[AuditEntry]:
    with db.session() as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.event_type == event_type)))


# --- OCSP right after a rollover ------------------------------------------------------


def _environment(settings: Settings) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")
    }
    environment.update(
        HOVIYAT_DATA_DIR=str(settings.data_dir),
        HOVIYAT_DATABASE_URL=settings.database_url or "",
        HOVIYAT_ISSUER=settings.issuer,
        HOVIYAT_REGISTRY_ADAPTER="synthetic",
        HOVIYAT_REGISTRY_PATH=str(settings.registry_path),
    )
    return environment


def test_attack_ocsp_for_a_new_generation_right_after_rollover_is_not_unauthorized(
    hoviyat_settings: Settings, init_report, live_server, tmp_path: Path
):
    ca_dir = hoviyat_settings.data_dir / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    (ca_dir / "passphrase").write_text("test passphrase\n")
    os.chmod(ca_dir / "passphrase", 0o600)
    db = Database(hoviyat_settings.resolved_database_url)
    try:
        keys = open_keystore(CASettings(key_backend="file"), hoviyat_settings.data_dir)
        hierarchy = Hierarchy(db, keys, hoviyat_settings.issuer)
        hierarchy.init()
        old_ca = hierarchy.issuing_ca("persons")
        old_leaf = issue_leaf(db, old_ca)

        def ask(leaf: x509.Certificate, ca: x509.Certificate, name: str) -> str:
            (tmp_path / f"{name}.pem").write_bytes(pem(leaf))
            (tmp_path / f"{name}-ca.pem").write_bytes(pem(ca))
            (tmp_path / "root.pem").write_bytes(pem(old_ca.chain[-1]))
            answer = run(
                "openssl", "ocsp", "-issuer", tmp_path / f"{name}-ca.pem",
                "-CAfile", tmp_path / "root.pem", "-url", f"{live_server.url}/ocsp",
                "-cert", tmp_path / f"{name}.pem",
            )  # fmt: skip
            return answer.stdout + answer.stderr

        before = ask(old_leaf, old_ca.certificate, "old")
        assert f"{tmp_path / 'old.pem'}: good" in before, before
        # The rollover happens in another process: the real CLI.
        rolled = subprocess.run(
            [str(HOVIYAT), "ca", "rollover", "--issuing", "persons"],
            env=_environment(hoviyat_settings), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert rolled.returncode == 0, rolled.stderr
        fresh = Hierarchy(db, keys, hoviyat_settings.issuer)
        new_ca = fresh.issuing_ca("persons")
        assert new_ca.generation == old_ca.generation + 1
        new_leaf = issue_leaf(db, new_ca)
        output = ask(new_leaf, new_ca.certificate, "new")
        assert "unauthorized" not in output, output
        assert "Response verify OK" in output and f"{tmp_path / 'new.pem'}: good" in output
    finally:
        db.dispose()


# --- lifecycle audit ------------------------------------------------------------------


def _cli_environment(tmp_path: Path, database_url: str, registry: Path, monkeypatch) -> Path:
    data_dir = tmp_path / "data"
    for name, value in {
        "HOVIYAT_DATA_DIR": str(data_dir),
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_REGISTRY_ADAPTER": "synthetic",
        "HOVIYAT_REGISTRY_PATH": str(registry),
        "HOVIYAT_ISSUER": "https://pki.hoviyat.ir",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "HOVIYAT_CA_PASSPHRASE",
        "HOVIYAT_CA_PASSPHRASE_FILE",
        "HOVIYAT_CA_KEY_BACKEND",
        "HOVIYAT_CA_CRL_PARTITIONS",
    ):
        monkeypatch.delenv(name, raising=False)
    ensure_secrets(data_dir / "secrets.json")
    return data_dir


def test_attack_unaudited_ca_lifecycle_every_operation_and_refusal_is_in_the_verified_log(
    db, database_url, tmp_path, monkeypatch, synthetic_registry_path
):
    _cli_environment(tmp_path, database_url, synthetic_registry_path, monkeypatch)
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> str:
        result = runner.invoke(hoviyat_cli, ["ca", *args])
        assert (result.exit_code == 0) == ok, result.output
        return result.stdout

    invoke("init")
    invoke("rollover", "--issuing", "persons")
    invoke("rollover", "--issuing", "root", ok=False)
    csr_file = tmp_path / "organisations.csr"
    invoke("csr", "--issuing", "organisations", "--out", str(csr_file))
    chain = invoke("sign-issuing", "--csr", str(csr_file), "--online-url", "https://pki.hoviyat.ir")
    (tmp_path / "chain.pem").write_text(chain)
    weak = tmp_path / "weak.csr"
    weak.write_bytes(
        _csr(names.ca_subject("persons", 9), rsa.generate_private_key(65537, 1024)).public_bytes(
            serialization.Encoding.PEM
        )
    )
    invoke("sign-issuing", "--csr", str(weak), "--online-url", "https://pki.hoviyat.ir", ok=False)
    invoke("install-issuing", "--chain", str(tmp_path / "chain.pem"))
    invoke("install-issuing", "--chain", str(tmp_path / "chain.pem"), ok=False)
    # A CA-power certificate, through the ceremony command: audited as a ceremony.
    responder = json.loads(invoke("ocsp-responder", "--issuing", "infrastructure", "--json"))
    assert "BEGIN CERTIFICATE" in responder["certificate_pem"]
    export = tmp_path / "export.jsonl"
    result = CliRunner().invoke(audit_app, ["export", "--out", str(export)])
    assert result.exit_code == 0, result.output
    verified = CliRunner().invoke(audit_app, ["verify", str(export)])
    assert verified.exit_code == 0 and verified.stdout.startswith("OK"), verified.output
    entries = [
        line["entry"]
        for line in map(json.loads, export.read_text().splitlines())
        if line["type"] == "entry"
    ]
    lifecycle = [
        (e["operation"], e["outcome"]) for e in entries if e["event_type"] == EVENT_LIFECYCLE
    ]
    assert ("init", "created") in lifecycle
    assert lifecycle.count(("init", "created")) == 4  # root + three issuing CAs
    assert ("rollover", "created") in lifecycle
    assert ("rollover", "refused") in lifecycle
    assert ("csr", "requested") in lifecycle
    assert ("sign_issuing", "issued") in lifecycle
    assert ("sign_issuing", "refused") in lifecycle
    assert ("install_issuing", "installed") in lifecycle
    assert ("install_issuing", "refused") in lifecycle
    ceremony = [
        e
        for e in entries
        if e["event_type"] == "certificate_issued" and e["operation"] == "ocsp-responder"
    ]
    assert [e["detail"]["issuance"] for e in ceremony] == ["ceremony"]
    assert ceremony[0]["detail"]["serial"] == responder["serial"]
    assert ceremony[0]["actor_id"] not in (None, "ocsp-responder")  # the operator who ran it


# --- issue #18: a keyCompromise report that lost to an earlier reason ------------------


def _crl_reason(publisher: CRLPublisher, ca_name: str, serial: int) -> x509.ReasonFlags | None:
    crl = x509.load_der_x509_crl(publisher.current(publisher.resolve(ca_name)).der)
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def _ocsp_reason(db, hierarchy, leaf, ca) -> x509.ReasonFlags | None:
    from cryptography.x509 import ocsp

    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca.certificate, hashes.SHA1())
    der = (
        OCSPService(db, hierarchy)
        .respond(request.build().public_bytes(serialization.Encoding.DER))
        .der
    )
    answer = ocsp.load_der_ocsp_response(der)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    return answer.revocation_reason


def test_attack_key_compromise_after_superseded_is_reflected_on_crl_and_ocsp(db, tmp_path):
    hierarchy = _hierarchy(db, tmp_path)
    hierarchy.init()
    ca = hierarchy.issuing_ca("infrastructure")
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = issue_leaf(db, ca, key)
    sibling = issue_leaf(db, ca, key)
    first = revoke(db, leaf.serial_number, RevocationReason.superseded, OPERATOR)
    revoke(db, sibling.serial_number, RevocationReason.cessationOfOperation, OPERATOR)
    publisher = CRLPublisher(db, hierarchy)
    assert _crl_reason(publisher, "infrastructure", leaf.serial_number) == (
        x509.ReasonFlags.superseded
    )
    upgraded = revoke(db, leaf.serial_number, RevocationReason.keyCompromise, OPERATOR)
    assert upgraded.key_blocked and upgraded.certificate.reason is RevocationReason.keyCompromise
    # BR 7.2.2: the reason changes, the revocation date does not move later.
    assert upgraded.certificate.revoked_at == first.certificate.revoked_at
    for certificate in (leaf, sibling):
        assert _crl_reason(publisher, "infrastructure", certificate.serial_number) == (
            x509.ReasonFlags.key_compromise
        )
        assert _ocsp_reason(db, hierarchy, certificate, ca) == x509.ReasonFlags.key_compromise
    later = revoke(db, leaf.serial_number, RevocationReason.superseded, OPERATOR)
    assert later.already_revoked and later.certificate.reason is RevocationReason.keyCompromise


def test_attack_key_compromise_racing_superseded_always_ends_as_key_compromise(db, tmp_path):
    hierarchy = _hierarchy(db, tmp_path)
    hierarchy.init()
    ca = hierarchy.issuing_ca("infrastructure")
    leaves = [issue_leaf(db, ca) for _ in range(6)]
    errors: list[BaseException] = []

    def report(serial: int, reason: RevocationReason, barrier: threading.Barrier) -> None:
        own = Database(db.url)
        try:
            barrier.wait()
            revoke(own, serial, reason, OPERATOR)
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            own.dispose()

    for index, leaf in enumerate(leaves):
        barrier = threading.Barrier(2)
        reasons = [RevocationReason.superseded, RevocationReason.keyCompromise]
        if index % 2:
            reasons.reverse()
        threads = [
            threading.Thread(target=report, args=(leaf.serial_number, reason, barrier))
            for reason in reasons
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    publisher = CRLPublisher(db, hierarchy)
    with db.session() as session:
        rows = session.exec(select(CertificateRecord)).all()
        blocked = {b.spki_sha256 for b in session.exec(select(BlockedKey))}
    leaf_rows = [r for r in rows if r.profile == "backoffice-client"]
    assert {r.revocation_reason for r in leaf_rows} == {"keyCompromise"}
    assert {r.spki_sha256 for r in leaf_rows} <= blocked
    for leaf in leaves:
        assert _crl_reason(publisher, "infrastructure", leaf.serial_number) == (
            x509.ReasonFlags.key_compromise
        )
