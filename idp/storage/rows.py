"""Model objects for rows read or written with Core statements.

The login storage reads and writes its hot rows with Core statements, yet the
steps hand model objects around and a step that changes one adds it to its
write session. Building a SQLModel table object through its constructor runs
pydantic's and SQLAlchemy's per-attribute set-up (about 60 µs for an
interaction); :func:`detached` builds it as the ORM does when it loads a row,
then marks it detached, so a later ``session.add`` UPDATEs what changed
(:func:`transient` for a row about to be inserted with Core).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached

M = TypeVar("M")


def transient(model: type[M], values: Mapping[str, Any]) -> M:
    """A new object of ``model`` holding ``values`` (every column), not stored yet."""
    instance: Any = inspect(model).class_manager.new_instance()
    instance.__dict__.update(values)
    built: M = instance
    return built


def detached(model: type[M], values: Mapping[str, Any]) -> M:
    """An object of ``model`` with ``values`` (every column), as if loaded by a closed session."""
    instance: Any = transient(model, values)
    # Resets attribute history (the values count as loaded) and sets the identity key.
    make_transient_to_detached(instance)
    return instance  # type: ignore[no-any-return]
