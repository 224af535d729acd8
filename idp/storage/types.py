"""Column types the project owns rather than leaves to SQLModel's inference.

Every timestamp column uses :class:`UtcDateTime`, so a row read back compares
with ``datetime.now(UTC)`` on SQLite (no time zone support) as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import types
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.operators import OperatorType


class NaiveDatetimeError(ValueError):
    """A naive datetime reached a timestamp column: its instant is ambiguous."""


class UtcDateTime(types.TypeDecorator[datetime]):
    """An instant: stored as UTC, always read back as an aware UTC datetime.

    The column is ``DateTime(timezone=True)`` (``timestamptz`` on PostgreSQL),
    the type the migrations already create, so the schema does not change.
    Naive datetimes are refused on write: guessing their zone would silently
    shift an expiry or a revocation time.
    """

    impl = types.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def __repr__(self) -> str:
        return "UtcDateTime()"

    def coerce_compared_value(self, op: OperatorType | None, value: Any) -> types.TypeEngine[Any]:
        # ``column > now - timedelta(...)`` stays a timestamp comparison; a bare
        # interval operand is left to the database.
        if isinstance(value, timedelta):
            return types.Interval()
        return self

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"naive datetime {value.isoformat()} for a UtcDateTime column; "
                "pass an aware one, e.g. datetime.now(UTC)"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            # SQLite keeps no offset: what was written is UTC (see process_bind_param).
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
