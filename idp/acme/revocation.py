"""revokeCert (RFC 8555 §7.6): by the account that ordered the certificate, or by its own key.

- Only a certificate issued through ACME at this CA, byte for byte the one
  recorded (a certificate with a borrowed serial is not it).
- Signed with ``kid``: the account that ordered it. Signed with ``jwk``: the
  certificate's own key (the JWK's thumbprint equals that of its public key),
  which is how a key holder reports a compromise without the account.
- ``reason``: the RFC 5280 codes a subscriber may ask for (CA/B Forum BR
  7.2.2: unspecified, keyCompromise, affiliationChanged, superseded,
  cessationOfOperation); any other is ``badRevocationReason``.
- Through :func:`idp.pki.revocation.revoke`, so the CRL revision, OCSP and the
  audit entry follow in one transaction; revoked before → ``alreadyRevoked``
  (unless keyCompromise now upgrades the reason, which revoke() does).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from ca.revocation import RevocationReason
from ca.serials import serial_hex
from idp.acme.order_keys import jwk_thumbprint, key_thumbprint
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmePost
from idp.pki.revocation import Actor, CertificateNotFound, RevocationRefused, revoke
from idp.storage import acme_orders as store
from idp.storage.certificate_store import certificate_record
from idp.storage.engine import Database

SUBSCRIBER_REASONS = frozenset(
    {
        RevocationReason.unspecified,
        RevocationReason.keyCompromise,
        RevocationReason.affiliationChanged,
        RevocationReason.superseded,
        RevocationReason.cessationOfOperation,
    }
)


def _certificate(payload: dict[str, Any] | None) -> tuple[bytes, x509.Certificate]:
    if payload is None or not isinstance(payload.get("certificate"), str):
        raise AcmeProblem("malformed", 'revokeCert takes {"certificate": base64url DER}')
    text: str = payload["certificate"]
    if not text or "=" in text or len(text) > 100_000:
        raise AcmeProblem("malformed", "certificate is not base64url without padding")
    try:
        der = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return der, x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise AcmeProblem("malformed", "certificate is not a DER X.509 certificate") from None


def _reason(payload: dict[str, Any]) -> RevocationReason:
    code = payload.get("reason", 0)
    # bool is an int in Python; JSON true is not a reason code.
    if not isinstance(code, int) or isinstance(code, bool):
        raise AcmeProblem("badRevocationReason", "reason must be an RFC 5280 reason code")
    try:
        reason = RevocationReason(code)
    except ValueError:
        reason = None
    if reason not in SUBSCRIBER_REASONS:
        allowed = ", ".join(f"{r.value} ({r.name})" for r in sorted(SUBSCRIBER_REASONS))
        raise AcmeProblem(
            "badRevocationReason",
            f"reason {code} is not one a subscriber may give; allowed: {allowed}",
        )
    assert reason is not None
    return reason


def _actor(post: AcmePost, certificate: x509.Certificate, order_account: str) -> Actor:
    """Who is allowed to revoke, as the audit entry names them; unauthorized otherwise."""
    if post.account is not None:
        if post.account.status != "valid" or post.account.id != order_account:
            raise AcmeProblem("unauthorized", "this account did not order this certificate", 403)
        return Actor("acme-account", f"acme:{post.account.id}", "ACME revokeCert by account")
    thumbprint = jwk_thumbprint(post.jwk or {})
    if thumbprint is None or thumbprint != key_thumbprint(certificate.public_key()):
        raise AcmeProblem(
            "unauthorized",
            "the request is signed neither by the account nor the certificate key",
            403,
        )
    return Actor(
        "acme-certificate-key", f"acme-key:{thumbprint}", "ACME revokeCert by certificate key"
    )


def revoke_certificate(db: Database, post: AcmePost, ca: str) -> None:
    """Revoke as §7.6 says; raises :class:`AcmeProblem` for every refusal (nothing written)."""
    payload = post.payload
    der, certificate = _certificate(payload)
    assert payload is not None
    reason = _reason(payload)
    serial = serial_hex(certificate.serial_number)
    with db.read() as session:
        order = store.order_of_certificate(session, ca, serial)
    record = certificate_record(db, serial)
    if order is None or record is None or record.der != der:
        raise AcmeProblem("malformed", "no certificate issued through ACME here is this one", 404)
    actor = _actor(post, certificate, order.account_id)
    try:
        outcome = revoke(db, certificate.serial_number, reason, actor, now=datetime.now(UTC))
    except CertificateNotFound:
        raise AcmeProblem("malformed", "no certificate issued here is this one", 404) from None
    except RevocationRefused as refusal:
        raise AcmeProblem("badRevocationReason", str(refusal)) from None
    if outcome.already_revoked:
        raise AcmeProblem(
            "alreadyRevoked",
            f"certificate {serial} was revoked before ({record.revocation_reason})",
        )
