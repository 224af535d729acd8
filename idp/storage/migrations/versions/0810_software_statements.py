"""Software statement issuers and spent statements (RFC 7591 §2.3); revocable initial tokens

Revision ID: 0810
Revises: 0800
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0810"
down_revision: str | Sequence[str] | None = "0800"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dcr_statement_issuers",
        sa.Column("issuer", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=False),
        sa.Column("national_id", sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
        sa.Column("service_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("issuer"),
    )
    with op.batch_alter_table("dcr_statement_issuers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dcr_statement_issuers_national_id"), ["national_id"], unique=False
        )

    op.create_table(
        "dcr_statement_jtis",
        sa.Column("statement_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("statement_id"),
    )
    with op.batch_alter_table("dcr_statement_jtis", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dcr_statement_jtis_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("dcr_initial_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("dcr_initial_tokens", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("dcr_statement_jtis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dcr_statement_jtis_expires_at"))
    op.drop_table("dcr_statement_jtis")
    with op.batch_alter_table("dcr_statement_issuers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dcr_statement_issuers_national_id"))
    op.drop_table("dcr_statement_issuers")
