"""The few DER encodings (X.690) that CRLs and OCSP responses are assembled from by hand.

Used where building through an ASN.1 library costs more than the signature:
a million CRL entries, an OCSP answer per request. Each function returns one
complete TLV; lengths use the definite short or long form, as DER requires.
"""

from __future__ import annotations

from datetime import UTC, datetime

SHORT_LENGTHS = [bytes((n,)) for n in range(0x80)]


def length(n: int) -> bytes:
    if n < 0x80:
        return SHORT_LENGTHS[n]
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + length(len(content)) + content


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def generalized_time(moment: datetime) -> bytes:
    """GeneralizedTime in UTC, whole seconds (RFC 5280 section 4.1.2.5.2)."""
    return tlv(0x18, moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def x509_time(moment: datetime) -> bytes:
    """RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    moment = moment.astimezone(UTC)
    if moment.year < 2050:
        return tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return generalized_time(moment)
