"""Issuing end-entity certificates: build, lint, record the intent, sign, record the result.

The registration step (``idp/pki``) has already decided the subject from the
registries and checked the CSR; this module only turns an :class:`Order` into
a signed certificate, in Boulder's order:

1. build the to-be-signed certificate with a fresh CSPRNG serial (DER put
   together from per-profile parts, :mod:`ca.rfc5280`);
2. if the profile lints, sign those bytes once with a throwaway key and lint
   that copy (a finding refuses the issuance; nothing is written);
3. refuse a blocked or CA key and record the intent (row ``pending``) in one
   transaction: the serial's uniqueness is the primary key's, across every process;
4. sign with the CA key;
5. mark the row ``issued`` with its DER, in the same transaction as the audit
   entry (``certificate_issued``).

A crash between 3 and 5 leaves a ``pending`` row naming the serial, the
subject and the key: never a signed certificate the database has not heard of.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property, partial
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, ObjectIdentifier
from sqlalchemy import CompoundSelect, Connection, bindparam, insert, literal, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from ca import rfc5280
from ca.hierarchy import IssuingCA
from ca.lint import LintFinding, lint_certificate
from ca.serials import new_serial, serial_hex
from ca.signing import throwaway_signature
from idp.audit.log import AuditEvent, append_many, insert_events
from idp.storage.certificates import BlockedKey, CertificateAuthority, CertificateRecord
from idp.storage.engine import Database
from policies.certificate_profiles import EXTENDED_KEY_USAGES, KEY_USAGES, CertificateProfile

T = TypeVar("T")
_BACKDATE = timedelta(minutes=5)
_SERIAL_ATTEMPTS = 5
_TABLE = CertificateRecord.__table__  # type: ignore[attr-defined]


@cache
def _key_check(digests: int, key_ids: int) -> CompoundSelect:
    """One round trip for both key refusals; built once per batch shape, since
    constructing a select (or expanding an IN list) costs more than running it."""
    blocked = select(literal("blocked")).where(
        col(BlockedKey.spki_sha256).in_([bindparam(f"d{i}") for i in range(digests)])
    )
    ca_key = select(literal("ca-key")).where(
        col(CertificateAuthority.key_id).in_([bindparam(f"k{i}") for i in range(key_ids)])
    )
    return union_all(blocked, ca_key).limit(1)


_INTENT = insert(_TABLE)
_COMPLETE = (
    update(_TABLE)
    .where(_TABLE.c.serial_hex == bindparam("b_serial"), _TABLE.c.status == "pending")
    .values(status="issued", der=bindparam("b_der"), issued_at=bindparam("b_issued_at"))
)
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


class KeyRefused(Exception):
    """The public key may not be certified: blocked after a compromise, or a CA's own key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason  # "blocked" | "ca-key"
        self.detail = detail


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
        tail.append(rfc5280.extension(x509.AuthorityInformationAccess(access)))
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
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(url)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        cached = _CDP[url] = rfc5280.extension(x509.CRLDistributionPoints([point]))
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


def _intent_row(planned: _Plan, now: datetime) -> dict[str, object]:
    order = planned.order
    return {
        "serial_hex": serial_hex(planned.serial),
        "issuer_ca": order.issuing_ca.name,
        "issuer_key_id": order.issuing_ca.key_id,
        "profile": order.profile.name,
        "status": "pending",
        "subject": order.subject.rfc4514_string(_ATTRIBUTE_NAMES)
        or ",".join(f"DNS:{n}" for n in order.dns_names),
        "subject_hash": order.subject_hash,
        "spki_sha256": order.spki_sha256,
        "not_before": planned.not_before,
        "not_after": planned.not_after,
        "requested_by": order.requested_by,
        "request_reason": order.request_reason,
        "tracking_code": order.tracking_code,
        "created_at": now,
    }


def refuse_unusable_keys(connection: Connection, orders: Sequence[Order]) -> None:
    """Raise :class:`KeyRefused` if any order's key is blocked or belongs to a CA."""
    digests = sorted({order.spki_sha256 for order in orders})
    key_ids = sorted({order.key_identifier.hex() for order in orders})
    found = connection.execute(
        _key_check(len(digests), len(key_ids)),
        {
            **{f"d{i}": digest for i, digest in enumerate(digests)},
            **{f"k{i}": key_id for i, key_id in enumerate(key_ids)},
        },
    ).first()
    if found is None:
        return
    if found[0] == "blocked":
        raise KeyRefused(
            "blocked",
            "this public key was revoked for key compromise and may never be certified "
            "again: generate a new key",
        )
    raise KeyRefused("ca-key", "this public key belongs to a CA")


def _sign(planned: _Plan) -> Issued:
    ca = planned.order.issuing_ca
    der = rfc5280.certificate(planned.tbs, planned.signature_algorithm, ca.sign_tbs(planned.tbs))
    return Issued(serial_hex(planned.serial), x509.load_der_x509_certificate(der), ca.chain, der)


