"""The console: console_roles, console_sessions, console_sign_ins, console_approvals (issue 15)

Revision ID: 1000
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "1000"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("console",)
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString
_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "console_roles",
        sa.Column("person_key", _STR(length=64), nullable=False),
        sa.Column("role", _STR(length=32), nullable=False),
        sa.Column("granted_at", _TIME(), nullable=False),
        sa.Column("granted_by", _STR(length=100), nullable=False),
        sa.PrimaryKeyConstraint("person_key", "role"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", _STR(length=40), nullable=False),
        sa.Column("token_digest", _STR(length=64), nullable=False),
        sa.Column("person_key", _STR(length=64), nullable=False),
        sa.Column("display_name", _STR(length=200), nullable=False),
        sa.Column("acr", _STR(length=100), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("last_seen_at", _TIME(), nullable=False),
        sa.Column("expires_at", _TIME(), nullable=False),
        sa.Column("ended_at", _TIME(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_sessions_token_digest"), ["token_digest"], unique=True
        )
        batch_op.create_index(
            batch_op.f("ix_console_sessions_person_key"), ["person_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_console_sessions_expires_at"), ["expires_at"], unique=False
        )
    op.create_table(
        "console_sign_ins",
        sa.Column("binding_digest", _STR(length=64), nullable=False),
        sa.Column("state", _STR(length=64), nullable=False),
        sa.Column("nonce", _STR(length=64), nullable=False),
        sa.Column("code_verifier", _STR(length=128), nullable=False),
        sa.Column("return_to", _STR(length=500), nullable=False),
        sa.Column("expires_at", _TIME(), nullable=False),
        sa.PrimaryKeyConstraint("binding_digest"),
    )
    with op.batch_alter_table("console_sign_ins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_console_sign_ins_expires_at"), ["expires_at"], unique=False
        )
    op.create_table(
        "console_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _STR(length=40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("requested_by", _STR(length=64), nullable=False),
        sa.Column("approved_by", _STR(length=64), nullable=True),
        sa.Column("state", _STR(length=20), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
        sa.Column("decided_at", _TIME(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("console_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_approvals_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_console_approvals_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("console_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_approvals_state"))
        batch_op.drop_index(batch_op.f("ix_console_approvals_kind"))
    op.drop_table("console_approvals")
    with op.batch_alter_table("console_sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sign_ins_expires_at"))
    op.drop_table("console_sign_ins")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_console_sessions_person_key"))
        batch_op.drop_index(batch_op.f("ix_console_sessions_token_digest"))
    op.drop_table("console_sessions")
    op.drop_table("console_roles")
