"""The development SMS outbox (``dev_outbox``, defined in :mod:`idp.storage.login`): reads."""

from __future__ import annotations

from sqlmodel import Session, col, select

from idp.storage.login import OutboxMessage


def recent_messages(session: Session, limit: int) -> list[OutboxMessage]:
    """The ``limit`` latest messages, newest first."""
    newest_first = select(OutboxMessage).order_by(col(OutboxMessage.id).desc()).limit(limit)
    return list(session.exec(newest_first))
