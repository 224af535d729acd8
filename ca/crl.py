"""Certificate revocation lists (RFC 5280 section 5): full, delta and partitioned CRLs.

The TBSCertList is encoded here rather than through ``cryptography``'s CRL
builder for two reasons: the CA key may live in a PKCS#11 token, which only
offers "sign these bytes", and a CRL of a million entries must be built in
seconds. The revoked entries are encoded straight to DER in one pass (about a
microsecond each) and joined once; the envelope (issuer name, times,
extensions, algorithm identifiers) goes through ``asn1crypto``.

Partitioning: a certificate's CRL distribution point is fixed when it is
signed, so the partition of a certificate is a pure function of its serial
number and the issuing CA's partition count, which is fixed when the CA is
created. Issuance puts ``crl_distribution_point(...)`` in the certificate;
the publisher builds one CRL per partition from the entries for which
``crl_partition_for(serial, partitions)`` names that partition, each carrying
an Issuing Distribution Point with the same URL (section 5.2.5). One partition
(the default) means one CRL without partition suffix. ``partitions_needed``
sizes a CA so that no CRL passes the 10 MB that root programs ask for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from asn1crypto import algos
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from ca.der import SHORT_LENGTHS, generalized_time, integer, tlv, x509_time
from ca.revocation import RevocationReason

MAX_CRL_BYTES = 10_000_000
"""Root programs ask for CRLs under 10 MB."""

ENTRY_BYTES_ESTIMATE = 37
"""A revoked entry with a 16-octet serial and a reason code, as encoded here."""

MAX_ENTRIES_PER_CRL = MAX_CRL_BYTES // ENTRY_BYTES_ESTIMATE  # about 270,000


class Signer(Protocol):
    """A CA key as the CRL and OCSP builders need it: its public half, and "sign these bytes".

    ``sign`` returns the signature as it goes in the BIT STRING (DER ECDSA-Sig-Value
    for ECDSA) for the algorithm ``signature_algorithm(public_key())`` names.
    Software keys are wrapped by ``KeySigner``; a PKCS#11 key only needs these two.
    """

    def public_key(self) -> PublicKeyTypes: ...

    def sign(self, data: bytes) -> bytes: ...


_EC_HASHES: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}
_EC_ALGORITHMS = {
    "secp256r1": "sha256_ecdsa",
    "secp384r1": "sha384_ecdsa",
    "secp521r1": "sha512_ecdsa",
}


def signature_algorithm(public_key: object) -> algos.SignedDigestAlgorithm:
    """The signature algorithm a CA key signs with: the hash matches the curve (RFC 5480)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        name = _EC_ALGORITHMS.get(public_key.curve.name)
        if name is None:
            raise ValueError(f"unsupported CA curve {public_key.curve.name}")
        return algos.SignedDigestAlgorithm({"algorithm": name})
    if isinstance(public_key, rsa.RSAPublicKey):
        return algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": None})
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return algos.SignedDigestAlgorithm({"algorithm": "ed25519"})
    if isinstance(public_key, ed448.Ed448PublicKey):
        return algos.SignedDigestAlgorithm({"algorithm": "ed448"})
    raise ValueError(f"unsupported CA key type {type(public_key).__name__}")


class KeySigner:
    """A software private key (``cryptography``) as a Signer."""

    def __init__(self, private_key: object) -> None:
        self._key = private_key

    def public_key(self) -> PublicKeyTypes:
        return self._key.public_key()  # type: ignore[attr-defined,no-any-return]

    def sign(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(_EC_HASHES[key.curve.name]))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
            return key.sign(data)
        raise ValueError(f"unsupported CA key type {type(key).__name__}")


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    """One revoked certificate as it appears on a CRL."""

    serial: int
    revoked_at: datetime
    reason: RevocationReason = RevocationReason.unspecified
    invalidity_date: datetime | None = None


# --- partitions -------------------------------------------------------------


def crl_partition_for(serial: int, partitions: int) -> int:
    """The partition (0-based) whose CRL lists the certificate with this serial.

    Serials are random (RFC 5280 plus CA/B rules: 64+ CSPRNG bits), so the
    remainder spreads certificates evenly. ``partitions`` is the issuing CA's
    fixed partition count; changing it would orphan the CDPs already issued.
    """
    if partitions < 1:
        raise ValueError("a CA has at least one CRL partition")
    return serial % partitions


