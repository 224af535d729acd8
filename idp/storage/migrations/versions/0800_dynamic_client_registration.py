"""Dynamic client registration: initial access tokens and registered clients (RFC 7591, 7592)

Revision ID: 0800
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0800"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("dcr",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dcr_initial_tokens",
        sa.Column("token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("national_id", sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
        sa.Column("service_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.PrimaryKeyConstraint("token_digest"),
    )
    with op.batch_alter_table("dcr_initial_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dcr_initial_tokens_national_id"), ["national_id"], unique=False
        )

    op.create_table(
        "dcr_clients",
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("national_id", sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
        sa.Column(
            "registration_token_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True
        ),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.client_id"]),
        sa.PrimaryKeyConstraint("client_id"),
    )
    with op.batch_alter_table("dcr_clients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dcr_clients_national_id"), ["national_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dcr_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dcr_clients_national_id"))
    op.drop_table("dcr_clients")
    with op.batch_alter_table("dcr_initial_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dcr_initial_tokens_national_id"))
    op.drop_table("dcr_initial_tokens")
