"""The registration step: a CSR, a profile and a subject reference become an issuance order.

Decides (profile, subject from the registries, CSR acceptable) and then has
``ca.issuance`` sign; that step refuses blocked or CA keys inside the very
transaction that records the intent. Refusals raise :class:`CertificateRefused`
and leave nothing written, except one: asking the operator API for a profile
that confers CA-side power (``issuance = "ceremony"``) is refused with 403 and
that refusal is audited, since it is what an attacker forging revocation status
would try first. The CA's own ceremony commands issue those profiles through
:meth:`Pki.ceremony_certificate`, audited as ``"issuance": "ceremony"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from ca.hierarchy import Hierarchy, HierarchyError, IssuingCA
from ca.issuance import Issued, KeyRefused, LintRefused, Order, issue_batch
from ca.keys import KeyStoreError
from idp.audit.log import AuditEvent, subject_hash
from idp.pki.csr import check_csr, parse_csr
from idp.pki.refusals import CertificateRefused
from idp.pki.subjects import SubjectReference, decide_subject
from idp.storage.certificate_store import (
    Committer,
    IntentRecords,
    certificate_record,
    certificate_records,
    record_audit_event,
    through_group_commit,
)
from idp.storage.certificates import CertificateRecord
from idp.storage.engine import Database
from idp.storage.group_commit import GroupCommitter
from idp.tracking import new_tracking_code
from policies.certificate_profiles import CertificateProfile, load_profiles
from verifiers.registry.base import Registries


@dataclass(frozen=True)
class Request:
    """One certificate request as an operator or a back-office client makes it."""

    csr: bytes | str
    profile: str
    subject: SubjectReference
    requested_by: str
    request_reason: str | None = None
    actor_type: str = "client"
    issuing_ca: str | None = None  # only for profiles that serve any CA (OCSP responders)


@dataclass
class Pki:
    db: Database
    hierarchy: Hierarchy
    registries: Registries
    subject_pepper: bytes
    profiles: dict[str, CertificateProfile]
    # A group committer (optional): concurrent requests share the intent and the
    # result commits. None (the default, the server's too): each write commits on
    # its own, which costs less CPU per certificate (bench/bench_ca.py, "threads").
    commit: Committer | None = None
    intents: IntentRecords = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.intents = IntentRecords(self.db, self.commit)

    @classmethod
    def create(
        cls,
        db: Database,
        hierarchy: Hierarchy,
        registries: Registries,
        subject_pepper: bytes,
        committer: GroupCommitter | None = None,
    ) -> Pki:
        commit = through_group_commit(committer) if committer else None
        return cls(db, hierarchy, registries, subject_pepper, load_profiles(), commit)

    def profile(self, name: str) -> CertificateProfile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise CertificateRefused(
                "unknown-profile", f"no certificate profile {name!r}; known: {known}"
            ) from None

    def issuing_ca_for(self, profile: CertificateProfile, override: str | None) -> IssuingCA:
        name = profile.issuing_ca
        if name == "*":
            if not override:
                raise CertificateRefused(
                    "issuing-ca-missing", f"profile {profile.name} needs the issuing CA named"
                )
            name = override
        elif override and override != name:
            raise CertificateRefused(
                "issuing-ca-refused", f"profile {profile.name} is issued by {name!r} only"
            )
        if name == "root":
            raise CertificateRefused(
                "issuing-ca-refused", "the root CA issues only CA certificates"
            )
        try:
            return self.hierarchy.issuing_ca(name)
        except HierarchyError as exc:
            raise CertificateRefused("issuing-ca-unavailable", str(exc), status=409) from None
        except KeyStoreError as exc:
            raise CertificateRefused(
                "ca-keys-unavailable",
                f"the CA's keys cannot be used: {exc}",
                status=503,
                retry_after=30,
            ) from None

    def refuse_ceremony_profile(self, request: Request, profile: CertificateProfile) -> NoReturn:
        """Audit, then refuse, an operator-API request for a ceremony-only profile."""
        tracking_code = new_tracking_code()
        record_audit_event(
            self.db,
            AuditEvent(
                tracking_code=tracking_code,
                event_type="certificate_refused",
                actor_type=request.actor_type,
                actor_id=request.requested_by,
                legal_basis=request.request_reason,
                operation=profile.name,
                outcome="refused",
                detail={
                    "reason": "profile-ceremony-only",
                    "profile": profile.name,
                    "issuing_ca": request.issuing_ca or profile.issuing_ca,
                },
            ),
        )
        raise CertificateRefused(
            "profile-ceremony-only",
            f"profile {profile.name} confers CA-side power and is issued only by the CA's "
            f"own ceremony commands, never through the operator API (refusal recorded as "
            f"{tracking_code})",
            status=403,
        )

    def prepare(
        self, request: Request, tracking_code: str | None = None, *, ceremony: bool = False
    ) -> Order:
        """Every decision, no writes: the order ``ca.issuance`` signs, or a refusal.

        ``ceremony`` is for the CA's own commands only (:meth:`ceremony_certificate`);
        the operator API never sets it.
        """
        profile = self.profile(request.profile)
        if profile.ceremony_only and not ceremony:
            self.refuse_ceremony_profile(request, profile)
        csr, public_key = parse_csr(request.csr)
        decided = decide_subject(
            profile.subject, request.subject, self.registries, profile.max_dns_names
        )
        check_csr(csr, public_key, profile, decided.name, decided.dns_names)
        order = Order(
            profile=profile,
            issuing_ca=self.issuing_ca_for(profile, request.issuing_ca),
            public_key=public_key,  # type: ignore[arg-type]
            subject=decided.name,
            dns_names=decided.dns_names,
            subject_hash=(
                subject_hash(self.subject_pepper, decided.identifier)
                if decided.identifier
                else None
            ),
            requested_by=request.requested_by,
            request_reason=request.request_reason,
            tracking_code=tracking_code or new_tracking_code(),
            actor_type=request.actor_type,
            audit_detail={"issuance": "ceremony"} if ceremony else {},
        )
        return order

    def prepare_many(self, requests: Sequence[Request]) -> list[Order]:
        """Bulk issuance: every request decided; any refusal refuses the batch (the
        caller resubmits without the offending request)."""
        return [self.prepare(request) for request in requests]

    def issue_orders(self, orders: Sequence[Order], lint: bool | None = None) -> list[Issued]:
        try:
            return issue_batch(self.intents, orders, lint)
        except KeyRefused as exc:
            slug = "csr-key-blocked" if exc.reason == "blocked" else "csr-key-refused"
            raise CertificateRefused(slug, exc.detail) from None
        except LintRefused as exc:
            raise CertificateRefused("lint-failed", str(exc), status=422) from None

    def request_certificate(self, request: Request, lint: bool | None = None) -> Issued:
        """The operator path (HTTP ``POST /v1/certificates``, ``hoviyat ca issue``)."""
        return self.issue_orders([self.prepare(request)], lint)[0]

    def ceremony_certificate(self, request: Request, lint: bool | None = None) -> Issued:
        """The CA's own ceremony path: the only way to a ``issuance = "ceremony"`` profile.

        For CA commands run by the CA's administrators (responder, attestation and
        audit-log signing keys); never reachable from the operator API. The
        ``certificate_issued`` audit entry says ``"issuance": "ceremony"``.
        """
        return self.issue_orders([self.prepare(request, ceremony=True)], lint)[0]

    # -- reading --------------------------------------------------------------

    def record(self, serial_hex: str) -> CertificateRecord | None:
        return certificate_record(self.db, serial_hex)

    def records(
        self, limit: int = 100, profile: str | None = None, status: str | None = None
    ) -> list[CertificateRecord]:
        return certificate_records(self.db, limit, profile, status)
