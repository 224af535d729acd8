"""Tables of the tamper-evident audit log (issue 5): the Merkle tree over ``audit_entries``.

- ``audit_tree_head``: one row (``id = 1``), the current tree size and root. Every
  sequencing run locks it, so two writers can never grow two trees.
- ``audit_tree_nodes``: the hash of every complete perfect subtree, keyed by
  ``(level, node_index)``; level 0 holds the leaf hashes. A proof needs at most
  two such hashes per level, so it reads O(log n) rows.
- ``audit_checkpoints``: signed checkpoints (C2SP signed notes), oldest first.
- ``audit_signing_keys``: the log's ECDSA P-256 key, AES-256-GCM encrypted at rest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

from idp.storage.models import AuditEntry, utcnow
from idp.storage.types import UtcDateTime


class AuditTreeHead(SQLModel, table=True):
    __tablename__ = "audit_tree_head"

    id: int = Field(default=1, primary_key=True)
    tree_size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class AuditTreeNode(SQLModel, table=True):
    __tablename__ = "audit_tree_nodes"

    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    node_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditCheckpoint(SQLModel, table=True):
    __tablename__ = "audit_checkpoints"

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signed_at: datetime = Field(default_factory=utcnow, index=True, sa_type=UtcDateTime)
    key_id: str = Field(max_length=16)
    note: str = Field(sa_column=Column(Text, nullable=False))


class AuditSigningKey(SQLModel, table=True):
    __tablename__ = "audit_signing_keys"

    key_id: str = Field(primary_key=True, max_length=16)
    state: str = Field(max_length=10, index=True)
    public_key_der: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    private_key_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    certificate_chain_pem: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# Entries not yet in the tree, found by the sequencer without scanning the log.
# Declared here (the audit log owns the Merkle-related parts of audit_entries).
Index(
    "ix_audit_entries_unsequenced",
    AuditEntry.__table__.c.id,  # type: ignore[attr-defined]
    sqlite_where=AuditEntry.__table__.c.leaf_index.is_(None),  # type: ignore[attr-defined]
    postgresql_where=AuditEntry.__table__.c.leaf_index.is_(None),  # type: ignore[attr-defined]
)
