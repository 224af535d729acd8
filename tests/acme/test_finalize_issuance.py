"""Finalize (RFC 8555 §7.4) against a real CA hierarchy, on SQLite and PostgreSQL, from the
attacker's side: CSRs that ask for more or fewer names than were proven, finalize before
the order is ready, by another account, twice at once; and what is issued verifies with
``openssl verify`` and lints clean with pkilint's CA/B Forum server-auth linter."""

from __future__ import annotations

import asyncio
import base64
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from acme_pki_support import acme_pki  # noqa: F401  (fixture)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from orders_support import (
    account,
    csr_der,
    new_order,
    openssl_verify,
    pkilint_serverauth,
    ready_order,
    write_pem,
)
from sqlmodel import select

from idp.acme.finalize import finalize
from idp.acme.order_certificates import certificate_chain_pem
from idp.acme.order_keys import key_thumbprint
from idp.acme.orders import owned_order, settle
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.pki.registration import Pki
from idp.storage import acme_orders as store
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database
from idp.storage.models import AuditEntry


@pytest.fixture
def pki(acme_pki: Pki) -> Pki:  # noqa: F811  (the fixture imported above)
    return acme_pki


NAMES = ("www.tax.example.com", "api.tax.example.com")
PEPPER = b"p" * 32


def _b64(der: bytes) -> str:
    return base64.urlsafe_b64encode(der).rstrip(b"=").decode()


def _finalize(
    db: Database, pki: Pki, who: AcmeAccount, order_id: str, payload: dict[str, Any] | None
) -> Any:
    return asyncio.run(finalize(db, pki, who, PEPPER, order_id, "infrastructure", payload))


def _refused(
    db: Database, pki: Pki, who: AcmeAccount, order_id: str, payload: dict[str, Any] | None
) -> AcmeProblem:
    with pytest.raises(AcmeProblem) as refused:
        _finalize(db, pki, who, order_id, payload)
    return refused.value


def _certificates(db: Database) -> list[CertificateRecord]:
    with db.read() as session:
        return list(
            session.exec(select(CertificateRecord).where(CertificateRecord.profile == "tls-server"))
        )


def _status(db: Database, who: AcmeAccount, order_id: str) -> str:
    return owned_order(db, order_id, who, "infrastructure")[0].status


