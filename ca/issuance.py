"""Issuing end-entity certificates: build, lint, record the intent, sign, record the result.

The registration step (the service's RA) has already decided the subject from the
registries and checked the CSR; this module only turns an :class:`Order` into
a signed certificate, in Boulder's order:

1. build the to-be-signed certificate with a fresh CSPRNG serial (DER put
   together from per-profile parts, :mod:`ca.rfc5280`);
2. if the profile lints, sign those bytes once with a throwaway key and lint
   that copy (a finding refuses the issuance; nothing is written);
3. have the store (:class:`ca.ports.IntentStore`) refuse a blocked or CA key
   and record the intent (``pending``) in one transaction: the serial's
   uniqueness is the store's primary key's, across every process;
4. sign with the CA key;
5. have the store mark the intent ``issued`` with its DER, in the same
   transaction as the audit entry (``certificate_issued``).

A crash between 3 and 5 leaves a ``pending`` row naming the serial, the
subject and the key: never a signed certificate the database has not heard of.
Where and how these are written is the store's business, not the CA's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ca import rfc5280
from ca.hierarchy import IssuingCA
from ca.lint import LintFinding, lint_certificate
from ca.ports import Intent, IntentStore, KeyRefused, SerialTaken
from ca.serials import new_serial, serial_hex
from ca.signing import throwaway_signature
from policies.certificate_profiles import EXTENDED_KEY_USAGES, KEY_USAGES, CertificateProfile

__all__ = ["Issued", "KeyRefused", "LintRefused", "Order", "issue", "issue_batch", "spki_sha256"]

_BACKDATE = timedelta(minutes=5)
_SERIAL_ATTEMPTS = 5
_ATTRIBUTE_NAMES = {
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


class LintRefused(Exception):
    """The pre-signing lint found problems: the certificate was not issued."""

    def __init__(self, profile: str, findings: list[LintFinding]) -> None:
        self.profile = profile
        self.findings = findings
        super().__init__(
            f"profile {profile}: pre-signing lint failed: " + "; ".join(map(str, findings))
        )


@dataclass(frozen=True)
class Order:
    """What the registration step decided: who, which key, which profile, who asked and why."""

    profile: CertificateProfile
    issuing_ca: IssuingCA
    public_key: CertificatePublicKeyTypes
    subject: x509.Name
    requested_by: str
    tracking_code: str
    dns_names: tuple[str, ...] = ()
    subject_hash: str | None = None
    request_reason: str | None = None
    actor_type: str = "client"
    audit_detail: dict[str, object] = field(default_factory=dict)

    @cached_property
    def spki_der(self) -> bytes:
        """The SubjectPublicKeyInfo, encoded once for the certificate and both digests."""
        return self.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    @cached_property
    def spki_sha256(self) -> str:
        """SHA-256 of the SubjectPublicKeyInfo: the key's name in records and blocked keys."""
        return hashlib.sha256(self.spki_der).hexdigest()

    @cached_property
    def key_identifier(self) -> bytes:
        """RFC 5280 4.2.1.2 method 1 (SHA-1 of the key bits): SKI and CA-key checks."""
        bits = rfc5280.subject_public_key(self.spki_der)
        return hashlib.sha1(bits, usedforsecurity=False).digest()


@dataclass(frozen=True)
class Issued:
    serial_hex: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last
    der: bytes

    def pem_chain(self) -> str:
        parts = [self.certificate, *self.chain]
        return "".join(c.public_bytes(Encoding.PEM).decode() for c in parts)


def spki_sha256(public_key: CertificatePublicKeyTypes) -> str:
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _key_usage(profile: CertificateProfile) -> x509.KeyUsage:
    flags = {usage: usage in profile.key_usage for usage in KEY_USAGES}
    return x509.KeyUsage(
        **flags, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False
    )


def not_after_of(order: Order, now: datetime) -> datetime:
    """The profile's lifetime, cut to the issuing CA's own (RFC 5280 path validation).

    Validity counts both ends inclusively (RFC 5280 4.1.2.5), hence the second off.
    """
    return min(
        now - _BACKDATE + timedelta(days=order.profile.validity_days, seconds=-1),
        order.issuing_ca.certificate.not_valid_after_utc,
    )


@dataclass(frozen=True)
class _Template:
    """The DER every certificate of one profile from one CA key shares."""

    signature_algorithm: bytes
    issuer: bytes
    head: bytes  # extensions before the subject key identifier
    tail: bytes  # extensions after the CRL distribution point


_TEMPLATES: dict[tuple[object, ...], _Template] = {}


def _template(profile: CertificateProfile, ca: IssuingCA) -> _Template:
    # Built once per (profile, CA key): encoding these costs more than signing.
    key = (profile, ca.key_id, ca.issuer_url, ca.generation, ca.crl_partitions)
    cached = _TEMPLATES.get(key)
    if cached is not None:
        return cached
    head = [
        rfc5280.extension(x509.BasicConstraints(ca=False, path_length=None), critical=True),
        rfc5280.extension(_key_usage(profile), critical=True),
        rfc5280.extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.signer.public_key())
        ),
    ]
    tail = []
    if profile.extended_key_usage:
        tail.append(
            rfc5280.extension(
                x509.ExtendedKeyUsage(
                    [ObjectIdentifier(EXTENDED_KEY_USAGES[u]) for u in profile.extended_key_usage]
                )
            )
        )
    if profile.aia_ocsp or profile.aia_ca_issuers:
        access = rfc5280.authority_information_access(
            ocsp=ca.ocsp_url if profile.aia_ocsp else None,
            ca_issuers=ca.ca_issuers_url if profile.aia_ca_issuers else None,
        )
        tail.append(rfc5280.extension(access))
    if profile.certificate_policies:
        tail.append(
            rfc5280.extension(
                x509.CertificatePolicies(
                    [
                        x509.PolicyInformation(ObjectIdentifier(oid), None)
                        for oid in profile.certificate_policies
                    ]
                )
            )
        )
    if profile.ocsp_nocheck:
        tail.append(rfc5280.extension(x509.OCSPNoCheck()))
    template = _Template(
        signature_algorithm=rfc5280.signature_algorithm(ca.signer.hash_algorithm()),
        issuer=ca.certificate.subject.public_bytes(),
        head=b"".join(head),
        tail=b"".join(tail),
    )
    _TEMPLATES[key] = template
    return template


