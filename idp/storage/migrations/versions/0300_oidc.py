"""oidc tables: interactions, grants, authorization codes, refresh tokens, client assertions

Revision ID: 0300
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0300"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("oidc",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_client_assertions",
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("jti", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti"),
    )
    with op.batch_alter_table("oidc_client_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oidc_client_assertions_expires_at"), ["expires_at"], unique=False
        )
    op.create_table(
        "oidc_grants",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("national_code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("entity_national_id", sqlmodel.sql.sqltypes.AutoString(length=11), nullable=True),
        sa.Column("phone_number", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("claims_request", sa.JSON(), nullable=False),
        sa.Column("acr", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("amr", sa.JSON(), nullable=False),
        sa.Column("auth_time", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("tracking_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oidc_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_grants_client_id"), ["client_id"], unique=False)
        batch_op.create_index("ix_oidc_grants_session", ["session_id"], unique=False)
    op.create_table(
        "oidc_interactions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("requested_claims", sa.JSON(), nullable=False),
        sa.Column("tracking_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("acr", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("amr", sa.JSON(), nullable=True),
        sa.Column("auth_time", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("entity_national_id", sqlmodel.sql.sqltypes.AutoString(length=11), nullable=True),
        sa.Column("consent_granted", sa.Boolean(), nullable=False),
        sa.Column("completed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("consumed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oidc_interactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oidc_interactions_client_id"), ["client_id"], unique=False
        )
    op.create_table(
        "oidc_authorization_codes",
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grant_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("redirect_uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("code_challenge", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("redeemed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oidc_grants.id"],
        ),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("oidc_authorization_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oidc_authorization_codes_grant_id"), ["grant_id"], unique=False
        )
    op.create_table(
        "oidc_refresh_tokens",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grant_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("parent_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("rotated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oidc_grants.id"],
        ),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("oidc_refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oidc_refresh_tokens_grant_id"), ["grant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oidc_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_refresh_tokens_grant_id"))
    op.drop_table("oidc_refresh_tokens")
    with op.batch_alter_table("oidc_authorization_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_authorization_codes_grant_id"))
    op.drop_table("oidc_authorization_codes")
    with op.batch_alter_table("oidc_interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_interactions_client_id"))
    op.drop_table("oidc_interactions")
    with op.batch_alter_table("oidc_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_oidc_grants_session")
        batch_op.drop_index(batch_op.f("ix_oidc_grants_client_id"))
    op.drop_table("oidc_grants")
    with op.batch_alter_table("oidc_client_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_client_assertions_expires_at"))
    op.drop_table("oidc_client_assertions")
