"""Back-channel logout: clients.backchannel_logout_uri and oidc_logout_deliveries

Revision ID: 0370
Revises: 0360
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0370"
down_revision: str | Sequence[str] | None = "0360"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "backchannel_logout_uri",
                sqlmodel.sql.sqltypes.AutoString(length=2000),
                nullable=True,
            )
        )
    op.create_table(
        "oidc_logout_deliveries",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("logout_token", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("claimed_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oidc_logout_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oidc_logout_deliveries_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_oidc_logout_deliveries_next_attempt_at"),
            ["next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("oidc_logout_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_logout_deliveries_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_oidc_logout_deliveries_client_id"))
    op.drop_table("oidc_logout_deliveries")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("backchannel_logout_uri")
