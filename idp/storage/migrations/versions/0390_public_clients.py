"""Public clients (RFC 6749 §2.1): oidc_refresh_tokens.dpop_jkt binds their refresh
tokens to the DPoP key they proved (RFC 9449 §5)

Revision ID: 0390
Revises: 0380
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0390"
down_revision: str | Sequence[str] | None = "0380"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing refresh tokens belong to confidential clients: bound to their credentials.
    with op.batch_alter_table("oidc_refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dpop_jkt", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("oidc_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
