"""crls, crl revisions, ocsp responders

Revision ID: 0110
Revises: 0001
Depends on: 0100 (certificates: the CA key generations these rows belong to)
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0110"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("crl",)
depends_on: str | Sequence[str] | None = "0100"


def upgrade() -> None:
    op.create_table(
        "crls",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("issuer_ca", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("issuer_key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("crl_number", sa.BigInteger(), nullable=False),
        sa.Column("is_delta", sa.Boolean(), nullable=False),
        sa.Column("base_crl_number", sa.BigInteger(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("this_update", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("next_update", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer_key_id", "partition", "crl_number", name="uq_crls_number"),
    )
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_crls_latest",
            ["issuer_key_id", "partition", "is_delta", "crl_number"],
            unique=False,
        )
    op.create_table(
        "crl_revisions",
        sa.Column("issuer_key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_key_id", "partition"),
    )
    op.create_table(
        "ocsp_responders",
        sa.Column("serial_hex", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("issuer_key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("key_ref", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("certificate", sa.LargeBinary(), nullable=False),
        sa.Column("not_after", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("serial_hex"),
    )
    with op.batch_alter_table("ocsp_responders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ocsp_responders_issuer_key_id"), ["issuer_key_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ocsp_responders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ocsp_responders_issuer_key_id"))
    op.drop_table("ocsp_responders")
    op.drop_table("crl_revisions")
    with op.batch_alter_table("crls", schema=None) as batch_op:
        batch_op.drop_index("ix_crls_latest")
    op.drop_table("crls")
