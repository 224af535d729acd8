"""The audit log's Merkle tree as stored: the head row, subtree hashes, leaf indexes.

Tables in :mod:`idp.storage.audit_log`; what is hashed and when is
:mod:`idp.audit.sequencer`'s and :mod:`idp.audit.tree`'s business. The hot
statements are driver SQL: building them with SQLAlchemy cost more than
running them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from idp.storage.audit_log import AuditTreeHead
from idp.storage.models import AuditEntry

_UPDATE_SQL = "UPDATE audit_entries SET leaf_index = ? WHERE id = ?"
_INSERT_SQL = "INSERT INTO audit_tree_nodes (level, node_index, hash) VALUES (?, ?, ?)"

_entries = AuditEntry.__table__  # type: ignore[attr-defined]

# The columns a leaf is made of (idp.audit.canonical.row_document), and the id.
_UNSEQUENCED = (
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
)


def _ensure_head(session: Session, empty_root: bytes) -> None:
    # The migration inserts the row; this recreates it if the tables were
    # emptied (TRUNCATE), racing writers resolved by the primary key.
    table = AuditTreeHead.__table__  # type: ignore[attr-defined]
    dialect = session.connection().dialect.name
    values = {"id": 1, "tree_size": 0, "root_hash": empty_root, "updated_at": datetime.now(UTC)}
    insert_for = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.connection().execute(insert_for(table).values(values).on_conflict_do_nothing())


def lock_head(session: Session, empty_root: bytes) -> AuditTreeHead:
    """The head row, locked until the session's transaction ends (created if missing)."""
    query = (
        sqlmodel_select(AuditTreeHead)
        .where(AuditTreeHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)  # never a stale copy from this session
    )
    head = session.exec(query).first()
    if head is None:
        _ensure_head(session, empty_root)
        head = session.exec(query).one()
    return head


def read_head(session: Session) -> AuditTreeHead | None:
    return session.get(AuditTreeHead, 1)


def move_head(session: Session, head: AuditTreeHead, tree_size: int, root_hash: bytes) -> None:
    head.tree_size = tree_size
    head.root_hash = root_hash
    head.updated_at = datetime.now(UTC)
    session.add(head)


def unsequenced_entries(session: Session, limit: int) -> Sequence[Any]:
    """Committed entries with no leaf index yet, oldest id first."""
    return session.connection().execute(_UNSEQUENCED.limit(limit)).all()


def record_leaves(
    session: Session,
    assignments: list[tuple[int, int]],
    nodes: list[tuple[int, int, bytes]],
) -> None:
    """Give entries their leaf indexes ``(index, id)`` and store new subtree hashes."""
    # Driver-level executemany: SQLAlchemy's per-row parameter processing cost
    # as much as the writes themselves here.
    connection = session.connection()
    update_sql, insert_sql = _UPDATE_SQL, _INSERT_SQL
    if connection.dialect.paramstyle != "qmark":  # psycopg
        update_sql, insert_sql = update_sql.replace("?", "%s"), insert_sql.replace("?", "%s")
    connection.exec_driver_sql(update_sql, assignments)
    connection.exec_driver_sql(insert_sql, nodes)


def load_nodes(session: Session, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of the subtrees ``(level, index)`` in ``keys`` that exist."""
    if not keys:
        return {}
    by_level: dict[int, list[int]] = {}
    for level, index in keys:
        by_level.setdefault(level, []).append(index)
    # One equality-and-IN term per level: both SQLite (multi-index OR) and
    # PostgreSQL answer it from the primary key; a row-value IN list makes
    # SQLite scan the table. Written as driver SQL because building the
    # expression with SQLAlchemy costs more than the query on this hot path.
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    terms, params = [], []
    for level, indexes in sorted(by_level.items()):
        terms.append(f"(level = {mark} AND node_index IN ({', '.join([mark] * len(indexes))}))")
        params.append(int(level))
        params.extend(int(i) for i in indexes)
    # Only placeholders are joined in; every value travels as a parameter.
    sql = "SELECT level, node_index, hash FROM audit_tree_nodes WHERE " + " OR ".join(terms)  # noqa: S608
    rows = connection.exec_driver_sql(sql, tuple(params))
    return {(level, index): bytes(value) for level, index, value in rows}
