"""Schema migrations (Alembic), applied with ``hoviyat db upgrade`` or at ``hoviyat init``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to every head (feature branches are independent)."""
    command.upgrade(alembic_config(url), "heads")


def revision(url: str, message: str, **kwargs: Any) -> None:
    command.revision(alembic_config(url), message=message, autogenerate=True, **kwargs)
