"""attestations: issued attestations, status list counters, sealed shared presentations

Revision ID: 0500
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0500"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("attest",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attestation_status_lists",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("list_id"),
    )
    op.create_table(
        "attestations",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column(
            "holder_subject_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("formats", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("status_list_id", sa.Integer(), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("issued_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("tracking_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("status_list_id", "status_index", name="uq_attestations_status_entry"),
    )
    with op.batch_alter_table("attestations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attestations_holder_issued", ["holder_subject_hash", "issued_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attestations_revoked_at"), ["revoked_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_attestations_tracking_code"), ["tracking_code"], unique=False
        )

    op.create_table(
        "attestation_shares",
        sa.Column("code_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("attestation_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["attestation_id"],
            ["attestations.id"],
        ),
        sa.PrimaryKeyConstraint("code_digest"),
    )
    with op.batch_alter_table("attestation_shares", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attestation_shares_attestation_id"), ["attestation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attestation_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attestation_shares_attestation_id"))

    op.drop_table("attestation_shares")
    with op.batch_alter_table("attestations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attestations_tracking_code"))
        batch_op.drop_index(batch_op.f("ix_attestations_revoked_at"))
        batch_op.drop_index("ix_attestations_holder_issued")

    op.drop_table("attestations")
    op.drop_table("attestation_status_lists")
