"""Issuing an attestation: the same facts signed as a JWT and as an SD-JWT.

:class:`AttestationIssuer` is pure (claims in, two signed strings out);
:func:`issue` adds the database: it claims a status list entry, records the
attestation and its audit event in the caller's transaction, then signs.

Both forms carry ``iss``, ``iat``, ``nbf``, ``exp``, ``jti`` (the attestation
id), ``txn`` (the tracking code, RFC 8417 §2.2), ``purpose``, ``aud`` when a
recipient is named, the ``status`` reference (Token Status List §6.1) and the
OIDC4IDA ``verified_claims``. No ``sub``: the attestation is meant to be
handed around, and a stable subject would link every copy.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlmodel import Session

from idp.attestations import rfc9901
from idp.attestations.claims import FactSelection, plain, verified_claims
from idp.attestations.signing import AttestationSigner
from idp.attestations.status_list import scatter
from idp.audit.log import AuditEvent, append, subject_hash
from idp.storage.attestations import (
    Attestation,
    allocate_status_index,
    attestation_for_update,
    insert_attestation,
    mark_revoked,
)
from idp.tracking import new_tracking_code
from verifiers.registry.base import LegalEntity, Person

TYP_JWT = "hoviyat-attestation+jwt"
TYP_SD_JWT = "hoviyat-attestation+sd-jwt"
FORMATS = ("jwt", "sd-jwt")
_STATUS_INDEX_LABEL = b"hoviyat/attestations/status-index/v1/"


class AttestationSettings(BaseSettings):
    """``HOVIYAT_ATTESTATION_*``: validity and status list publication."""

    model_config = SettingsConfigDict(env_prefix="HOVIYAT_ATTESTATION_", extra="ignore")

    default_validity_days: int = Field(30, description="validity when the request names none")
    max_validity_days: int = Field(90, description="longest validity a holder may ask for")
    status_list_ttl_seconds: int = Field(
        300, description="how long receivers may cache a Status List Token"
    )
    decoy_digests: int = Field(
        2, description="decoy digests per concealed object (RFC 9901 §4.2.5)"
    )
    signer_file: str = Field(
        "",
        description="PEM bundle of the signer (encrypted key, leaf, issuing CA, root); "
        "empty: <data_dir>/attestation/signer.pem, obtained from the Hoviyat CA on first use",
    )
    renew_days_before_expiry: int = Field(
        30, description="obtain a new signer certificate when the current one expires sooner"
    )


@dataclass(frozen=True)
class AttestationRequest:
    purpose: str
    selection: FactSelection
    recipient: str | None = None
    holder_jwk: dict[str, Any] | None = None
    validity: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if not self.purpose.strip():
            raise ValueError("purpose is required: say what the attestation is for")
        if self.validity <= timedelta(0):
            raise ValueError("validity must be positive")
        if self.holder_jwk is not None and "d" in self.holder_jwk:
            raise ValueError("holder_jwk must be a public key; it carries 'd'")


@dataclass(frozen=True)
class Issued:
    id: str
    tracking_code: str
    issued_at: datetime
    expires_at: datetime
    jwt: str
    sd_jwt: str
    status_list_id: int
    status_index: int
    claims: dict[str, Any] = field(repr=False)


def status_list_uri(issuer: str, list_id: int) -> str:
    return f"{issuer.rstrip('/')}/v1/attestations/status-lists/{list_id}"


@dataclass(frozen=True)
class AttestationIssuer:
    signer: AttestationSigner
    issuer: str
    decoys: int = 2

    def sign(
        self,
        person: Person,
        request: AttestationRequest,
        *,
        level: str,
        attestation_id: str,
        tracking_code: str,
        status: tuple[int, int],
        issued_at: datetime,
        verified_at: datetime | None = None,
        entity: LegalEntity | None = None,
    ) -> Issued:
        expires_at = issued_at + request.validity
        concealed = verified_claims(
            person,
            request.selection,
            level=level,
            verified_at=verified_at or issued_at,
            entity=entity,
        )
        list_id, index = status
        base: dict[str, Any] = {
            "iss": self.issuer,
            "iat": int(issued_at.timestamp()),
            "nbf": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": attestation_id,
            "txn": tracking_code,
            "purpose": request.purpose,
            "status": {"status_list": {"idx": index, "uri": status_list_uri(self.issuer, list_id)}},
        }
        if request.recipient:
            base["aud"] = request.recipient
        jwt_claims = {**base, "verified_claims": plain(concealed)}
        jwt = self.signer.sign(TYP_JWT, jwt_claims)
        sd_jwt = rfc9901.issue(
            {**base, "verified_claims": concealed},
            lambda payload: self.signer.sign(TYP_SD_JWT, payload),
            holder_jwk=request.holder_jwk,
            decoys=self.decoys,
        )
        return Issued(
            id=attestation_id,
            tracking_code=tracking_code,
            issued_at=issued_at,
            expires_at=expires_at,
            jwt=jwt,
            sd_jwt=sd_jwt,
            status_list_id=list_id,
            status_index=index,
            claims=jwt_claims,
        )


def issue(
    session: Session,
    issuer: AttestationIssuer,
    person: Person,
    request: AttestationRequest,
    *,
    level: str,
    pepper: bytes,
    entity: LegalEntity | None = None,
    actor_type: str = "citizen",
    client_id: str | None = None,
    now: datetime | None = None,
) -> Issued:
    """Record and sign one attestation; the row and its audit entry commit with the caller."""
    issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
    attestation_id = str(uuid.uuid4())
    tracking_code = new_tracking_code()
    slot = allocate_status_index(session)
    index_key = hmac.new(pepper, _STATUS_INDEX_LABEL + str(slot.list_id).encode(), "sha256")
    status = (slot.list_id, scatter(slot.position, slot.size, index_key.digest()))
    issued = issuer.sign(
        person,
        request,
        level=level,
        attestation_id=attestation_id,
        tracking_code=tracking_code,
        status=status,
        issued_at=issued_at,
        entity=entity,
    )
    holder = subject_hash(pepper, person.national_code)
    facts = sorted(request.selection.facts) + [f"age_over_{n}" for n in request.selection.age_over]
    insert_attestation(
        session,
        {
            "id": attestation_id,
            "holder_subject_hash": holder,
            "purpose": request.purpose,
            "recipient": request.recipient,
            "formats": list(FORMATS),
            "facts": facts,
            "status_list_id": status[0],
            "status_index": status[1],
            "issued_at": issued_at,
            "expires_at": issued.expires_at,
            "revoked_at": None,
            "tracking_code": tracking_code,
            "client_id": client_id,
        },
    )
    append(
        session,
        AuditEvent(
            tracking_code=tracking_code,
            event_type="attestation.issued",
            actor_type=actor_type,
            actor_id=client_id,
            operation="attestation.issue",
            subject_hash=holder,
            outcome="issued",
            detail={
                "attestation_id": attestation_id,
                "purpose": request.purpose,
                "recipient": request.recipient,
                "facts": facts,
                "level": level,
                "expires_at": issued.expires_at.isoformat(),
            },
        ),
    )
    return issued


def revoke(
    session: Session,
    attestation_id: str,
    *,
    actor_type: str,
    actor_id: str | None,
    reason: str,
    holder_subject_hash: str | None = None,
    now: datetime | None = None,
) -> Attestation | None:
    """Mark revoked (once); ``holder_subject_hash`` limits it to the holder's own attestations."""
    row = attestation_for_update(session, attestation_id)
    if row is None or (
        holder_subject_hash is not None and row.holder_subject_hash != holder_subject_hash
    ):
        return None
    if row.revoked_at is None:
        mark_revoked(session, row, now or datetime.now(UTC))
        append(
            session,
            AuditEvent(
                tracking_code=new_tracking_code(),
                event_type="attestation.revoked",
                actor_type=actor_type,
                actor_id=actor_id,
                operation="attestation.revoke",
                subject_hash=row.holder_subject_hash,
                outcome="revoked",
                detail={"attestation_id": attestation_id, "reason": reason},
            ),
        )
    return row
