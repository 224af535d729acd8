"""DPoP (RFC 9449): oauth_dpop_proofs, and clients whose access tokens must be DPoP-bound

Revision ID: 0340
Revises: 0330
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0340"
down_revision: str | Sequence[str] | None = "0330"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_dpop_proofs",
        sa.Column("proof_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("proof_hash"),
    )
    with op.batch_alter_table("oauth_dpop_proofs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_dpop_proofs_expires_at"), ["expires_at"], unique=False
        )
    # Existing clients keep bearer tokens unless they send a proof.
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "dpop_bound_access_tokens",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("dpop_bound_access_tokens")
    with op.batch_alter_table("oauth_dpop_proofs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_dpop_proofs_expires_at"))
    op.drop_table("oauth_dpop_proofs")
