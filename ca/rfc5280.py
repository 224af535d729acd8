"""End-entity certificates assembled as DER by hand (RFC 5280 section 4.1).

Every leaf of one profile from one CA key shares most of its bytes: version,
signature algorithm, issuer and all but a few extensions. ``cryptography``'s
builder re-encodes all of them from Python objects for each certificate and
parses the signed result back, which costs several times the signature. Here
the shared parts are encoded once (from the same ``cryptography`` extension
objects, through their own ``public_bytes``) and each certificate only adds its
serial, validity, subject, key and the per-certificate extensions; the tests
check the bytes against ``cryptography``'s builder for every profile.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from asn1crypto.core import ObjectIdentifier
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID

from ca.der import integer, tlv, x509_time

VERSION_3 = b"\xa0\x03\x02\x01\x02"  # 4.1.2.1: [0] EXPLICIT INTEGER 2
_CRITICAL = b"\x01\x01\xff"  # BOOLEAN TRUE; FALSE is the DEFAULT, so DER leaves it out
# RFC 5758 section 3.2: ecdsa-with-SHA*, parameters absent.
_ECDSA_WITH = {
    hashes.SHA256.name: "1.2.840.10045.4.3.2",
    hashes.SHA384.name: "1.2.840.10045.4.3.3",
    hashes.SHA512.name: "1.2.840.10045.4.3.4",
}
_SKI_PREFIX = bytes.fromhex("301d0603551d0e04160414")  # 4.2.1.2: extnID, OCTET STRING { 20 }


def signature_algorithm(hash_algorithm: hashes.HashAlgorithm) -> bytes:
    """The AlgorithmIdentifier of an ECDSA CA key's signatures (4.1.1.2, 4.1.2.3)."""
    return tlv(0x30, ObjectIdentifier(_ECDSA_WITH[hash_algorithm.name]).dump())


def extension(value: x509.ExtensionType, critical: bool = False) -> bytes:
    """One Extension (4.1.2.9): extnID, critical only when TRUE, extnValue."""
    body = ObjectIdentifier(value.oid.dotted_string).dump()
    if critical:
        body += _CRITICAL
    return tlv(0x30, body + tlv(0x04, value.public_bytes()))


def authority_information_access(
    *, ocsp: str | None = None, ca_issuers: str | None = None
) -> x509.AuthorityInformationAccess:
    """AIA (4.2.2.1): where to ask for status (OCSP first), where the issuer is published."""
    access = [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, url in (
            (AuthorityInformationAccessOID.OCSP, ocsp),
            (AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers),
        )
        if url is not None
    ]
    return x509.AuthorityInformationAccess(access)


def crl_distribution_points(url: str) -> x509.CRLDistributionPoints:
    """CDP (4.2.1.13): one full-name URI, every reason, the certificate's issuer signs the CRL."""
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return x509.CRLDistributionPoints([point])


def subject_key_identifier(key_id: bytes) -> bytes:
    if len(key_id) != 20:
        raise ValueError("a method-1 key identifier is a 20-byte SHA-1")
    return _SKI_PREFIX + key_id


@lru_cache(maxsize=64)
def validity(not_before: datetime, not_after: datetime) -> bytes:
    """Validity (4.1.2.5); a batch's certificates of one profile share theirs."""
    return tlv(0x30, x509_time(not_before) + x509_time(not_after))


def tbs_certificate(
    *,
    serial: int,
    signature: bytes,
    issuer: bytes,
    not_before: datetime,
    not_after: datetime,
    subject: bytes,
    spki: bytes,
    extensions: bytes,
) -> bytes:
    """TBSCertificate (4.1.2) from DER parts; ``extensions`` is the concatenated Extension list."""
    body = b"".join(
        (
            VERSION_3,
            integer(serial),
            signature,
            issuer,
            validity(not_before, not_after),
            subject,
            spki,
            tlv(0xA3, tlv(0x30, extensions)) if extensions else b"",
        )
    )
    return tlv(0x30, body)


def certificate(tbs: bytes, signature_algorithm: bytes, signature: bytes) -> bytes:
    """Certificate (4.1.1): the signature value as a BIT STRING with no unused bits."""
    return tlv(0x30, tbs + signature_algorithm + tlv(0x03, b"\x00" + signature))


def _header(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``offset`` (X.690 8.1, definite form).

    ValueError, never IndexError, for anything that is not a whole TLV there.
    """
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[offset]
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        # X.690 8.1.3.5: 0x80 is the indefinite form (not DER), 0xFF is reserved.
        if count == 0 or count == 0x7F or start + count > len(data):
            raise ValueError("not a definite DER length")
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + size
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, start, end


def subject_public_key(spki: bytes) -> bytes:
    """The subjectPublicKey bits of a SubjectPublicKeyInfo (4.1.2.7), without the unused-bits octet.

    What 4.2.1.2 method 1 hashes for the key identifier.
    """
    tag, start, _ = _header(spki, 0)
    if tag != 0x30:
        raise ValueError("not a SubjectPublicKeyInfo")
    _, _, algorithm_end = _header(spki, start)
    tag, bits_start, bits_end = _header(spki, algorithm_end)
    if tag != 0x03 or bits_start == bits_end or spki[bits_start] != 0:
        raise ValueError("subjectPublicKey is not a whole-octet BIT STRING")
    return spki[bits_start + 1 : bits_end]
