"""CA tables: the CA hierarchy, every certificate ever signed (or about to be), blocked keys.

A certificate row is written with status ``pending`` before the CA key signs
(the issuance intent) and completed to ``issued`` with its DER afterwards, so a
crash in between leaves a record, never an unrecorded signature. The serial
number is the primary key: uniqueness across processes is the database's job.
Revocation columns (``revoked_at``, ``revocation_reason``, ``invalidity_date``)
are written by revocation (``idp/storage/revocation_store.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime


class CertificateAuthority(SQLModel, table=True):
    """One key generation of a CA: the root, or an issuing CA (persons, organisations...).

    Rollover adds a row with the same ``name``, the next ``generation`` and a new
    key; the old row stays (``active = False``) so certificates it signed keep
    verifying and its CRLs keep being published.
    """

    __tablename__ = "certificate_authorities"
    __table_args__ = (UniqueConstraint("name", "generation", name="uq_ca_name_generation"),)

    key_id: str = Field(primary_key=True, max_length=64)  # subject key identifier, hex
    name: str = Field(max_length=40, index=True)
    generation: int = Field(default=1)
    parent_key_id: str | None = Field(default=None, max_length=64)  # None for the root
    certificate: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )  # None while an offline root has not signed the CSR yet
    key_ref: str = Field(max_length=255)  # "file:<path>" or "pkcs11:<label>"
    active: bool = Field(default=True, index=True)
    # Fixed at creation: each certificate's CDP names its partition (ca/crl.py).
    crl_partitions: int = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class CertificateRecord(SQLModel, table=True):
    """A certificate: pending (intent recorded), issued, revoked, or failed (never signed)."""

    __tablename__ = "certificates"
    __table_args__ = (
        Index("ix_certificates_issuer_status", "issuer_ca", "status"),
        Index("ix_certificates_issuer_key_revoked", "issuer_key_id", "revoked_at"),
    )

    serial_hex: str = Field(primary_key=True, max_length=40)
    issuer_ca: str = Field(max_length=40)
    issuer_key_id: str = Field(max_length=64)
    profile: str = Field(max_length=60)
    status: str = Field(max_length=10)  # pending | issued | revoked | failed
    subject: str = Field(max_length=1000)  # RFC 4514
    subject_hash: str | None = Field(default=None, max_length=64, index=True)
    spki_sha256: str = Field(max_length=64, index=True)
    not_before: datetime = Field(sa_type=UtcDateTime)
    not_after: datetime = Field(sa_type=UtcDateTime)
    der: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    requested_by: str = Field(max_length=200)
    request_reason: str | None = Field(default=None, max_length=500)
    tracking_code: str = Field(max_length=40, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    issued_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revocation_reason: str | None = Field(default=None, max_length=40)
    invalidity_date: datetime | None = Field(default=None, sa_type=UtcDateTime)


class BlockedKey(SQLModel, table=True):
    """A public key refused for every future request (revoked for key compromise)."""

    __tablename__ = "blocked_keys"

    spki_sha256: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=200)
    serial_hex: str | None = Field(default=None, max_length=40)
    blocked_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
