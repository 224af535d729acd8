"""ACME accounts, external account binding keys and spent nonces (RFC 8555 §7.3, §7.3.4, §6.5)

Revision ID: 0700
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0700"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("acme_accounts",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "acme_spent_nonces",
        sa.Column("nonce_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce_id"),
    )
    with op.batch_alter_table("acme_spent_nonces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acme_spent_nonces_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "acme_eab_keys",
        sa.Column("kid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("national_id", sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
        sa.Column("service_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("hmac_key_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("bound_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
        sa.UniqueConstraint("account_id"),
    )
    with op.batch_alter_table("acme_eab_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acme_eab_keys_national_id"), ["national_id"], unique=False
        )

    op.create_table(
        "acme_accounts",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("ca", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        sa.Column("jwk_thumbprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("contact", sa.JSON(), nullable=False),
        sa.Column("terms_agreed", sa.Boolean(), nullable=False),
        sa.Column("eab_key_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("national_id", sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
        sa.Column("service_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["eab_key_id"], ["acme_eab_keys.kid"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("eab_key_id"),
        sa.UniqueConstraint("jwk_thumbprint"),
    )
    with op.batch_alter_table("acme_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acme_accounts_national_id"), ["national_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("acme_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_accounts_national_id"))
    op.drop_table("acme_accounts")
    with op.batch_alter_table("acme_eab_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_eab_keys_national_id"))
    op.drop_table("acme_eab_keys")
    with op.batch_alter_table("acme_spent_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_spent_nonces_expires_at"))
    op.drop_table("acme_spent_nonces")
