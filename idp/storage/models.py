"""Foundation tables: clients, service policies, audit entries, rate counters, token keys.

Feature areas keep their own tables in their own modules beside this one
(``certificates.py``, ``oidc.py`` ...), each with its own Alembic branch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from idp.storage.types import UtcDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


class ServicePolicyRow(SQLModel, table=True):
    """A service policy as loaded into the database (the files in ``policies/`` are the source)."""

    __tablename__ = "service_policies"

    service_code: str = Field(primary_key=True, max_length=64)
    document: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    digest: str = Field(max_length=64)
    loaded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Client(SQLModel, table=True):
    """An OAuth client: an agency app or back-office system, bound to one service policy."""

    __tablename__ = "clients"

    client_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    service_code: str = Field(foreign_key="service_policies.service_code", max_length=64)
    secret_digest: str | None = Field(default=None, max_length=64)
    token_endpoint_auth_method: str = Field(default="client_secret_basic", max_length=40)
    grant_types: list[str] = Field(
        default_factory=lambda: ["client_credentials"], sa_column=Column(JSON, nullable=False)
    )
    redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    post_logout_redirect_uris: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    id_token_signed_response_alg: str = Field(default="ES256", max_length=10)
    sector_identifier: str | None = Field(default=None, max_length=255)
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # RFC 9126 §6: its authorization requests must come through /par.
    require_pushed_authorization_requests: bool = Field(default=False)
    # RFC 9101 §10.5: its authorization requests must be signed request objects.
    require_signed_request_object: bool = Field(default=False)
    # RFC 9449 §5.2: its access tokens must be DPoP-bound; /token refuses it without a proof.
    dpop_bound_access_tokens: bool = Field(default=False)
    # "fapi2": held to the FAPI 2.0 Security Profile (idp.oidc.fapi2); None: no profile.
    profile: str | None = Field(default=None, max_length=16)
    # OpenID Connect Back-Channel Logout 1.0 §2.2: where its logout tokens are POSTed.
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    # RFC 8705 §2.1.2: the exact subject DN (RFC 4514) of its tls_client_auth certificate.
    tls_client_auth_subject_dn: str | None = Field(default=None, max_length=1000)
    # RFC 8705 §3.4: its access tokens are bound to its TLS client certificate.
    tls_client_certificate_bound_access_tokens: bool = Field(default=False)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AuditEntry(SQLModel, table=True):
    """One event: a verification answer or refusal, a login, a token, a certificate...

    ``subject_hash`` is an HMAC of the national code or national identifier under
    the server's pepper, never the raw number. ``leaf_index`` is the entry's
    position in the tamper-evident log, assigned by the sequencer.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_subject_time", "subject_hash", "created_at"),
        UniqueConstraint("leaf_index", name="uq_audit_entries_leaf_index"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    created_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UtcDateTime)
    tracking_code: str = Field(max_length=40, index=True)
    event_type: str = Field(max_length=40, index=True)
    actor_type: str = Field(max_length=20)
    actor_id: str | None = Field(default=None, max_length=200, index=True)
    service_code: str | None = Field(default=None, max_length=64, index=True)
    legal_basis: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    operation: str | None = Field(default=None, max_length=64)
    subject_hash: str | None = Field(default=None, max_length=64)
    outcome: str = Field(max_length=40)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    leaf_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class RateCounter(SQLModel, table=True):
    """Fixed-window request counters shared by every worker (atomic upsert)."""

    __tablename__ = "rate_counters"

    bucket: str = Field(primary_key=True, max_length=200)
    # Indexed for pruning: expired windows are found and deleted in chunks.
    window_start: int = Field(primary_key=True, index=True)
    count: int = Field(default=0)


class TokenSigningKey(SQLModel, table=True):
    """A JOSE signing key for tokens; the private half is AES-GCM encrypted at rest.

    States: ``next`` (published, not yet signing), ``active`` (signing),
    ``retired`` (published until its tokens expire), ``expired`` (gone from JWKS).
    """

    __tablename__ = "token_signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    alg: str = Field(max_length=10, index=True)
    state: str = Field(max_length=10, index=True)
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    private_key_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    activated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