def partitions_needed(expected_revoked: int, max_entries: int = MAX_ENTRIES_PER_CRL) -> int:
    """How many partitions keep every CRL under ``max_entries`` (with a 2x margin for skew)."""
    if expected_revoked <= max_entries:
        return 1
    return -(-2 * expected_revoked // max_entries)


def crl_file_name(
    ca_name: str,
    *,
    generation: int = 1,
    partition: int = 0,
    partitions: int = 1,
    delta: bool = False,
) -> str:
    """``persons.crl``, ``persons-g2-p3-delta.crl``...: the last path segment of a CRL URL.

    A CA key generation after the first gets its own CRLs (the new key cannot
    speak for certificates the old one signed), hence ``-g<n>``.
    """
    name = ca_name
    if generation > 1:
        name += f"-g{generation}"
    if partitions > 1:
        name += f"-p{partition}"
    if delta:
        name += "-delta"
    return name + ".crl"


def crl_url(base_url: str, file_name: str) -> str:
    """The URL of the CRL named ``file_name`` (:func:`crl_file_name`) under ``base_url``."""
    return f"{base_url.rstrip('/')}/crl/{file_name}"


def crl_distribution_point(
    base_url: str, ca_name: str, serial: int, *, generation: int = 1, partitions: int = 1
) -> str:
    """The CDP URL that issuance writes into a certificate with this serial."""
    return crl_url(
        base_url,
        crl_file_name(
            ca_name,
            generation=generation,
            partition=crl_partition_for(serial, partitions),
            partitions=partitions,
        ),
    )


def split_by_partition(
    entries: Iterable[RevokedEntry], partitions: int
) -> list[list[RevokedEntry]]:
    buckets: list[list[RevokedEntry]] = [[] for _ in range(partitions)]
    for entry in entries:
        buckets[entry.serial % partitions].append(entry)
    return buckets


# --- DER encoding -----------------------------------------------------------


_OID_REASON = bytes.fromhex("0603551d15")  # id-ce-cRLReasons 2.5.29.21
_OID_INVALIDITY = bytes.fromhex("0603551d18")  # id-ce-invalidityDate 2.5.29.24

# RFC 5280 section 5.3.1: the reasonCode extension SHOULD be absent rather than
# say "unspecified", so code 0 has no extension.
_REASON_EXTENSIONS: dict[RevocationReason, bytes] = {
    reason: tlv(0x30, _OID_REASON + tlv(0x04, tlv(0x0A, bytes((int(reason),)))))
    for reason in RevocationReason
    if reason is not RevocationReason.unspecified
}


_REASON_TABLE = [_REASON_EXTENSIONS.get(code, b"") for code in range(max(RevocationReason) + 1)]  # type: ignore[call-overload]


class _EntryEncoder:
    """Encodes revoked entries, a million in seconds: this loop is the CRL's cost.

    The date part of each time is remembered per day (hashing an aware datetime
    costs more than formatting one, so seconds are formatted every time),
    lengths under 128 octets come from a table (an entry is under 90 octets),
    and every piece is one bytes concatenation.
    """

    def __init__(self) -> None:
        self._days: dict[int, bytes] = {}

    def _time(self, moment: datetime) -> bytes:
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        if moment.year >= 2050:
            return x509_time(moment)
        day = self._days.get(moment.toordinal())
        if day is None:
            day = self._days[moment.toordinal()] = b"\x17\x0d%02d%02d%02d" % (
                moment.year % 100,
                moment.month,
                moment.day,
            )
        return day + b"%02d%02d%02dZ" % (moment.hour, moment.minute, moment.second)

    @staticmethod
    def _invalidity_extension(moment: datetime) -> bytes:
        return tlv(0x30, _OID_INVALIDITY + tlv(0x04, generalized_time(moment)))

    def encode(self, entry: RevokedEntry) -> bytes:
        serial = entry.serial.to_bytes(entry.serial.bit_length() // 8 + 1, "big", signed=True)
        body = b"\x02" + SHORT_LENGTHS[len(serial)] + serial + self._time(entry.revoked_at)
        # Indexing by the IntEnum is C-level; a dict lookup would call Enum.__hash__.
        extensions = _REASON_TABLE[entry.reason]
        if entry.invalidity_date is not None:
            extensions += self._invalidity_extension(entry.invalidity_date)
        if extensions:
            body += b"\x30" + SHORT_LENGTHS[len(extensions)] + extensions
        if len(body) < 0x80:
            return b"\x30" + SHORT_LENGTHS[len(body)] + body
        return tlv(0x30, body)


def encode_revoked_entries(entries: Iterable[RevokedEntry]) -> bytes:
    """The content of the revokedCertificates SEQUENCE OF (without its own header)."""
    encode = _EntryEncoder().encode
    return b"".join([encode(entry) for entry in entries])


# --- the CRL ----------------------------------------------------------------


def subject_der(certificate: x509.Certificate) -> bytes:
    """The subject exactly as encoded in the certificate (issuer matching is bytewise)."""
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    subject: bytes = parsed["tbs_certificate"]["subject"].dump()
    return subject


def key_identifier(certificate: x509.Certificate) -> bytes:
    """The issuer's subject key identifier, else the RFC 5280 method 1 hash of its key."""
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        spki = asn1_x509.PublicKeyInfo.load(
            certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return hashlib.sha1(spki["public_key"].contents[1:], usedforsecurity=False).digest()


def _uri(url: str) -> asn1_x509.GeneralName:
    return asn1_x509.GeneralName(name="uniform_resource_identifier", value=url)


def _crl_extensions(
    *,
    authority_key_id: bytes,
    crl_number: int,
    delta_base: int | None,
    distribution_point: str | None,
    freshest_crl: str | None,
) -> bytes:
    extensions = [
        {
            "extn_id": "authority_key_identifier",
            "critical": False,
            "extn_value": {"key_identifier": authority_key_id},
        },
        {"extn_id": "crl_number", "critical": False, "extn_value": crl_number},
    ]
    if delta_base is not None:
        # Section 5.2.4: the delta CRL indicator is critical.
        extensions.append(
            {"extn_id": "delta_crl_indicator", "critical": True, "extn_value": delta_base}
        )
    if distribution_point is not None:
        # Section 5.2.5: the issuing distribution point is critical; it names the
        # partition so a CRL for one partition cannot stand in for another.
        extensions.append(
            {
                "extn_id": "issuing_distribution_point",
                "critical": True,
                "extn_value": {"distribution_point": {"full_name": [_uri(distribution_point)]}},
            }
        )
    if freshest_crl is not None and delta_base is None:
        extensions.append(
            {
                "extn_id": "freshest_crl",
                "critical": False,
                "extn_value": [{"distribution_point": {"full_name": [_uri(freshest_crl)]}}],
            }
        )
    encoded: bytes = asn1_crl.TBSCertListExtensions(extensions).dump()
    return encoded


def build_crl(
    *,
    issuer: x509.Certificate,
    signer: Signer,
    entries: Sequence[RevokedEntry],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
    delta_base: int | None = None,
    distribution_point: str | None = None,
    freshest_crl: str | None = None,
) -> bytes:
    """A signed CRL (DER) listing ``entries``.

    ``delta_base`` makes it a delta CRL on top of the full CRL with that number;
    ``distribution_point`` adds the Issuing Distribution Point of a partition;
    ``freshest_crl`` (full CRLs only) tells clients where the delta CRLs are.
    """
    if crl_number < 0 or crl_number.bit_length() > 159:
        raise ValueError("a CRL number is a non-negative integer of at most 20 octets")
    if delta_base is not None and not 0 <= delta_base < crl_number:
        raise ValueError("a delta CRL's base CRL number is lower than its own number")
    if next_update <= this_update:
        raise ValueError("nextUpdate must be later than thisUpdate")
    algorithm = signature_algorithm(signer.public_key()).dump()
    tbs_parts = [
        integer(1),  # v2: CRL extensions are present
        algorithm,
        subject_der(issuer),
        x509_time(this_update),
        x509_time(next_update),
    ]
    if entries:
        # Section 5.1.2.6: with no revoked certificate the list is absent, not empty.
        tbs_parts.append(tlv(0x30, encode_revoked_entries(entries)))
    extensions = _crl_extensions(
        authority_key_id=key_identifier(issuer),
        crl_number=crl_number,
        delta_base=delta_base,
        distribution_point=distribution_point,
        freshest_crl=freshest_crl,
    )
    tbs_parts.append(tlv(0xA0, extensions))
    tbs = tlv(0x30, b"".join(tbs_parts))
    signature = signer.sign(tbs)
    return tlv(0x30, tbs + algorithm + tlv(0x03, b"\x00" + signature))


def crl_this_update(now: datetime | None = None) -> datetime:
    """thisUpdate: now, in whole seconds (CRL times carry no fractions)."""
    return (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