Write = Callable[[Connection], T]
# Runs a write in a transaction and returns once it is committed.
Committer = Callable[[Write[Any]], Any]


def committing(db: Database) -> Committer:
    """A transaction of its own per write, on a Core connection.

    Not an ORM session: nothing here needs the unit of work, and on the
    one-certificate path its bookkeeping costs as much as the signature. The
    engine's begin/commit hooks (SQLite's write lock) fire all the same.
    """

    def run(write: Write[Any]) -> Any:
        with db.engine.begin() as connection:
            return write(connection)

    return run


def issue_batch(
    db: Database,
    orders: Sequence[Order],
    lint: bool | None = None,
    commit: Committer | None = None,
) -> list[Issued]:
    """Issue each order; one transaction records all intents, one records all results.

    ``lint`` overrides the profile's switch (None: as the profile says). Any
    lint finding refuses the whole batch before anything is written.
    ``commit`` runs each of the two writes and returns once it is committed
    (default: a transaction of its own); a group committer shares the commits
    with concurrent requests, and the intent is still durable before the signature.
    """
    run = commit or committing(db)
    now = datetime.now(UTC).replace(microsecond=0)
    linting = [order.profile.lint if lint is None else lint for order in orders]
    plans = [plan(order, new_serial(), now) for order in orders]
    for attempt in range(_SERIAL_ATTEMPTS):
        for planned, lints in zip(plans, linting, strict=True):
            if lints:
                lint_plan(planned)
        try:
            run(partial(_record_intents, plans=plans, now=now))
            break
        except IntegrityError:
            # A serial collided with one already recorded: draw again (and lint
            # again, since the serial is in the linted bytes). With 127 random
            # bits this is the database catching what luck never should.
            if attempt == _SERIAL_ATTEMPTS - 1:
                raise
            plans = [plan(order, new_serial(), now) for order in orders]

    issued = [_sign(planned) for planned in plans]
    run(partial(_record_issued, orders=orders, issued=issued, issued_at=datetime.now(UTC)))
    return issued


def _record_intents(connection: Connection, plans: Sequence[_Plan], now: datetime) -> None:
    orders = [planned.order for planned in plans]
    # In the same transaction as the intent: a key blocked a moment ago
    # cannot slip between a check and the signature.
    refuse_unusable_keys(connection, orders)
    connection.execute(_INTENT, [_intent_row(planned, now) for planned in plans])


def _record_issued(
    connection: Connection, orders: Sequence[Order], issued: Sequence[Issued], issued_at: datetime
) -> None:
    result = connection.execute(
        _COMPLETE,
        [
            {"b_serial": done.serial_hex, "b_der": done.der, "b_issued_at": issued_at}
            for done in issued
        ],
    )
    # Only a pending row may become issued: if another process changed one
    # (it cannot, short of an operator's hand), this transaction rolls back.
    if connection.dialect.supports_sane_multi_rowcount and result.rowcount != len(issued):
        raise RuntimeError("a certificate left the pending state while being signed")
    insert_events(
        connection,
        (
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
                    "serial": done.serial_hex,
                    "issuer_ca": order.issuing_ca.name,
                    "issuer_key_id": order.issuing_ca.key_id,
                    "profile": order.profile.name,
                    **order.audit_detail,
                },
            )
            for order, done in zip(orders, issued, strict=True)
        ),
    )


def issue(
    db: Database, order: Order, lint: bool | None = None, commit: Committer | None = None
) -> Issued:
    return issue_batch(db, [order], lint, commit)[0]


def fail_stale_intents(db: Database, older_than: timedelta, actor: str) -> list[str]:
    """Mark ``pending`` rows older than ``older_than`` as ``failed``; their serials.

    A pending row outlives its issuance only when the issuing process died between
    the intent and the completion: the certificate, if it was signed at all, was
    never handed out. The serial stays recorded (never reused) and the change is
    audited. A conditional UPDATE ... RETURNING makes each row fail exactly once,
    whichever process runs this.
    """
    cutoff = datetime.now(UTC) - older_than
    with db.session() as session:
        rows = (
            session.connection()
            .execute(
                update(_TABLE)
                .where(_TABLE.c.status == "pending", _TABLE.c.created_at < cutoff)
                .values(status="failed")
                .returning(
                    _TABLE.c.serial_hex,
                    _TABLE.c.tracking_code,
                    _TABLE.c.subject_hash,
                    _TABLE.c.profile,
                    _TABLE.c.issuer_ca,
                )
            )
            .all()
        )
        append_many(
            session,
            (
                AuditEvent(
                    tracking_code=row.tracking_code,
                    event_type="certificate_failed",
                    actor_type="operator",
                    actor_id=actor,
                    operation=row.profile,
                    subject_hash=row.subject_hash,
                    outcome="failed",
                    detail={
                        "serial": row.serial_hex,
                        "issuer_ca": row.issuer_ca,
                        "reason": "issuance intent never completed",
                    },
                )
                for row in rows
            ),
        )
    return sorted(row.serial_hex for row in rows)
