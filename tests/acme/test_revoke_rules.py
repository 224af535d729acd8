"""revokeCert's rules (RFC 8555 §7.6) below HTTP, on SQLite and PostgreSQL, from the
attacker's side: certificates that did not come through ACME here, a forged certificate
carrying an ACME certificate's serial, reasons a subscriber may not give, accounts that
did not order it, keys that are not the certificate's."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from acme_pki_support import (
    acme_pki,  # noqa: F401  (fixture)
    issue_tls,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc import jwk
from orders_support import PEPPER, account, csr_der, ready_order

from ca.serials import serial_hex
from idp.acme.finalize import finalize
from idp.acme.paths import AcmePaths
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount, AcmePost
from idp.acme.revocation import revoke_certificate
from idp.pki.registration import Pki
from idp.storage.certificate_store import certificate_record
from idp.storage.engine import Database

PATHS = AcmePaths(base="https://pki.hoviyat.ir", ca="infrastructure")
NAMES = ("www.tax.example.com",)


@pytest.fixture
def pki(acme_pki: Pki) -> Pki:  # noqa: F811  (the fixture imported above)
    return acme_pki


def _b64(der: bytes) -> str:
    return base64.urlsafe_b64encode(der).rstrip(b"=").decode()


def _post(payload: dict[str, Any], who: AcmeAccount | None = None, key: Any = None) -> AcmePost:
    public_jwk = None if key is None else dict(jwk.ECKey.import_key(key.public_key()).as_dict())
    return AcmePost(
        paths=PATHS,
        url=PATHS.revoke_cert,
        payload=payload,
        raw_payload=b"",
        protected={},
        account=who,
        jwk=public_jwk,
    )


def _acme_certificate(db: Database, pki: Pki, who: AcmeAccount) -> tuple[x509.Certificate, Any]:
    order = ready_order(db, who, NAMES)
    der, key = csr_der(NAMES)
    done, _ = asyncio.run(
        finalize(db, pki, who, PEPPER, order.id, "infrastructure", {"csr": _b64(der)})
    )
    assert done.certificate_serial is not None
    record = certificate_record(db, done.certificate_serial)
    assert record is not None and record.der is not None
    return x509.load_der_x509_certificate(record.der), key


def _refused(db: Database, post: AcmePost, ca: str = "infrastructure") -> AcmeProblem:
    with pytest.raises(AcmeProblem) as refused:
        revoke_certificate(db, post, ca)
    return refused.value


def _payload(certificate: x509.Certificate, **extra: Any) -> dict[str, Any]:
    return {"certificate": _b64(certificate.public_bytes(Encoding.DER)), **extra}


def _status(db: Database, certificate: x509.Certificate) -> str:
    record = certificate_record(db, serial_hex(certificate.serial_number))
    assert record is not None
    return record.status


@pytest.mark.parametrize("reason", [2, 6, 7, 8, 9, 10, 11, -1, True, "1", 1.0, None])
def test_attack_reason_a_subscriber_may_not_give_is_refused(
    db: Database, pki: Pki, reason: object
) -> None:
    who = account()
    certificate, _ = _acme_certificate(db, pki, who)
    problem = _refused(db, _post(_payload(certificate, reason=reason), who))
    assert problem.error == "badRevocationReason"
    assert _status(db, certificate) == "issued"


@pytest.mark.parametrize("reason", [0, 1, 3, 4, 5])
def test_subscriber_reasons_revoke(db: Database, pki: Pki, reason: int) -> None:
    who = account()
    certificate, _ = _acme_certificate(db, pki, who)
    revoke_certificate(db, _post(_payload(certificate, reason=reason), who), "infrastructure")
    assert _status(db, certificate) == "revoked"


def test_attack_certificate_issued_outside_acme_is_not_revocable_here(
    db: Database, pki: Pki
) -> None:
    who = account()
    _acme_certificate(db, pki, who)  # the account has an ACME certificate, just not this one
    operator_issued = issue_tls(pki, NAMES, "operator-1", profile="tls-server")
    problem = _refused(db, _post(_payload(operator_issued.certificate), who))
    assert problem.status == 404
    assert _status(db, operator_issued.certificate) == "issued"


def test_attack_forged_certificate_with_an_acme_serial_is_refused(db: Database, pki: Pki) -> None:
    who = account()
    genuine, _ = _acme_certificate(db, pki, who)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "forged")])
    now = datetime.now(UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(genuine.issuer)
        .public_key(key.public_key())
        .serial_number(genuine.serial_number)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    # Signed by its own key, sent with that key: it is still not the certificate issued.
    problem = _refused(db, _post(_payload(forged), key=key))
    assert problem.status == 404
    assert _status(db, genuine) == "issued"


def test_attack_revocation_at_another_ca_path_is_refused(db: Database, pki: Pki) -> None:
    who = account()
    certificate, _ = _acme_certificate(db, pki, who)
    assert _refused(db, _post(_payload(certificate), who), ca="organisations").status == 404
    assert _status(db, certificate) == "issued"


def test_attack_another_account_or_an_unrelated_key_cannot_revoke(db: Database, pki: Pki) -> None:
    who = account()
    certificate, _ = _acme_certificate(db, pki, who)
    assert _refused(db, _post(_payload(certificate), account())).error == "unauthorized"
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert _refused(db, _post(_payload(certificate), key=stranger)).error == "unauthorized"
    deactivated = AcmeAccount(**{**who.__dict__, "status": "deactivated"})
    assert _refused(db, _post(_payload(certificate), deactivated)).error == "unauthorized"
    assert _status(db, certificate) == "issued"


def test_certificate_key_revokes_and_a_second_time_is_already_revoked(
    db: Database, pki: Pki
) -> None:
    who = account()
    certificate, key = _acme_certificate(db, pki, who)
    revoke_certificate(db, _post(_payload(certificate, reason=1), key=key), "infrastructure")
    assert _status(db, certificate) == "revoked"
    again = _refused(db, _post(_payload(certificate, reason=1), who))
    assert again.error == "alreadyRevoked"


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"certificate": 1}, {"certificate": "!!"}, {"certificate": _b64(b"not DER")}],
)
def test_malformed_revocation_requests(db: Database, payload: dict[str, Any] | None) -> None:
    post = AcmePost(PATHS, PATHS.revoke_cert, payload, b"", {}, account(), None)
    assert _refused(db, post).error == "malformed"
