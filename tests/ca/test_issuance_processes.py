"""Issuance across processes: serials unique by the database, and a crash mid-issuance
leaves the intent recorded.

Real processes (``multiprocessing`` spawn, a killed ``subprocess``), the real
database: PostgreSQL when ``HOVIYAT_TEST_DATABASE_URL`` is set, SQLite too.
"""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pki_helpers import ISSUER, PEPPER, make_csr
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from idp.pki.hierarchy import Hierarchy
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database
from idp.storage.models import AuditEntry

pytestmark = pytest.mark.parametrize("ca_backend", ["file"], indirect=True)
PASSPHRASE = "correct horse battery staple"  # the file-key template's, see conftest.ca_settings_for
PER_PROCESS = 150


def _issue_many(
    url: str, key_dir: str, registry_path: str, national_code: str, count: int
) -> list[str]:
    # Runs in a fresh (spawned) process: its own engine, key store and registry.
    from ca.keys import open_keystore
    from ca.settings import CASettings
    from idp.pki.registration import Pki, Request
    from idp.pki.subjects import SubjectReference
    from verifiers.registry.synthetic import SyntheticRegistry

    db = Database(url)
    keys = open_keystore(
        CASettings(key_backend="file", passphrase=PASSPHRASE, key_dir=Path(key_dir)), Path(key_dir)
    )
    registries = SyntheticRegistry(Path(registry_path)).registries()
    pki = Pki.create(db, Hierarchy(db, keys, ISSUER), registries, PEPPER)
    csr, _ = make_csr()
    request = Request(
        csr=csr,
        profile="person-authentication",
        subject=SubjectReference(national_code=national_code),
        requested_by="worker",
    )
    serials = [pki.request_certificate(request, lint=False).serial_hex for _ in range(count)]
    registries.close()
    db.dispose()
    return serials


def test_two_processes_never_duplicate_serials(
    hierarchy: Hierarchy, database_url: str, synthetic_registry_path: Path, living_person: str
) -> None:
    key_dir = str(hierarchy.keys.directory)  # type: ignore[attr-defined]
    context = multiprocessing.get_context("spawn")
    arguments = (database_url, key_dir, str(synthetic_registry_path), living_person, PER_PROCESS)
    with context.Pool(2) as pool:
        results = pool.starmap(_issue_many, [arguments, arguments])
    serials = [s for result in results for s in result]
    assert len(serials) == 2 * PER_PROCESS
    assert len(set(serials)) == len(serials)
    with hierarchy.db.session() as session:
        rows = session.exec(select(CertificateRecord)).all()
    assert sorted(r.serial_hex for r in rows) == sorted(serials)
    assert {r.status for r in rows} == {"issued"}


def test_the_database_refuses_a_duplicate_serial(hierarchy: Hierarchy, living_person: str) -> None:
    from datetime import UTC, datetime

    def row() -> CertificateRecord:
        now = datetime.now(UTC)
        return CertificateRecord(
            serial_hex="0badc0de",
            issuer_ca="persons",
            issuer_key_id="aa",
            profile="p",
            status="pending",
            subject="CN=x",
            spki_sha256="00",
            not_before=now,
            not_after=now,
            requested_by="t",
            tracking_code="T",
        )

    with hierarchy.db.session() as session:
        session.add(row())
    with pytest.raises(IntegrityError), hierarchy.db.session() as session:
        session.add(row())


CRASHING_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path[:0] = [{tests!r}]
    from pki_helpers import ISSUER, PEPPER, make_csr
    from cryptography import x509
    from ca import hierarchy as hierarchy_module
    from ca import rfc5280 as ca_rfc5280
    from idp.pki.hierarchy import Hierarchy
    from ca.keys import open_keystore
    from ca.settings import CASettings
    from idp.pki.registration import Pki, Request
    from idp.pki.subjects import SubjectReference
    from idp.storage.engine import Database
    from verifiers.registry.synthetic import SyntheticRegistry

    db = Database({url!r})
    keys = open_keystore(CASettings(key_backend="file", passphrase={passphrase!r},
                                    key_dir=Path({key_dir!r})), Path({key_dir!r}))
    pki = Pki.create(db, Hierarchy(db, keys, ISSUER),
                     SyntheticRegistry(Path({registry!r})).registries(), PEPPER)
    sign = hierarchy_module.IssuingCA.sign_tbs

    def sign_then_hang(self, tbs):
        algorithm = ca_rfc5280.signature_algorithm(self.signer.hash_algorithm())
        der = ca_rfc5280.certificate(tbs, algorithm, sign(self, tbs))
        print(format(x509.load_der_x509_certificate(der).serial_number, "x"), flush=True)
        time.sleep(120)  # the parent kills us here: signed, not yet stored

    hierarchy_module.IssuingCA.sign_tbs = sign_then_hang
    csr, _ = make_csr()
    pki.request_certificate(Request(csr=csr, profile="person-authentication",
        subject=SubjectReference(national_code={code!r}), requested_by="crasher"))
    """
)


def test_a_crash_between_signing_and_storing_leaves_the_intent(
    hierarchy: Hierarchy, database_url: str, synthetic_registry_path: Path, living_person: str
) -> None:
    script = CRASHING_CHILD.format(
        tests=str(Path(__file__).parent),
        url=database_url,
        passphrase=PASSPHRASE,
        key_dir=str(hierarchy.keys.directory),  # type: ignore[attr-defined]
        registry=str(synthetic_registry_path),
        code=living_person,
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        signed_serial = int(child.stdout.readline().strip(), 16)  # type: ignore[union-attr]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with hierarchy.db.session() as session:
        rows = session.exec(select(CertificateRecord)).all()
        audit = session.exec(select(AuditEntry)).all()
    assert len(rows) == 1
    record = rows[0]
    assert int(record.serial_hex, 16) == signed_serial
    assert record.status == "pending" and record.der is None
    assert record.requested_by == "crasher" and record.subject_hash is not None
    assert audit == []  # the issuance did not complete, so it was not announced
    # The operator gives up on it: the serial stays recorded, as failed, once.
    from datetime import timedelta

    from idp.storage.certificate_store import fail_stale_intents

    assert fail_stale_intents(hierarchy.db, timedelta(hours=1), "operator-7") == []
    assert fail_stale_intents(hierarchy.db, timedelta(0), "operator-7") == [record.serial_hex]
    assert fail_stale_intents(hierarchy.db, timedelta(0), "operator-7") == []
    with hierarchy.db.session() as session:
        failed = session.get(CertificateRecord, record.serial_hex)
        audit = session.exec(select(AuditEntry)).all()
    assert failed is not None and failed.status == "failed"
    assert [(a.event_type, a.actor_id) for a in audit] == [("certificate_failed", "operator-7")]
