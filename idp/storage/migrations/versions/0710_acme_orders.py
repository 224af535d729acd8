"""ACME orders, authorizations and challenges (RFC 8555 §7.1.3, §7.1.4, §8)

Revision ID: 0710
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0710"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("acme_orders",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "acme_authorizations",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ca", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("identifier", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("wildcard", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acme_authorizations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_acme_authorizations_reuse",
            ["account_id", "ca", "identifier", "status"],
            unique=False,
        )

    op.create_table(
        "acme_challenges",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("authz_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("processing_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("validated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acme_challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acme_challenges_authz_id"), ["authz_id"], unique=False)

    op.create_table(
        "acme_order_authorizations",
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("authz_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "authz_id"),
    )
    with op.batch_alter_table("acme_order_authorizations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acme_order_authorizations_authz_id"), ["authz_id"], unique=False
        )

    op.create_table(
        "acme_orders",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("ca", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("profile", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("replaces", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("tracking_code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("processing_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("certificate_serial", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_acme_orders_account_ca", ["account_id", "ca", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_acme_orders_certificate_serial"), ["certificate_serial"], unique=False
        )
        # RFC 9773 §5: one order that is not invalid replaces a certificate.
        batch_op.create_index(
            "uq_acme_orders_replaces",
            ["replaces"],
            unique=True,
            sqlite_where=sa.text("status <> 'invalid'"),
            postgresql_where=sa.text("status <> 'invalid'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("acme_orders", schema=None) as batch_op:
        batch_op.drop_index("uq_acme_orders_replaces")
        batch_op.drop_index(batch_op.f("ix_acme_orders_certificate_serial"))
        batch_op.drop_index("ix_acme_orders_account_ca")

    op.drop_table("acme_orders")
    with op.batch_alter_table("acme_order_authorizations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_order_authorizations_authz_id"))

    op.drop_table("acme_order_authorizations")
    with op.batch_alter_table("acme_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acme_challenges_authz_id"))

    op.drop_table("acme_challenges")
    with op.batch_alter_table("acme_authorizations", schema=None) as batch_op:
        batch_op.drop_index("ix_acme_authorizations_reuse")

    op.drop_table("acme_authorizations")
