"""Issuing end-entity certificates: build, lint, record the intent, sign, record the result.

The registration step (``idp/pki``) has already decided the subject from the
registries and checked the CSR; this module only turns an :class:`Order` into
a signed certificate, in Boulder's order:

1. build the certificate with a fresh CSPRNG serial;
2. if the profile lints, sign it once with a throwaway key and lint that copy
   (a finding refuses the issuance; nothing is written);
3. record the intent (row ``pending``) and commit: the serial's uniqueness is
   the primary key's, across every process;
4. sign with the CA key;
5. mark the row ``issued`` with its DER, in the same transaction as the audit
   entry (``certificate_issued``).

A crash between 3 and 5 leaves a ``pending`` row naming the serial, the
subject and the key: never a signed certificate the database has not heard of.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, ObjectIdentifier
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from ca.hierarchy import IssuingCA
from ca.lint import LintFinding, lint_certificate
from ca.serials import new_serial, serial_hex
from ca.signing import throwaway_certificate
from idp.audit.log import AuditEvent, append
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database
from policies.certificate_profiles import EXTENDED_KEY_USAGES, KEY_USAGES, CertificateProfile

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


@dataclass(frozen=True)
class Issued:
    serial_hex: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuing CA first, root last

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


def build(order: Order, serial: int, now: datetime) -> x509.CertificateBuilder:
    profile, ca = order.profile, order.issuing_ca
    not_after = not_after_of(order, now)
    builder = (
        x509.CertificateBuilder()
        .subject_name(order.subject)
        .issuer_name(ca.certificate.subject)
        .public_key(order.public_key)
        .serial_number(serial)
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(profile), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.signer.public_key()),
            critical=False,
        )
    )
    if profile.subject_key_identifier:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(order.public_key), critical=False
        )
    if profile.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ObjectIdentifier(EXTENDED_KEY_USAGES[u]) for u in profile.extended_key_usage]
            ),
            critical=False,
        )
    access = []
    if profile.aia_ocsp:
        access.append(
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ca.ocsp_url)
            )
        )
    if profile.aia_ca_issuers:
        access.append(
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(ca.ca_issuers_url),
            )
        )
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if profile.crl_distribution_point:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(ca.crl_url_for(serial))],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if profile.certificate_policies:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(ObjectIdentifier(oid), None)
                    for oid in profile.certificate_policies
                ]
            ),
            critical=False,
        )
    if order.dns_names:
        # RFC 5280 4.2.1.6: with an empty subject the SAN must be critical.
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in order.dns_names]),
            critical=len(order.subject) == 0,
        )
    if profile.ocsp_nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    return builder


def lint_order(order: Order, builder: x509.CertificateBuilder) -> None:
    draft = throwaway_certificate(builder, order.issuing_ca.signer)
    findings = lint_certificate(draft.public_bytes(Encoding.DER), order.profile.linters)
    if findings:
        raise LintRefused(order.profile.name, findings)


def _intent_row(order: Order, serial: int, now: datetime) -> dict[str, object]:
    return {
        "serial_hex": serial_hex(serial),
        "issuer_ca": order.issuing_ca.name,
        "issuer_key_id": order.issuing_ca.key_id,
        "profile": order.profile.name,
        "status": "pending",
        "subject": order.subject.rfc4514_string() or ",".join(f"DNS:{n}" for n in order.dns_names),
        "subject_hash": order.subject_hash,
        "spki_sha256": spki_sha256(order.public_key),
        "not_before": now - _BACKDATE,
        "not_after": not_after_of(order, now),
        "requested_by": order.requested_by,
        "request_reason": order.request_reason,
        "tracking_code": order.tracking_code,
        "created_at": now,
    }


def issue_batch(db: Database, orders: Sequence[Order], lint: bool | None = None) -> list[Issued]:
    """Issue each order; one transaction records all intents, one records all results.

    ``lint`` overrides the profile's switch (None: as the profile says). Any
    lint finding refuses the whole batch before anything is written.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    planned: list[tuple[Order, int, x509.CertificateBuilder]] = []
    for order in orders:
        serial = new_serial()
        builder = build(order, serial, now)
        if order.profile.lint if lint is None else lint:
            lint_order(order, builder)
        planned.append((order, serial, builder))

    for attempt in range(_SERIAL_ATTEMPTS):
        try:
            with db.session() as session:
                session.execute(
                    insert(CertificateRecord),
                    [_intent_row(order, serial, now) for order, serial, builder in planned],
                )
            break
        except IntegrityError:
            # A serial collided with one already recorded: draw again. With 127
            # random bits this is the database catching what luck never should.
            if attempt == _SERIAL_ATTEMPTS - 1:
                raise
            planned = [
                (order, serial2, build(order, serial2, now))
                for order, _, _ in planned
                for serial2 in (new_serial(),)
            ]

    issued: list[Issued] = []
    for order, serial, builder in planned:
        certificate = order.issuing_ca.sign_certificate(builder)
        issued.append(Issued(serial_hex(serial), certificate, order.issuing_ca.chain))

    issued_at = datetime.now(UTC)
    with db.session() as session:
        for (order, _, _), result in zip(planned, issued, strict=True):
            done = session.execute(
                update(CertificateRecord)
                .where(
                    CertificateRecord.serial_hex == result.serial_hex,  # type: ignore[arg-type]
                    CertificateRecord.status == "pending",  # type: ignore[arg-type]
                )
                .values(
                    status="issued",
                    der=result.certificate.public_bytes(Encoding.DER),
                    issued_at=issued_at,
                )
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise RuntimeError(f"certificate {result.serial_hex} left pending state elsewhere")
            append(
                session,
                AuditEvent(
                    tracking_code=order.tracking_code,
                    event_type="certificate_issued",
                    actor_type=order.actor_type,
                    actor_id=order.requested_by,
                    legal_basis=order.request_reason,
                    operation=order.profile.name,
                    subject_hash=order.subject_hash,
                    outcome="issued",
                    detail={
                        "serial": result.serial_hex,
                        "issuer_ca": order.issuing_ca.name,
                        "issuer_key_id": order.issuing_ca.key_id,
                        "profile": order.profile.name,
                        **order.audit_detail,
                    },
                ),
            )
    return issued


def issue(db: Database, order: Order, lint: bool | None = None) -> Issued:
    return issue_batch(db, [order], lint)[0]
