"""DPoP-bound authorization codes (RFC 9449 §10): oidc_authorization_codes.dpop_jkt

Revision ID: 0350
Revises: 0340
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0350"
down_revision: str | Sequence[str] | None = "0340"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Codes issued before this revision are bound to no key, as before.
    with op.batch_alter_table("oidc_authorization_codes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dpop_jkt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("oidc_authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
