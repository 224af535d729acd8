"""ACME Renewal Information, ARI (RFC 9773): when a client should renew, and ``replaces``.

A client asks ``GET <renewalInfo>/<certID>`` (unauthenticated, §4.1) and gets a
suggested window (§4.2); it renews at a random moment inside it, so renewals of
certificates issued together spread out instead of arriving at once.

The window of a good certificate opens when two thirds of its validity have
passed and closes at five sixths. Two thirds is Let's Encrypt's long-standing
"renew with a third left" (60 of 90 days), which leaves a third of the lifetime
for retries; closing at five sixths means even a client that waits for the end
of the window keeps a sixth (more than a day for the 7-day profile, a month for
the 199-day one) before expiry, and spreading over a sixth of the lifetime is
wide enough to flatten a peak. A revoked certificate gets a window that is
already over (as Boulder does): every client that polls renews at once, which
is how a mass revocation turns into early renewals rather than outages.

certID (§4.1): base64url(AKI keyIdentifier) "." base64url(the serial's DER
INTEGER content octets), no padding. Only the canonical spelling is accepted:
``replaces`` names a certificate by this string, and two spellings of one
certificate would let two orders both "replace" it past a uniqueness check.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ca.serials import serial_hex
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.storage.acme_renewal import certificate_by_issuer_serial
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database

# Out of the OpenAPI document, like /ocsp: RFC 9773 describes this resource and
# its ACME problem documents (no "title"), not Hoviyat's RFC 9457 conventions.
router = APIRouter(tags=["acme"], include_in_schema=False)

RETRY_AFTER_SECONDS = 6 * 3600  # §4.3.1 leaves it to the server; §4.2's own example value
REVOKED_RETRY_AFTER_SECONDS = 3600  # the answer will not change: poll rarely, renew now
WINDOW_START = (2, 3)  # fractions of the validity period: see the module text
WINDOW_END = (5, 6)
_MAX_CERT_ID = 200  # far above 32-octet key ids and 20-octet serials in base64url
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_KEY_ID = 32  # octets: SHA-1 (20) or SHA-256 (32) key identifiers
_MAX_SERIAL = 20  # octets, RFC 5280 §4.1.2.2
_KNOWN = ("issued", "revoked")  # pending and failed rows name nothing a client holds


@dataclass(frozen=True)
class CertId:
    """A parsed certID: the issuer's key identifier and the certificate's serial number."""

    key_identifier: bytes
    serial: int

    @property
    def issuer_key_id(self) -> str:
        return self.key_identifier.hex()  # as ``certificates.issuer_key_id`` stores it

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)

    def __str__(self) -> str:
        length = (self.serial.bit_length() + 8) // 8  # room for the sign bit: DER minimal
        return f"{_b64(self.key_identifier)}.{_b64(self.serial.to_bytes(length, 'big'))}"


class CertIdMalformed(ValueError):
    """Not a certID (§4.1): the message says why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(part: str, what: str) -> bytes:
    if not part or not _B64URL.match(part) or len(part) % 4 == 1:
        raise CertIdMalformed(f"the {what} is not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise CertIdMalformed(f"the {what} is not unpadded base64url") from None
    if _b64(data) != part:  # unused trailing bits set: a second spelling of the same octets
        raise CertIdMalformed(f"the {what} is not canonical base64url")
    return data


def parse_cert_id(text: str) -> CertId:
    """The certID ``text``, accepted only in its one canonical spelling."""
    if len(text) > _MAX_CERT_ID:
        raise CertIdMalformed("certID too long")
    parts = text.split(".")
    if len(parts) != 2:
        raise CertIdMalformed('a certID is two base64url parts joined by "."')
    key_identifier = _unb64(parts[0], "key identifier")
    serial_octets = _unb64(parts[1], "serial number")
    if len(key_identifier) > _MAX_KEY_ID:
        raise CertIdMalformed("the key identifier is too long")
    if len(serial_octets) > _MAX_SERIAL:
        raise CertIdMalformed("the serial number is longer than 20 octets")
    if serial_octets[0] & 0x80:
        raise CertIdMalformed("the serial number is negative")  # RFC 5280 §4.1.2.2: positive
    if len(serial_octets) > 1 and serial_octets[0] == 0 and not serial_octets[1] & 0x80:
        raise CertIdMalformed("the serial number is not minimally encoded (X.690 §8.3.2)")
    serial = int.from_bytes(serial_octets, "big")
    if serial == 0:
        raise CertIdMalformed("the serial number is zero")
    return CertId(key_identifier, serial)


def cert_id_of(certificate: x509.Certificate) -> str:
    """The certID of ``certificate`` (§4.1), from its AKI and serial."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    if aki.key_identifier is None:
        raise ValueError("the certificate's AKI has no keyIdentifier")
    return str(CertId(aki.key_identifier, certificate.serial_number))


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def to_dict(self) -> dict[str, str]:
        return {"start": _rfc3339(self.start), "end": _rfc3339(self.end)}


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def suggested_window(record: CertificateRecord, now: datetime) -> Window:
    """§4.2: the renewal window of the certificate ``record`` (issued or revoked)."""
    if record.status == "revoked" or record.revoked_at is not None:
        # Entirely in the past, start before end (§4.2: end after start), so a
        # client renews at the first poll.
        return Window(start=now - timedelta(hours=1), end=now - timedelta(minutes=30))
    # Validity counts both ends (RFC 5280 §4.1.2.5).
    validity = record.not_after - record.not_before + timedelta(seconds=1)
    return Window(
        start=record.not_before + validity * WINDOW_START[0] / WINDOW_START[1],
        end=record.not_before + validity * WINDOW_END[0] / WINDOW_END[1],
    )


def _known_certificate(db: Database, ca: str, cert_id: CertId) -> CertificateRecord | None:
    record = certificate_by_issuer_serial(db, cert_id.issuer_key_id, cert_id.serial_hex)
    if record is None or record.issuer_ca != ca or record.status not in _KNOWN:
        return None
    return record


def _parsed(cert_id: str) -> CertId:
    try:
        return parse_cert_id(cert_id)
    except CertIdMalformed as exc:
        raise AcmeProblem("malformed", f"invalid certID: {exc}") from None


@router.get("/acme/{ca}/renewal-info/{cert_id}", name="acme_renewal_info")
def renewal_info(ca: str, cert_id: str, request: Request) -> JSONResponse:
    """§4.1-4.2: the suggested renewal window, for anyone who holds the certificate.

    A sync route: FastAPI runs it in its thread pool, off the event loop.
    """
    parsed = _parsed(cert_id)
    db: Database = request.app.state.hoviyat.db
    record = _known_certificate(db, ca, parsed)
    if record is None:
        raise AcmeProblem("malformed", "no certificate with this certID from this CA", 404)
    now = datetime.now(UTC)
    window = suggested_window(record, now)
    retry_after = REVOKED_RETRY_AFTER_SECONDS if record.status == "revoked" else RETRY_AFTER_SECONDS
    return JSONResponse(
        {"suggestedWindow": window.to_dict()},
        headers={
            "Retry-After": str(retry_after),
            # A cache may keep it no longer than a client would wait anyway (§4.3.1).
            "Cache-Control": f"public, max-age={retry_after}",
        },
    )


# --- replaces (§5) ------------------------------------------------------------------------


def already_replaced(cert_id: str) -> AcmeProblem:
    """§5: the problem for a ``replaces`` that another order already claimed.

    The orders part raises it when its unique constraint on ``replaces`` refuses
    the second order: the certID is canonical (:func:`check_replaces`), so the
    constraint sees one spelling per certificate.
    """
    return AcmeProblem(
        "alreadyReplaced",
        f"certificate {cert_id} has already been replaced by another order",
        409,
    )


def check_replaces(
    db: Database, account: AcmeAccount, cert_id: object, names: Iterable[str] | None = None
) -> CertId:
    """§5: may ``account``'s new order name ``cert_id`` in ``replaces``?

    The certificate must exist, have been issued to this very account
    (``requested_by = "acme:<account id>"``), and, when the order's ``names``
    are given, share at least one of them. Returns the parsed certID, whose
    ``str()`` is the canonical spelling to store. Raises :class:`AcmeProblem`:
    ``malformed`` (400) for a value that is not a certID or names no
    certificate, ``unauthorized`` (403) for another account's certificate or
    one with no name in common.
    """
    if not isinstance(cert_id, str):
        raise AcmeProblem("malformed", "replaces must be a certID string")
    parsed = _parsed(cert_id)
    record = certificate_by_issuer_serial(db, parsed.issuer_key_id, parsed.serial_hex)
    if record is None or record.status not in _KNOWN:
        raise AcmeProblem("malformed", "replaces names no certificate this server issued")
    if record.requested_by != f"acme:{account.id}":
        raise AcmeProblem(
            "unauthorized", "replaces names a certificate not issued to this account", 403
        )
    if names is not None and record.der is not None:
        held = _dns_names(record.der)
        if not held & {name.lower() for name in names}:
            raise AcmeProblem(
                "unauthorized",
                "the certificate replaces names shares no identifier with this order",
                403,
            )
    return parsed


def _dns_names(der: bytes) -> set[str]:
    certificate = x509.load_der_x509_certificate(der)
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {name.lower() for name in san.value.get_values_for_type(x509.DNSName)}
