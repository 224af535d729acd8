"""Audit entries (``audit_entries``): appending, finding, paging, streaming for export.

The table is :class:`idp.storage.models.AuditEntry`; what an entry means and
who may read it is :mod:`idp.audit`'s business. Appends are Core inserts: the
ORM's unit of work costs more than the insert itself, and every request pays it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Index, and_, case, func, insert, or_, select, true
from sqlmodel import Session, col
from sqlmodel import select as sqlmodel_select
from sqlmodel.sql.expression import SelectOfScalar

from idp.storage.audit_log import AuditTreeNode
from idp.storage.models import AuditEntry, Client
from idp.storage.pg_copy import copy_rows, is_postgresql

_entries = AuditEntry.__table__  # type: ignore[attr-defined]
_nodes = AuditTreeNode.__table__  # type: ignore[attr-defined]
_INSERT = insert(_entries)

# The console's search pages newest first by (created_at, id) under any one
# filter: each of these serves "filter = x, newest first, LIMIT n" as one
# backward index range scan on PostgreSQL instead of fetching and sorting every
# match (migration 1200; the plans are in bench/bench_console_search.py).
SEARCH_INDEXES = (
    Index("ix_audit_entries_actor_time", _entries.c.actor_id, _entries.c.created_at, _entries.c.id),
    Index(
        "ix_audit_entries_service_time",
        _entries.c.service_code,
        _entries.c.created_at,
        _entries.c.id,
    ),
    Index(
        "ix_audit_entries_event_time", _entries.c.event_type, _entries.c.created_at, _entries.c.id
    ),
)


def insert_entry(connection: Connection, values: Mapping[str, Any]) -> int | None:
    """Insert one entry; its id."""
    result = connection.execute(_INSERT, values)
    return result.inserted_primary_key[0] if result.inserted_primary_key else None


def insert_entries(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many entries in one statement (on PostgreSQL, one COPY)."""
    if len(rows) > 1 and is_postgresql(connection):
        copy_rows(connection, _entries, rows)
    elif rows:
        connection.execute(_INSERT, rows)


@dataclass(frozen=True)
class EntryFilter:
    """An auditor's filters, identifiers already turned into subject hashes."""

    since: datetime | None = None
    until: datetime | None = None
    event_type: str | None = None
    actor_id: str | None = None
    service_code: str | None = None
    tracking_code: str | None = None
    outcome: str | None = None
    operation: str | None = None
    subject_hashes: tuple[str, ...] = ()
    after_id: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        c = _entries.c
        where: list[ColumnElement[bool]] = []
        if self.since is not None:
            where.append(c.created_at >= self.since)
        if self.until is not None:
            where.append(c.created_at < self.until)
        for column, value in (
            (c.event_type, self.event_type),
            (c.actor_id, self.actor_id),
            (c.service_code, self.service_code),
            (c.tracking_code, self.tracking_code),
            (c.outcome, self.outcome),
            (c.operation, self.operation),
        ):
            if value is not None:
                where.append(column == value)
        if self.subject_hashes:
            where.append(c.subject_hash.in_(self.subject_hashes))
        if self.after_id is not None:
            where.append(c.id > self.after_id)
        return where


def find_entries(session: Session, where: EntryFilter, limit: int) -> Sequence[AuditEntry]:
    """Entries matching every filter, oldest first."""
    statement = (
        sqlmodel_select(AuditEntry)
        .where(*where.conditions())
        .order_by(col(AuditEntry.id))
        .limit(limit)
    )
    return session.exec(statement).all()


@dataclass(frozen=True)
class Position:
    """Where a page of newest-first results stopped: its last entry's time and id."""

    created_at: datetime
    id: int


def page_newest_first(
    session: Session, where: EntryFilter, limit: int, before: Position | None = None
) -> list[AuditEntry]:
    """Entries matching every filter, newest first, older than ``before`` (keyset, no OFFSET)."""
    return list(session.exec(newest_first_statement(where, limit, before)))


def newest_first_statement(
    where: EntryFilter, limit: int, before: Position | None = None
) -> SelectOfScalar[AuditEntry]:
    """The query of :func:`page_newest_first` (the bench prints its plan)."""
    c = _entries.c
    statement = sqlmodel_select(AuditEntry).where(*where.conditions())
    if before is not None:
        statement = statement.where(
            # The plain bound lets the planner start the index scan at the cursor;
            # the OR settles entries sharing its instant.
            c.created_at <= before.created_at,
            or_(
                c.created_at < before.created_at,
                and_(c.created_at == before.created_at, c.id < before.id),
            ),
        )
    return statement.order_by(c.created_at.desc(), c.id.desc()).limit(limit)


