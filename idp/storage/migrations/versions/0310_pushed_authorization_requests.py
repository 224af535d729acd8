"""pushed authorization requests (RFC 9126): oidc_pushed_requests, and clients that require them

Revision ID: 0310
Revises: 0300
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0310"
down_revision: str | Sequence[str] | None = "0300"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_pushed_requests",
        sa.Column("request_uri_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("request_uri_hash"),
    )
    with op.batch_alter_table("oidc_pushed_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oidc_pushed_requests_expires_at"), ["expires_at"], unique=False
        )
    # Existing clients keep plain authorization requests.
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "require_pushed_authorization_requests",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("require_pushed_authorization_requests")
    with op.batch_alter_table("oidc_pushed_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_pushed_requests_expires_at"))
    op.drop_table("oidc_pushed_requests")
