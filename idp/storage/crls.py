"""Certificate status tables: published CRLs, revocation revisions, OCSP responders.

``crl_revisions`` counts the revocations of each CRL partition of each CA key
generation; a revocation increments it in its own transaction (an atomic
upsert, so several processes never lose an increment). A CRL records the
revision it was built from, so "a revocation happened since" is one integer
comparison: the CRL is stale and the next request reissues it.

CRL numbers are unique per CA key generation and partition (full and delta
CRLs share one sequence, RFC 5280 section 5.2.3); two processes racing to
publish the same number meet the unique constraint and one of them yields.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime


class CRLRecord(SQLModel, table=True):
    """One signed CRL, full or delta, of one partition of one CA key generation."""

    __tablename__ = "crls"
    __table_args__ = (
        UniqueConstraint("issuer_key_id", "partition", "crl_number", name="uq_crls_number"),
        Index("ix_crls_latest", "issuer_key_id", "partition", "is_delta", "crl_number"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    issuer_ca: str = Field(max_length=60)  # publication name: persons, persons-g2...
    issuer_key_id: str = Field(max_length=64)
    partition: int = Field(default=0)
    crl_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    is_delta: bool = Field(default=False)
    base_crl_number: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    revision: int = Field(default=0)  # crl_revisions.revision this CRL reflects
    entries: int = Field(default=0)
    this_update: datetime = Field(sa_type=UtcDateTime)
    next_update: datetime = Field(sa_type=UtcDateTime)
    der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CRLRevision(SQLModel, table=True):
    """How many revocations a CRL partition has seen (incremented with each revocation)."""

    __tablename__ = "crl_revisions"

    issuer_key_id: str = Field(primary_key=True, max_length=64)
    partition: int = Field(primary_key=True)
    revision: int = Field(default=0)


class OCSPResponderRecord(SQLModel, table=True):
    """A delegated OCSP responder certificate of one CA key generation, and its key's ref."""

    __tablename__ = "ocsp_responders"

    serial_hex: str = Field(primary_key=True, max_length=40)
    issuer_key_id: str = Field(max_length=64, index=True)
    key_ref: str = Field(max_length=255)
    certificate: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    not_after: datetime = Field(sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
