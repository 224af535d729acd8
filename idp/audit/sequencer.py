"""Giving appended entries their gap-free leaf indexes and growing the stored tree.

Choice: appends do not sequence. ``append`` only inserts the row in the
caller's transaction (no shared row is touched, so verification requests never
queue behind one another). A sequencing run then, in a transaction of its own:

1. locks the single ``audit_tree_head`` row (``SELECT ... FOR UPDATE`` on
   PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` already holds the database's one
   write lock), so at most one run in any process extends the tree at a time;
2. reads committed entries with no leaf index, oldest id first, a batch at
   a time;
3. gives them indexes ``tree_size, tree_size + 1, ...``, hashes their
   canonical bytes (:mod:`idp.audit.canonical`) into leaves, and stores every
   perfect subtree those leaves complete (level 0 is the leaves);
4. moves the head to the new size and root, and commits.

Gaps cannot appear: indexes come from the locked head inside one
transaction, and the unique constraints on ``audit_entries.leaf_index`` and
the node key reject a second tree outright should the lock ever be bypassed.
An entry whose transaction commits late (a lower id committed after a higher
one) just joins a later batch: the order is the order of sequencing, like a
CT log's merge. Runs happen on demand (before every checkpoint, proof and
export) and at the checkpoint interval, so an entry waits at most that long.

This was preferred over sequencing inside ``append`` because the latter holds
the head's row lock for the rest of the caller's transaction (including any
registry call made after appending) and caps every writer at one commit per
lock hand-over; batching amortises the lock and the hashing over thousands of
entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from idp.audit import rfc9162
from idp.audit.canonical import entry_bytes, entry_document
from idp.audit.tree import load_nodes
from idp.storage.audit_log import AuditTreeHead
from idp.storage.engine import Database
from idp.storage.models import AuditEntry

BATCH_SIZE = 5000
_UPDATE_SQL = "UPDATE audit_entries SET leaf_index = ? WHERE id = ?"
_INSERT_SQL = "INSERT INTO audit_tree_nodes (level, node_index, hash) VALUES (?, ?, ?)"

_entries = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes


def _ensure_head(session: Session) -> None:
    # The migration inserts the row; this recreates it if the tables were
    # emptied (TRUNCATE), racing writers resolved by the primary key.
    table = AuditTreeHead.__table__  # type: ignore[attr-defined]
    dialect = session.connection().dialect.name
    values = {
        "id": 1,
        "tree_size": 0,
        "root_hash": rfc9162.EMPTY_ROOT,
        "updated_at": datetime.now(UTC),
    }
    insert_for = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.connection().execute(insert_for(table).values(values).on_conflict_do_nothing())


def lock_head(session: Session) -> AuditTreeHead:
    """The tree head, locked until the session's transaction ends."""
    query = (
        sqlmodel_select(AuditTreeHead)
        .where(AuditTreeHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)  # never a stale copy from this session
    )
    head = session.exec(query).first()
    if head is None:
        _ensure_head(session)
        head = session.exec(query).one()
    return head


def read_head(session: Session) -> TreeHead:
    head = session.get(AuditTreeHead, 1)
    if head is None:
        return TreeHead(0, rfc9162.EMPTY_ROOT)
    return TreeHead(head.tree_size, head.root_hash)


def sequence_batch(session: Session, limit: int = BATCH_SIZE) -> tuple[TreeHead, int]:
    """One sequencing step inside ``session``'s transaction: (new head, entries added)."""
    head = lock_head(session)
    size = head.tree_size
    rows = (
        session.connection()
        .execute(
            select(
                _entries.c.id,
                _entries.c.created_at,
                _entries.c.tracking_code,
                _entries.c.event_type,
                _entries.c.actor_type,
                _entries.c.actor_id,
                _entries.c.service_code,
                _entries.c.legal_basis,
                _entries.c.operation,
                _entries.c.subject_hash,
                _entries.c.outcome,
                _entries.c.detail,
            )
            .where(_entries.c.leaf_index.is_(None))
            .order_by(_entries.c.id)
            .limit(limit)
        )
        .all()
    )
    if not rows:
        return TreeHead(size, head.root_hash), 0

    frontier_keys = rfc9162.perfect_subtrees(0, size)
    stored = load_nodes(session, set(frontier_keys))
    stack = [(level, stored[(level, index)]) for level, index in frontier_keys]
    new_nodes: list[tuple[int, int, bytes]] = []
    assignments: list[tuple[int, int]] = []
    for offset, row in enumerate(rows):
        index = size + offset
        document = entry_document(
            leaf_index=index,
            created_at=row.created_at,
            tracking_code=row.tracking_code,
            event_type=row.event_type,
            actor_type=row.actor_type,
            actor_id=row.actor_id,
            service_code=row.service_code,
            legal_basis=row.legal_basis,
            operation=row.operation,
            subject_hash=row.subject_hash,
            outcome=row.outcome,
            detail=row.detail,
        )
        value = rfc9162.leaf_hash(entry_bytes(document))
        level = 0
        new_nodes.append((0, index, value))
        while stack and stack[-1][0] == level:
            value = rfc9162.node_hash(stack.pop()[1], value)
            level += 1
            new_nodes.append((level, index >> level, value))
        stack.append((level, value))
        assignments.append((index, row.id))

    # Driver-level executemany: SQLAlchemy's per-row parameter processing cost
    # as much as the writes themselves here.
    connection = session.connection()
    update_sql, insert_sql = _UPDATE_SQL, _INSERT_SQL
    if connection.dialect.paramstyle != "qmark":  # psycopg
        update_sql, insert_sql = update_sql.replace("?", "%s"), insert_sql.replace("?", "%s")
    connection.exec_driver_sql(update_sql, assignments)
    connection.exec_driver_sql(insert_sql, new_nodes)
    head.tree_size = size + len(rows)
    head.root_hash = rfc9162.fold_right([h for _, h in stack])
    head.updated_at = datetime.now(UTC)
    session.add(head)
    return TreeHead(head.tree_size, head.root_hash), len(rows)


def sequence_pending(db: Database, limit: int = BATCH_SIZE) -> TreeHead:
    """Sequence every entry committed so far, one transaction per batch."""
    while True:
        with db.session() as session:
            head, added = sequence_batch(session, limit)
        if added < limit:
            return head
