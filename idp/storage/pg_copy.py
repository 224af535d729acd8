"""Appending many rows to PostgreSQL with ``COPY … FROM STDIN`` inside the caller's transaction.

Every verification and login writes audit rows through the group committer;
on PostgreSQL an ``executemany`` of N inserts costs about five times the
client CPU of one ``COPY`` of the same rows (and more server CPU: N statement
executions against one stream). Values go through each column's SQLAlchemy
bind processor, so ``UtcDateTime`` still refuses naive datetimes and JSON is
serialised exactly as an ``INSERT`` would; driver errors are raised as
SQLAlchemy's, so callers' handling (503 on an outage, retries) does not change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError


def is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def copy_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` (dicts with the same keys, as for an executemany) to ``table``."""
    if not rows:
        return
    names = list(rows[0])
    dialect = connection.dialect
    # The processors SQLAlchemy itself applies to these columns' parameters.
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    statement = f"COPY {dialect.identifier_preparer.format_table(table)} ({columns}) FROM STDIN"
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        value if process is None else process(value)
                        for process, value in zip(processors, (row[n] for n in names), strict=True)
                    ]
                )
    except psycopg.Error as error:
        # As SQLAlchemy's own handler does: a lost connection is invalidated, so the
        # pool does not hand it out again.
        lost = dialect.is_disconnect(error, connection.connection, None)  # type: ignore[arg-type]
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            statement,
            None,
            error,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
            ismulti=True,
        ) from error
