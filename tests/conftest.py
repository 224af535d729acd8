"""Shared fixtures: real databases (SQLite always, PostgreSQL when configured).

``HOVIYAT_TEST_DATABASE_URL`` names a PostgreSQL database; each pytest-xdist
worker gets its own schema in it, migrated once, and every test starts from
empty tables. Without the variable the PostgreSQL cases are skipped with that
reason shown.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

from idp.storage.engine import Database
from idp.storage.migrate import upgrade

pytest_plugins = ["fixtures_registry", "fixtures_app"]

# Fuzzing explores new inputs on a developer's machine and replays the same ones
# in CI, where a red run blocks landing: a bug found locally is fixed, not
# discovered by chance at landing time. Timing deadlines mean nothing on a busy
# 2-core runner, so none is set.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

PG_URL = os.environ.get("HOVIYAT_TEST_DATABASE_URL", "")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="HOVIYAT_TEST_DATABASE_URL is unset: PostgreSQL case skipped"
        ),
    ),
]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_schema_url() -> Iterator[str]:
    # The process id keeps concurrent pytest runs (and xdist workers) apart.
    schema = f"hv_test_{_worker()}_{os.getpid()}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    upgrade(url)
    yield url
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = [
            row[0]
            for row in connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            joined = ", ".join(f'"{t}"' for t in tables)
            connection.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend: the test runs once per backend."""
    if request.param == "sqlite":
        template = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "hoviyat.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_postgres_schema_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()
