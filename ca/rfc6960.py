"""OCSP (RFC 6960): parsing requests and building signed responses.

Requests arrive as a DER body (POST, section A.1) or base64 in the URL path
(GET, section A.1); both land in ``parse_request``, which answers with an
``OCSPRequest`` or raises ``MalformedRequest``. Certificate IDs may be hashed
with SHA-1 (what OpenSSL and most clients send), SHA-256, SHA-384 or SHA-512;
``Responder.serves`` recognises its issuing CA under each. The nonce extension
(section 4.4.1) is echoed byte for byte; RFC 9654 caps it at 32 octets and
has a longer or empty one refused as malformedRequest.

A ``Responder`` is one issuing CA's delegated responder: a certificate issued
by that CA with id-kp-OCSPSigning and id-pkix-ocsp-nocheck (section 4.2.2.2),
and the key that signs the BasicOCSPResponse. Deciding each certificate's
status is the caller's business: this module only encodes and signs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from urllib.parse import unquote

from asn1crypto import core, ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.crl import Signer, signature_algorithm, subject_der
from ca.der import generalized_time, tlv
from ca.revocation import RevocationReason

MAX_NONCE_OCTETS = 32  # RFC 9654 section 2.1
MIN_NONCE_OCTETS = 1
MAX_CERT_IDS = 16
"""More certificate IDs than this in one request is refused: each costs a lookup."""

HASH_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


class ResponseStatus(Enum):
    """OCSPResponseStatus (section 4.2.1), as asn1crypto names them."""

    successful = "successful"
    malformed_request = "malformed_request"
    internal_error = "internal_error"
    try_later = "try_later"
    unauthorized = "unauthorized"


class MalformedRequest(ValueError):
    """The bytes are not an OCSP request this responder can read (answer malformedRequest)."""


@dataclass(frozen=True, slots=True)
class CertId:
    """A certificate ID as the client hashed it; echoed unchanged in the response."""

    hash_algorithm: str
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    der: bytes


@dataclass(frozen=True, slots=True)
class OCSPRequest:
    cert_ids: tuple[CertId, ...]
    nonce_extension: bytes | None
    """The nonce's extnValue contents as sent, to be echoed exactly; None without a nonce."""


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    """good, revoked (with time and reason) or unknown (the serial was never issued)."""

    state: str
    revoked_at: datetime | None = None
    reason: RevocationReason | None = None

    @classmethod
    def good(cls) -> CertificateStatus:
        return cls("good")

    @classmethod
    def unknown(cls) -> CertificateStatus:
        return cls("unknown")

    @classmethod
    def revoked(cls, revoked_at: datetime, reason: RevocationReason) -> CertificateStatus:
        return cls("revoked", revoked_at, reason)


# --- requests ---------------------------------------------------------------


def decode_get_path(encoded: str) -> bytes:
    """The DER request from a GET path: percent-decoded, then base64 (section A.1).

    Clients differ in what they escape, so '+', '/' and '=' may come raw or
    escaped, the URL-safe alphabet is accepted too, and missing padding is added.
    """
    text = unquote(encoded).strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedRequest("the GET path is not base64 of a DER OCSP request") from exc


def _nonce(request: ocsp.TBSRequest) -> bytes | None:
    extensions = request["request_extensions"]
    if not extensions:
        return None
    for extension in extensions:
        if extension["extn_id"].dotted == "1.3.6.1.5.5.7.48.1.2":
            raw = extension["extn_value"].contents
            # RFC 9654: Nonce ::= OCTET STRING (SIZE(1..32)) inside extnValue.
            # Some old clients put the bare bytes there; measure those as sent.
            try:
                inner = core.OctetString.load(raw).native
                length = len(inner)
            except (ValueError, TypeError):
                length = len(raw)
            if not MIN_NONCE_OCTETS <= length <= MAX_NONCE_OCTETS:
                raise MalformedRequest(
                    f"nonce of {length} octets; RFC 9654 allows 1 to {MAX_NONCE_OCTETS}"
                )
            return bytes(raw)
    return None


