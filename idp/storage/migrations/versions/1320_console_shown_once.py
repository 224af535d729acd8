"""The console's shown-once secrets: console_shown_once (issue 15)

Revision ID: 1320
Revises: 1310

A new or rotated client secret waits here, sealed, for the one GET that shows
it (Post/Redirect/Get: reloading the page no longer rotates again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "1320"
down_revision: str | Sequence[str] | None = "1310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "console_shown_once",
        sa.Column("id", _STR(length=43), nullable=False),
        sa.Column("session_id", _STR(length=40), nullable=False),
        sa.Column("client_id", _STR(length=64), nullable=False),
        sa.Column("notice_key", _STR(length=64), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=True),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("expires_at", _TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("console_shown_once", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_shown_once_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("console_shown_once", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_shown_once_expires_at"))
    op.drop_table("console_shown_once")
