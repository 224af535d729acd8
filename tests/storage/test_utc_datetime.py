"""Timestamps: aware UTC in, aware UTC out, on SQLite as on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select
from sqlalchemy.exc import StatementError
from sqlmodel import SQLModel, col

import idp.storage.tables  # noqa: F401  (every table on the metadata)
from idp.storage import models
from idp.storage.engine import Database
from idp.storage.models import TokenSigningKey
from idp.storage.types import NaiveDatetimeError, UtcDateTime

TEHRAN = timezone(timedelta(hours=3, minutes=30))


def _key(**times: datetime | None) -> dict[str, object]:
    return {
        "kid": "k1",
        "alg": "ES256",
        "state": "next",
        "public_jwk": {},
        "private_key_encrypted": b"x",
        **times,
    }


def test_an_aware_time_comes_back_as_the_same_instant_in_utc(db: Database) -> None:
    written = datetime(2026, 3, 20, 12, 30, 15, 123456, tzinfo=TEHRAN)
    with db.engine.begin() as connection:
        connection.execute(insert(TokenSigningKey), _key(created_at=written, activated_at=None))
        created, activated = connection.execute(
            select(col(TokenSigningKey.created_at), col(TokenSigningKey.activated_at))
        ).one()
    assert created == written
    assert created.tzinfo is UTC
    assert created.utcoffset() == timedelta(0)
    assert activated is None


def test_a_default_timestamp_is_aware_utc(db: Database) -> None:
    before = datetime.now(UTC)
    with db.engine.begin() as connection:
        connection.execute(insert(TokenSigningKey), _key(created_at=models.utcnow()))
        (created,) = connection.execute(select(col(TokenSigningKey.created_at))).one()
    assert created.tzinfo is UTC
    assert before <= created <= datetime.now(UTC)


def test_comparisons_with_aware_times_work_in_queries(db: Database) -> None:
    now = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    with db.engine.begin() as connection:
        connection.execute(insert(TokenSigningKey), _key(created_at=now, retired_at=now))
        found = connection.execute(
            select(col(TokenSigningKey.kid)).where(
                col(TokenSigningKey.retired_at) < now.astimezone(TEHRAN) + timedelta(seconds=1)
            )
        ).scalars()
        assert list(found) == ["k1"]


def test_a_naive_time_is_refused_on_write(db: Database) -> None:
    with pytest.raises(StatementError) as raised, db.engine.begin() as connection:
        connection.execute(insert(TokenSigningKey), _key(created_at=datetime(2026, 3, 20, 12)))
    assert isinstance(raised.value.orig, NaiveDatetimeError)
    assert "naive datetime" in str(raised.value.orig)


def test_every_timestamp_column_is_utc_datetime() -> None:
    """Every table of every feature (idp.storage.tables), not only the foundation's."""
    plain = [
        f"{table.name}.{column.name}"
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if getattr(column.type, "impl", column.type).python_type is datetime
        and not isinstance(column.type, UtcDateTime)
    ]
    assert plain == []


def test_models_match_the_migrations(database_url: str) -> None:
    """Alembic autogenerate sees nothing to do: models and migrations agree."""
    db = Database(database_url)
    try:
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        db.dispose()
    assert differences == []