def test_finalize_issues_exactly_the_order_names_and_the_chain_verifies(
    db: Database,
    pki: Pki,
    tmp_path: Path,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der(tuple(reversed(NAMES)), common_name=NAMES[0])
    done, authz_ids = _finalize(db, pki, who, order.id, {"csr": _b64(der)})
    assert done.status == "valid" and done.certificate_serial and len(authz_ids) == 2
    [record] = _certificates(db)
    assert record.serial_hex == done.certificate_serial
    assert record.requested_by == f"acme:{who.id}"
    pem = certificate_chain_pem(db, pki, record.serial_hex, who, "infrastructure")
    certificates = x509.load_pem_x509_certificates(pem.encode())
    leaf = certificates[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(NAMES)
    # Leaf then the issuing CA; the root is the relying party's, never sent.
    assert len(certificates) == 2 and all(c.issuer != c.subject for c in certificates)
    root = pki.hierarchy.issuing_ca("infrastructure").chain[-1]
    verified = openssl_verify(tmp_path, pem, root)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    linted = pkilint_serverauth(write_pem(tmp_path / "leaf-only.pem", [leaf]))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    # Audited with the entity, beside the CA's own certificate_issued entry.
    with db.read() as session:
        events = {e.event_type: e for e in session.exec(select(AuditEntry))}
    assert events["acme_order_finalized"].detail["serial"] == record.serial_hex
    assert events["acme_order_finalized"].detail["national_id"] == who.national_id
    assert events["certificate_issued"].actor_id == f"acme:{who.id}"


def test_attack_finalize_csr_with_an_extra_name_is_bad_csr(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der((*NAMES, "www.bank.example.net"))
    problem = _refused(db, pki, who, order.id, {"csr": _b64(der)})
    assert problem.error == "badCSR" and "www.bank.example.net" in problem.detail
    assert _status(db, who, order.id) == "ready"  # a corrected CSR may follow
    assert _certificates(db) == []
    with db.read() as session:
        [refusal] = session.exec(
            select(AuditEntry).where(AuditEntry.event_type == "acme_order_finalized")
        )
    assert (refusal.outcome, refusal.detail["reason"]) == ("refused", "badCSR")
    assert refusal.actor_id == f"acme:{who.id}" and refusal.detail["national_id"] == who.national_id


def test_attack_finalize_csr_with_an_extra_name_in_the_common_name_is_bad_csr(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der(NAMES, common_name="www.bank.example.net")
    assert _refused(db, pki, who, order.id, {"csr": _b64(der)}).error == "badCSR"
    assert _certificates(db) == []


def test_attack_finalize_csr_missing_a_name_is_bad_csr(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der(NAMES[:1])
    problem = _refused(db, pki, who, order.id, {"csr": _b64(der)})
    assert problem.error == "badCSR" and NAMES[1] in problem.detail
    assert _certificates(db) == []


def test_attack_finalize_csr_with_a_broken_signature_is_bad_csr(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der(NAMES)
    tampered = der[:-1] + bytes([der[-1] ^ 1])
    assert _refused(db, pki, who, order.id, {"csr": _b64(tampered)}).error == "badCSR"
    assert _refused(db, pki, who, order.id, {"csr": "not base64!"}).error == "badCSR"
    assert _refused(db, pki, who, order.id, {"csr": _b64(b"junk")}).error == "badCSR"
    assert _certificates(db) == []


def test_attack_finalize_csr_with_a_weak_key_is_bad_csr(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    weak = rsa.generate_private_key(65537, 1024)
    der, _ = csr_der(NAMES, key=weak)
    problem = _refused(db, pki, who, order.id, {"csr": _b64(der)})
    assert problem.error == "badCSR" and "1024" in problem.detail
    assert _status(db, who, order.id) == "ready"


def test_attack_finalize_csr_with_the_account_key_is_bad_csr(
    db: Database,
    pki: Pki,
) -> None:
    der, key = csr_der(NAMES)
    thumbprint = key_thumbprint(key.public_key())
    assert thumbprint is not None
    who = account()
    who = AcmeAccount(**{**who.__dict__, "jwk_thumbprint": thumbprint})
    order = ready_order(db, who, NAMES)
    problem = _refused(db, pki, who, order.id, {"csr": _b64(der)})
    assert problem.error == "badCSR" and "account key" in problem.detail


def test_attack_finalize_before_ready_is_order_not_ready(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order, _ = new_order(db, who, NAMES)
    der, _ = csr_der(NAMES)
    problem = _refused(db, pki, who, order.id, {"csr": _b64(der)})
    assert (problem.error, problem.status) == ("orderNotReady", 403)
    assert _certificates(db) == []


def test_attack_another_account_cannot_finalize_or_download(
    db: Database,
    pki: Pki,
) -> None:
    who, thief = account(), account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der(NAMES)
    assert _refused(db, pki, thief, order.id, {"csr": _b64(der)}).status == 404
    assert _status(db, who, order.id) == "ready" and _certificates(db) == []
    done, _ = _finalize(db, pki, who, order.id, {"csr": _b64(der)})
    with pytest.raises(AcmeProblem) as refused:
        certificate_chain_pem(db, pki, done.certificate_serial, thief, "infrastructure")
    assert refused.value.status == 404
    with pytest.raises(AcmeProblem):
        certificate_chain_pem(db, pki, done.certificate_serial, who, "organisations")


def test_attack_finalize_twice_at_once_issues_one_certificate(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    racers = 6
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []

    def race() -> None:
        der, _ = csr_der(NAMES)
        barrier.wait()
        try:
            done, _ = _finalize(db, pki, who, order.id, {"csr": _b64(der)})
            outcomes.append(done.status)
        except AcmeProblem as problem:
            outcomes.append(problem.error)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["orderNotReady"] * (racers - 1) + ["valid"]
    assert len(_certificates(db)) == 1
    with db.read() as session:
        finalized = list(
            session.exec(select(AuditEntry).where(AuditEntry.event_type == "acme_order_finalized"))
        )
    assert len(finalized) == 1


def test_finalize_of_a_valid_order_again_is_refused(
    db: Database,
    pki: Pki,
) -> None:
    who = account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der(NAMES)
    _finalize(db, pki, who, order.id, {"csr": _b64(der)})
    assert _refused(db, pki, who, order.id, {"csr": _b64(der)}).error == "orderNotReady"
    assert len(_certificates(db)) == 1


def test_issuance_abandoned_after_the_signature_was_recorded_settles_valid(
    db: Database,
    pki: Pki,
) -> None:
    """A worker that died between the certificate being recorded and the order being
    updated: the order follows the certificates table, not the worker."""
    who = account()
    order = ready_order(db, who, NAMES)
    der, _ = csr_der(NAMES)
    done, _ = _finalize(db, pki, who, order.id, {"csr": _b64(der)})
    serial, tracking_code = done.certificate_serial, done.tracking_code
    now = datetime.now(UTC)
    with db.session() as session:  # put it back as the dead worker left it
        assert store.move_order(
            session,
            order.id,
            ("valid",),
            status="processing",
            certificate_serial=None,
            processing_until=now,
        )
    with db.session() as session:
        found = store.get_order(session, order.id)
        assert found is not None and found.tracking_code == tracking_code
        settled = settle(session, found, now + timedelta(seconds=1))
    assert (settled.status, settled.certificate_serial) == ("valid", serial)
