"""Service counters (Article 14): counter_offices, counter_members, assisted_sessions (issue 15)

Revision ID: 1100
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "1100"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("counters",)
depends_on: str | Sequence[str] | None = None

_S = sqlmodel.sql.sqltypes.AutoString
_T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "counter_offices",
        sa.Column("national_id", _S(length=11), nullable=False),
        sa.Column("name", _S(length=300), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("created_at", _T(), nullable=False),
        sa.PrimaryKeyConstraint("national_id"),
    )
    op.create_table(
        "counter_members",
        sa.Column("office_id", _S(length=11), nullable=False),
        sa.Column("person_key", _S(length=64), nullable=False),
        sa.Column("role", _S(length=20), nullable=False),
        sa.Column("display_name", _S(length=200), nullable=False),
        sa.Column("added_at", _T(), nullable=False),
        sa.PrimaryKeyConstraint("office_id", "person_key", "role"),
    )
    with op.batch_alter_table("counter_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_counter_members_person_key"), ["person_key"], unique=False
        )
    op.create_table(
        "assisted_sessions",
        sa.Column("id", _S(length=40), nullable=False),
        sa.Column("office_id", _S(length=11), nullable=False),
        sa.Column("clerk_key", _S(length=64), nullable=False),
        sa.Column("clerk_name", _S(length=200), nullable=False),
        sa.Column("citizen_key", _S(length=64), nullable=False),
        sa.Column("tracking_code", _S(length=40), nullable=False),
        sa.Column("created_at", _T(), nullable=False),
        sa.Column("expires_at", _T(), nullable=False),
        sa.Column("code_digest", _S(length=64), nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("code_max_attempts", sa.Integer(), nullable=False),
        sa.Column("code_expires_at", _T(), nullable=True),
        sa.Column("codes_sent", sa.Integer(), nullable=False),
        sa.Column("present_at", _T(), nullable=True),
        sa.Column("ended_at", _T(), nullable=True),
        sa.Column("acts", sa.Integer(), nullable=False),
        sa.Column("flagged_at", _T(), nullable=True),
        sa.Column("flagged_by", _S(length=64), nullable=True),
        sa.Column("flag_reason", _S(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assisted_sessions", schema=None) as batch_op:
        for column in ("office_id", "clerk_key", "citizen_key", "created_at"):
            batch_op.create_index(
                batch_op.f(f"ix_assisted_sessions_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("assisted_sessions", schema=None) as batch_op:
        for column in ("office_id", "clerk_key", "citizen_key", "created_at"):
            batch_op.drop_index(batch_op.f(f"ix_assisted_sessions_{column}"))
    op.drop_table("assisted_sessions")
    with op.batch_alter_table("counter_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_counter_members_person_key"))
    op.drop_table("counter_members")
    op.drop_table("counter_offices")
