"""signed request objects (RFC 9101): clients that require them

Revision ID: 0330
Revises: 0310
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0330"
down_revision: str | Sequence[str] | None = "0310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing clients keep unsigned authorization requests (RFC 9101 §10.5's default).
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "require_signed_request_object",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("require_signed_request_object")
