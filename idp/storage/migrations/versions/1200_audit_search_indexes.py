"""The console's audit search: (filter, created_at, id) indexes on audit_entries (issue 15)

Revision ID: 1200
Revises: 0001

Each serves one filter's newest-first page as a backward index range scan
(see idp.storage.audit_entries.SEARCH_INDEXES). CREATE INDEX blocks appends
while it runs: on a large existing log, upgrade in a quiet hour.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1200"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("audit_search",)
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_audit_entries_actor_time", ["actor_id", "created_at", "id"]),
    ("ix_audit_entries_service_time", ["service_code", "created_at", "id"]),
    ("ix_audit_entries_event_time", ["event_type", "created_at", "id"]),
)


def upgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        for name, columns in INDEXES:
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        for name, _ in reversed(INDEXES):
            batch_op.drop_index(name)
