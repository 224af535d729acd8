"""The console: what approving did, recorded on the approval (issue 15)

Revision ID: 1310
Revises: 1000

An approved request whose operation runs after the decision's transaction (a CA
key rollover, an issuing CA installation, a ceremony certificate) is claimed
(``applying_since``) in the decision's transaction and marked done
(``applied_at``, ``result``) when the operation returns. A claim left by a worker
that died in between can be taken again from the approval's page. Requests
approved before this revision were carried out in their decision's transaction:
they are marked applied then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "1310"
down_revision: str | Sequence[str] | None = "1000"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("console_approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("applying_since", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("applied_at", _TIME(), nullable=True))
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
    op.execute("UPDATE console_approvals SET applied_at = decided_at WHERE state = 'approved'")


def downgrade() -> None:
    with op.batch_alter_table("console_approvals", schema=None) as batch_op:
        batch_op.drop_column("result")
        batch_op.drop_column("applied_at")
        batch_op.drop_column("applying_since")
