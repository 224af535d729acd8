"""The configured database for one CLI command: opened, used once, closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlmodel import Session

from idp.settings import get_settings
from idp.storage.engine import Database

T = TypeVar("T")


def read(query: Callable[[Session], T]) -> T:
    """``query``'s answer, from a read-only session of the configured database."""
    database = Database(get_settings().resolved_database_url)
    try:
        with database.read() as session:
            return query(session)
    finally:
        database.dispose()