class _Unusual(Exception):
    """The request is not in the common shape: let asn1crypto judge it."""


def _tlv_at(data: bytes, position: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``position``."""
    if position + 2 > end:
        raise _Unusual
    tag, first = data[position], data[position + 1]
    position += 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 3 or position + count > end or data[position] == 0:
            raise _Unusual
        size = int.from_bytes(data[position : position + count], "big")
        if size < 0x80:
            raise _Unusual  # not the shortest form: DER forbids it
        position += count
    if position + size > end:
        raise _Unusual
    return tag, position, position + size


_HASH_OIDS = {
    bytes.fromhex("2b0e03021a"): "sha1",
    bytes.fromhex("608648016503040201"): "sha256",
    bytes.fromhex("608648016503040202"): "sha384",
    bytes.fromhex("608648016503040203"): "sha512",
}
_NONCE_OID = bytes.fromhex("2b0601050507300102")


def _parse_common(der: bytes) -> tuple[list[CertId], bytes | None]:
    """The shape every client sends (OpenSSL, browsers, Go, Java), read without a library.

    Version absent, no requestor name, no signature, CertIDs with a known hash
    and no per-request extensions; anything else raises _Unusual and goes to
    asn1crypto. Reading this shape directly costs a few microseconds.
    """
    tag, start, end = _tlv_at(der, 0, len(der))
    if tag != 0x30 or end != len(der):
        raise _Unusual
    tag, start, tbs_end = _tlv_at(der, start, end)
    if tag != 0x30 or tbs_end != end:
        raise _Unusual
    tag, position, list_end = _tlv_at(der, start, tbs_end)
    if tag != 0x30:
        raise _Unusual
    cert_ids = []
    while position < list_end:
        tag, request_start, request_end = _tlv_at(der, position, list_end)
        if tag != 0x30:
            raise _Unusual
        tag, cert_start, cert_end = _tlv_at(der, request_start, request_end)
        if tag != 0x30 or cert_end != request_end:
            raise _Unusual
        tag, algorithm_start, algorithm_end = _tlv_at(der, cert_start, cert_end)
        tag_oid, oid_start, oid_end = _tlv_at(der, algorithm_start, algorithm_end)
        algorithm = _HASH_OIDS.get(der[oid_start:oid_end])
        if tag != 0x30 or tag_oid != 0x06 or algorithm is None:
            raise _Unusual
        if oid_end != algorithm_end and der[oid_end:algorithm_end] != b"\x05\x00":
            raise _Unusual
        tag_name, name_start, name_end = _tlv_at(der, algorithm_end, cert_end)
        tag_key, key_start, key_end = _tlv_at(der, name_end, cert_end)
        tag_serial, serial_start, serial_end = _tlv_at(der, key_end, cert_end)
        if (tag_name, tag_key, tag_serial) != (0x04, 0x04, 0x02) or serial_end != cert_end:
            raise _Unusual
        serial = der[serial_start:serial_end]
        if not serial or (
            len(serial) > 1 and serial[0] in (0, 0xFF) and (serial[0] ^ serial[1]) < 0x80
        ):
            raise _Unusual  # empty or non-minimal INTEGER
        cert_ids.append(
            CertId(
                algorithm,
                der[name_start:name_end],
                der[key_start:key_end],
                int.from_bytes(serial, "big", signed=True),
                der[request_start:cert_end],
            )
        )
        position = request_end
    nonce = None
    if list_end != tbs_end:
        tag, extensions_start, extensions_end = _tlv_at(der, list_end, tbs_end)
        if tag != 0xA2 or extensions_end != tbs_end:
            raise _Unusual
        tag, position, sequence_end = _tlv_at(der, extensions_start, extensions_end)
        if tag != 0x30 or sequence_end != extensions_end:
            raise _Unusual
        while position < sequence_end:
            tag, extension_start, extension_end = _tlv_at(der, position, sequence_end)
            tag_oid, oid_start, oid_end = _tlv_at(der, extension_start, extension_end)
            tag_value, value_start, value_end = _tlv_at(der, oid_end, extension_end)
            if tag != 0x30 or tag_oid != 0x06 or tag_value != 0x04 or value_end != extension_end:
                raise _Unusual  # a critical flag or something odd: asn1crypto decides
            if der[oid_start:oid_end] == _NONCE_OID and nonce is None:
                nonce = der[value_start:value_end]
                tag, inner_start, inner_end = _tlv_at(nonce, 0, len(nonce))
                if tag != 0x04 or inner_end != len(nonce):
                    raise _Unusual
                length = inner_end - inner_start
                if not MIN_NONCE_OCTETS <= length <= MAX_NONCE_OCTETS:
                    raise MalformedRequest(
                        f"nonce of {length} octets; RFC 9654 allows 1 to {MAX_NONCE_OCTETS}"
                    )
            position = extension_end
    return cert_ids, nonce


def parse_request(der: bytes) -> OCSPRequest:
    """An OCSPRequest from its DER encoding; MalformedRequest for anything else."""
    if not der:
        raise MalformedRequest("empty OCSP request")
    try:
        cert_ids, nonce = _parse_common(der)
    except _Unusual:
        cert_ids, nonce = _parse_with_asn1crypto(der)
    if not cert_ids:
        raise MalformedRequest("the request lists no certificate")
    if len(cert_ids) > MAX_CERT_IDS:
        raise MalformedRequest(
            f"{len(cert_ids)} certificates in one request; at most {MAX_CERT_IDS}"
        )
    return OCSPRequest(tuple(cert_ids), nonce)


def _parse_with_asn1crypto(der: bytes) -> tuple[list[CertId], bytes | None]:
    try:
        request = ocsp.OCSPRequest.load(der, strict=True)
        tbs = request["tbs_request"]
        if tbs["version"].native != "v1":
            raise MalformedRequest("only OCSP version 1 requests exist")
        cert_ids = []
        for item in tbs["request_list"]:
            cert_id = item["req_cert"]
            cert_ids.append(
                CertId(
                    hash_algorithm=cert_id["hash_algorithm"]["algorithm"].native,
                    issuer_name_hash=cert_id["issuer_name_hash"].native,
                    issuer_key_hash=cert_id["issuer_key_hash"].native,
                    serial=cert_id["serial_number"].native,
                    der=cert_id.dump(),
                )
            )
        nonce = _nonce(tbs)
    except MalformedRequest:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        # asn1crypto's messages span lines ("while parsing ..."): logs get one line.
        raise MalformedRequest(f"not a DER OCSP request: {' '.join(str(exc).split())}") from exc
    return cert_ids, nonce


# --- responses --------------------------------------------------------------


def _key_bits(certificate: x509.Certificate) -> bytes:
    spki = asn1_x509.PublicKeyInfo.load(
        certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return bytes(spki["public_key"].contents[1:])  # the BIT STRING's value, no unused-bits octet


class Responder:
    """One issuing CA's delegated OCSP responder."""

    def __init__(
        self, issuer: x509.Certificate, certificate: x509.Certificate, signer: Signer
    ) -> None:
        self.issuer = issuer
        self.certificate = certificate
        self.signer = signer
        name = subject_der(issuer)
        key = _key_bits(issuer)
        self._hashes = {
            algorithm: (hashlib.new(algorithm, name).digest(), hashlib.new(algorithm, key).digest())
            for algorithm in HASH_ALGORITHMS
        }
        # responderID byKey [2] EXPLICIT KeyHash: SHA-1 of the responder's key (section 4.2.1)
        key_hash = hashlib.sha1(_key_bits(certificate), usedforsecurity=False).digest()
        self._responder_id = tlv(0xA2, tlv(0x04, key_hash))
        # certs [0] EXPLICIT SEQUENCE OF Certificate: the responder's own certificate
        self._certs = tlv(0xA0, tlv(0x30, certificate.public_bytes(serialization.Encoding.DER)))
        self._algorithm = signature_algorithm(signer.public_key()).dump()

    def issuer_hashes(self, algorithm: str) -> tuple[str, bytes, bytes]:
        """(algorithm, issuerNameHash, issuerKeyHash) of the CertIDs this responder answers."""
        name_hash, key_hash = self._hashes[algorithm]
        return algorithm, name_hash, key_hash

    def serves(self, cert_id: CertId) -> bool:
        """Whether the ID names this responder's issuing CA (by name and key hash)."""
        expected = self._hashes.get(cert_id.hash_algorithm)
        return expected == (cert_id.issuer_name_hash, cert_id.issuer_key_hash)

    def respond(
        self,
        answers: Sequence[tuple[CertId, CertificateStatus]],
        *,
        produced_at: datetime,
        next_update: datetime,
        nonce_extension: bytes | None = None,
    ) -> bytes:
        """A successful, signed OCSPResponse (DER) with one SingleResponse per ID.

        Encoded by hand (section 4.2.1 structures, DER): the fixed parts are
        encoded once per responder, so an answer costs little beyond its signature.
        """
        produced = generalized_time(produced_at)
        # thisUpdate = producedAt; nextUpdate is [0] EXPLICIT
        times = produced + tlv(0xA0, generalized_time(next_update))
        responses = b"".join(
            tlv(0x30, cert_id.der + _cert_status(status) + times) for cert_id, status in answers
        )
        data = self._responder_id + produced + tlv(0x30, responses)
        if nonce_extension is not None:
            # responseExtensions [1] EXPLICIT; the nonce's extnValue echoed byte for byte
            data += tlv(0xA1, tlv(0x30, tlv(0x30, _OID_NONCE + tlv(0x04, nonce_extension))))
        tbs = tlv(0x30, data)
        signature = self.signer.sign(tbs)
        basic = tlv(0x30, tbs + self._algorithm + tlv(0x03, b"\x00" + signature) + self._certs)
        return tlv(0x30, _SUCCESSFUL + tlv(0xA0, tlv(0x30, _OID_BASIC + tlv(0x04, basic))))


_OID_NONCE = bytes.fromhex("06092b0601050507300102")  # id-pkix-ocsp-nonce
_OID_BASIC = bytes.fromhex("06092b0601050507300101")  # id-pkix-ocsp-basic
_SUCCESSFUL = bytes.fromhex("0a0100")  # OCSPResponseStatus successful (0)
_GOOD = bytes.fromhex("8000")  # [0] IMPLICIT NULL
_UNKNOWN = bytes.fromhex("8200")  # [2] IMPLICIT NULL


def _cert_status(status: CertificateStatus) -> bytes:
    if status.state == "good":
        return _GOOD
    if status.state == "unknown":
        return _UNKNOWN
    assert status.revoked_at is not None
    info = generalized_time(status.revoked_at)
    if status.reason not in (None, RevocationReason.unspecified):
        # Like the CRL entry: an unspecified reason is left out (RFC 5280 5.3.1).
        info += tlv(0xA0, tlv(0x0A, bytes((int(status.reason),))))
    return tlv(0xA1, info)  # revoked [1] IMPLICIT RevokedInfo


_ERROR_RESPONSES: dict[ResponseStatus, bytes] = {
    status: ocsp.OCSPResponse({"response_status": status.value}).dump()
    for status in ResponseStatus
    if status is not ResponseStatus.successful
}


def error_response(status: ResponseStatus) -> bytes:
    """An unsigned OCSPResponse with only a status (section 4.2.1): malformedRequest etc."""
    return _ERROR_RESPONSES[status]