_CDP: dict[str, bytes] = {}


def _crl_distribution_point(url: str) -> bytes:
    cached = _CDP.get(url)
    if cached is None:
        cached = _CDP[url] = rfc5280.extension(rfc5280.crl_distribution_points(url))
    return cached


@dataclass(frozen=True)
class _Plan:
    """One certificate about to be issued: its serial, validity and to-be-signed bytes."""

    order: Order
    serial: int
    not_before: datetime
    not_after: datetime
    tbs: bytes

    @property
    def signature_algorithm(self) -> bytes:
        return _template(self.order.profile, self.order.issuing_ca).signature_algorithm


def plan(order: Order, serial: int, now: datetime) -> _Plan:
    """The TBSCertificate of ``order`` with ``serial`` (RFC 5280 4.1.2), extensions in
    the order ``cryptography``'s builder was given them before."""
    profile, ca = order.profile, order.issuing_ca
    template = _template(profile, ca)
    extensions = [template.head]
    if profile.subject_key_identifier:
        extensions.append(rfc5280.subject_key_identifier(order.key_identifier))
    if profile.crl_distribution_point:
        extensions.append(_crl_distribution_point(ca.crl_url_for(serial)))
    extensions.append(template.tail)
    if order.dns_names:
        # RFC 5280 4.2.1.6: with an empty subject the SAN must be critical.
        extensions.append(
            rfc5280.extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in order.dns_names]),
                critical=len(order.subject) == 0,
            )
        )
    not_before, not_after = now - _BACKDATE, not_after_of(order, now)
    tbs = rfc5280.tbs_certificate(
        serial=serial,
        signature=template.signature_algorithm,
        issuer=template.issuer,
        not_before=not_before,
        not_after=not_after,
        subject=order.subject.public_bytes(),
        spki=order.spki_der,
        extensions=b"".join(extensions),
    )
    return _Plan(order, serial, not_before, not_after, tbs)


def lint_plan(planned: _Plan) -> None:
    """Lint the very bytes that will be signed, under a throwaway key's signature."""
    signer = planned.order.issuing_ca.signer
    draft = rfc5280.certificate(
        planned.tbs, planned.signature_algorithm, throwaway_signature(planned.tbs, signer)
    )
    findings = lint_certificate(draft, planned.order.profile.linters)
    if findings:
        raise LintRefused(planned.order.profile.name, findings)


def _intent(planned: _Plan, now: datetime) -> Intent:
    order = planned.order
    return Intent(
        serial_hex=serial_hex(planned.serial),
        issuer_ca=order.issuing_ca.name,
        issuer_key_id=order.issuing_ca.key_id,
        profile=order.profile.name,
        subject=order.subject.rfc4514_string(_ATTRIBUTE_NAMES)
        or ",".join(f"DNS:{n}" for n in order.dns_names),
        subject_hash=order.subject_hash,
        spki_sha256=order.spki_sha256,
        not_before=planned.not_before,
        not_after=planned.not_after,
        requested_by=order.requested_by,
        request_reason=order.request_reason,
        tracking_code=order.tracking_code,
        key_identifier=order.key_identifier.hex(),
        actor_type=order.actor_type,
        audit_detail=order.audit_detail,
    )


def _sign(planned: _Plan) -> Issued:
    ca = planned.order.issuing_ca
    der = rfc5280.certificate(planned.tbs, planned.signature_algorithm, ca.sign_tbs(planned.tbs))
    return Issued(serial_hex(planned.serial), x509.load_der_x509_certificate(der), ca.chain, der)


def issue_batch(
    store: IntentStore, orders: Sequence[Order], lint: bool | None = None
) -> list[Issued]:
    """Issue each order; one transaction records all intents, one records all results.

    ``lint`` overrides the profile's switch (None: as the profile says). Any
    lint finding refuses the whole batch before anything is written. The store
    refuses blocked and CA keys in the transaction that records the intents
    (:class:`KeyRefused`), and each write is committed before this goes on, so
    an intent is durable before the signature it announces.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    linting = [order.profile.lint if lint is None else lint for order in orders]
    plans = [plan(order, new_serial(), now) for order in orders]
    for attempt in range(_SERIAL_ATTEMPTS):
        for planned, lints in zip(plans, linting, strict=True):
            if lints:
                lint_plan(planned)
        intents = [_intent(planned, now) for planned in plans]
        try:
            store.record_intents(intents, now)
            break
        except SerialTaken:
            # A serial collided with one already recorded: draw again (and lint
            # again, since the serial is in the linted bytes). With 127 random
            # bits this is the database catching what luck never should.
            if attempt == _SERIAL_ATTEMPTS - 1:
                raise
            plans = [plan(order, new_serial(), now) for order in orders]

    issued = [_sign(planned) for planned in plans]
    store.record_issued(intents, [done.der for done in issued], datetime.now(UTC))
    return issued


def issue(store: IntentStore, order: Order, lint: bool | None = None) -> Issued:
    return issue_batch(store, [order], lint)[0]
