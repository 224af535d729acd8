"""OpenID Connect state: interactions, authorization codes, grants, refresh tokens, assertions.

Every single-use value is stored as a SHA-256 digest (a stolen database row
cannot be replayed) and consumed with a conditional ``UPDATE ... WHERE
consumed_at IS NULL``, so two workers racing on one value see one winner.

``oidc_interactions`` is the contract with the login pages: this module's
owner writes ``params``/``requested_claims``; the login pages fill the
session (whose row names the person), ``acr``/``amr``/``auth_time``, entity,
consent and ``completed_at`` (or ``error``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic_core import PydanticUndefined
from sqlalchemy import JSON, Column, Index, insert
from sqlmodel import Field, Session, SQLModel

from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime


class OidcInteraction(SQLModel, table=True):
    """One authorization request waiting for the user to log in and consent."""

    __tablename__ = "oidc_interactions"

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64, index=True)
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    requested_claims: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    tracking_code: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    # Filled by the login pages.
    session_id: str | None = Field(default=None, max_length=64)
    acr: str | None = Field(default=None, max_length=64)
    amr: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    auth_time: datetime | None = Field(default=None, sa_type=UtcDateTime)
    entity_national_id: str | None = Field(default=None, max_length=11)
    consent_granted: bool = Field(default=False)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    error: str | None = Field(default=None, max_length=40)
    # Set once, atomically, when it is turned into a code (idp.oidc.completion).
    consumed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


# The columns the login pages fill in later, as a new interaction holds them
# (the model's plain defaults; the rest is set by /authorize).
NEW_INTERACTION: dict[str, Any] = {
    name: field.default
    for name, field in OidcInteraction.model_fields.items()
    if field.default is not PydanticUndefined and field.default_factory is None
}
# A Core insert on the login path, built once (see idp.storage.grants).
_INSERT_INTERACTION = insert(OidcInteraction.__table__)  # type: ignore[attr-defined]


def insert_interaction(session: Session, values: dict[str, Any]) -> None:
    """Store a new interaction: :data:`NEW_INTERACTION` and what /authorize set."""
    session.execute(_INSERT_INTERACTION, values)


class OidcGrant(SQLModel, table=True):
    """What one user authorized one client to get; codes and tokens hang off it.

    Revoking the grant (code replay, refresh reuse, RFC 7009, logout) kills
    every access and refresh token issued under it.
    """

    __tablename__ = "oidc_grants"
    __table_args__ = (Index("ix_oidc_grants_session", "session_id"),)

    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64, index=True)
    national_code: str = Field(max_length=10)
    entity_national_id: str | None = Field(default=None, max_length=11)
    phone_number: str | None = Field(default=None, max_length=20)
    scope: list[str] = Field(sa_column=Column(JSON, nullable=False))
    claims_request: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    acr: str = Field(max_length=64)
    amr: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    auth_time: datetime = Field(sa_type=UtcDateTime)
    session_id: str | None = Field(default=None, max_length=64)
    tracking_code: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_reason: str | None = Field(default=None, max_length=40)


class GrantRecord(Protocol):
    """A grant as read: the ORM object or a Core row of ``oidc_grants`` (hot paths read rows)."""

    id: str
    client_id: str
    national_code: str
    entity_national_id: str | None
    phone_number: str | None
    scope: list[Any]
    claims_request: dict[str, Any]
    acr: str
    amr: list[Any]
    auth_time: datetime
    session_id: str | None
    tracking_code: str
    revoked_at: datetime | None


class _IssuedUnderGrant(SQLModel):
    """A single-use value issued to one client under a grant, until it expires."""

    grant_id: str = Field(foreign_key="oidc_grants.id", max_length=64, index=True)
    client_id: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class OidcAuthorizationCode(_IssuedUnderGrant, table=True):
    """An authorization code, bound to its request's redirect URI, PKCE challenge and nonce."""

    __tablename__ = "oidc_authorization_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    redirect_uri: str = Field(max_length=2000)
    code_challenge: str = Field(max_length=64)
    nonce: str | None = Field(default=None, max_length=255)
    # RFC 9449 §10: the DPoP key the authorization request bound the code to.
    dpop_jkt: str | None = Field(default=None, max_length=64)
    redeemed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class OidcRefreshToken(_IssuedUnderGrant, table=True):
    """One link of a grant's refresh-token chain; ``rotated_at`` set when it was used."""

    __tablename__ = "oidc_refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    parent_hash: str | None = Field(default=None, max_length=64)
    rotated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # A public client's refresh token is bound to its DPoP key (RFC 9449 §5).
    dpop_jkt: str | None = Field(default=None, max_length=64)


class OidcClientAssertion(SQLModel, table=True):
    """``jti`` of each accepted private_key_jwt assertion, kept until it expires (RFC 7523 §3)."""

    __tablename__ = "oidc_client_assertions"

    client_id: str = Field(primary_key=True, max_length=64)
    jti: str = Field(primary_key=True, max_length=255)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)


class OidcPushedRequest(SQLModel, table=True):
    """An authorization request pushed to /par (RFC 9126), until its request_uri is used.

    Kept under the SHA-256 of its ``request_uri``; the row is deleted when it is
    used (so the login hint and claims it may carry go with it) or, unused,
    soon after it expires.
    """

    __tablename__ = "oidc_pushed_requests"

    request_uri_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64)
    # Each authorization parameter with its values, as /authorize reads them.
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)
