"""Mutual-TLS clients (RFC 8705): clients.tls_client_auth_subject_dn and
clients.tls_client_certificate_bound_access_tokens

Revision ID: 0380
Revises: 0370
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0380"
down_revision: str | Sequence[str] | None = "0370"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing clients authenticate as before and hold bearer (or DPoP) tokens.
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "tls_client_auth_subject_dn",
                sqlmodel.sql.sqltypes.AutoString(length=1000),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "tls_client_certificate_bound_access_tokens",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("tls_client_certificate_bound_access_tokens")
        batch_op.drop_column("tls_client_auth_subject_dn")