def entry_by_id(session: Session, entry_id: int) -> AuditEntry | None:
    return session.get(AuditEntry, entry_id)


@dataclass(frozen=True)
class DailyCount:
    day: str  # YYYY-MM-DD, UTC
    actor_id: str | None
    total: int
    refused: int


def daily_counts(
    session: Session, event_type: str, since: datetime, until: datetime, refused: str
) -> list[DailyCount]:
    """Entries of ``event_type`` per UTC day and actor, with how many had outcome ``refused``."""
    c = _entries.c
    if session.get_bind().dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", c.created_at), "YYYY-MM-DD")
    else:
        day = func.substr(c.created_at, 1, 10)  # SQLite keeps UTC text
    refusals = func.sum(case((c.outcome == refused, 1), else_=0))
    statement = (
        select(day.label("day"), c.actor_id, func.count().label("total"), refusals.label("refused"))
        .where(c.event_type == event_type, c.created_at >= since, c.created_at < until)
        .group_by(day, c.actor_id)
        .order_by(day, c.actor_id)
    )
    return [
        DailyCount(row.day, row.actor_id, int(row.total), int(row.refused or 0))
        for row in session.execute(statement)
    ]


def newest_entries(session: Session, limit: int) -> list[AuditEntry]:
    """The last ``limit`` entries appended, newest first."""
    statement = sqlmodel_select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    return list(session.exec(statement))


def entries_with_leaf_hashes(
    session: Session, tree_size: int, where: EntryFilter | None
) -> Iterator[Any]:
    """Sequenced entries below ``tree_size`` in leaf order, streamed, each with the
    leaf hash the sequencer stored for it (``stored_leaf_hash``, None if missing)."""
    statement = (
        select(_entries, _nodes.c.hash.label("stored_leaf_hash"))
        .select_from(
            _entries.outerjoin(
                _nodes, and_(_nodes.c.level == 0, _nodes.c.node_index == _entries.c.leaf_index)
            )
        )
        .where(_entries.c.leaf_index.is_not(None), _entries.c.leaf_index < tree_size)
        .order_by(_entries.c.leaf_index)
    )
    if where is not None:
        statement = statement.where(*where.conditions())
    rows = session.connection().execution_options(stream_results=True, yield_per=5000)
    yield from rows.execute(statement)


class BadCursor(ValueError):
    """``before`` is not an entry of this person's history."""


def subject_history(
    session: Session,
    subject_hash: str,
    *,
    delayed_services: Mapping[str, int],
    now: datetime,
    limit: int,
    before: int | None = None,
) -> list[AuditEntry]:
    """The newest ``limit`` entries about a person, older than entry ``before``.

    Entries of a service in ``delayed_services`` (code → days) stay out until
    they are that many days old.
    """
    c = _entries.c
    statement = sqlmodel_select(AuditEntry).where(
        c.subject_hash == subject_hash, _visible(delayed_services, now)
    )
    if before is not None:
        # The cursor is the last entry shown; paging follows (time, id) order.
        last = session.get(AuditEntry, before)
        if last is None or last.subject_hash != subject_hash:
            raise BadCursor("'before' must be a next_cursor of this history")
        statement = statement.where(
            or_(
                c.created_at < last.created_at,
                and_(c.created_at == last.created_at, c.id < last.id),
            )
        )
    statement = statement.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    return list(session.exec(statement))


def _visible(delayed: Mapping[str, int], now: datetime) -> Any:
    c = _entries.c
    if not delayed:
        return true()
    return or_(
        c.service_code.is_(None),
        c.service_code.not_in(list(delayed)),
        *[
            and_(c.service_code == code, c.created_at <= now - timedelta(days=days))
            for code, days in delayed.items()
        ],
    )


def client_names(session: Session, client_ids: Iterable[str]) -> dict[str, str]:
    """Display names of the clients (agencies) among ``client_ids``."""
    wanted = set(client_ids)
    if not wanted:
        return {}
    rows = session.exec(sqlmodel_select(Client).where(col(Client.client_id).in_(wanted)))
    return {c.client_id: c.name for c in rows}
