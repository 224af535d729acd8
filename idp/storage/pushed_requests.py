"""Pushed authorization requests (RFC 9126): the statements of ``oidc_pushed_requests``.

Single use is the database's, as for authorization codes
(:mod:`idp.storage.grants`): a request is taken with one ``DELETE ...
RETURNING``, so of two workers or hosts racing on one ``request_uri`` exactly
one gets its parameters, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert
from sqlmodel import Session

from idp.storage.oidc import OidcPushedRequest

PUSHED = OidcPushedRequest.__table__  # type: ignore[attr-defined]

_INSERT = insert(PUSHED)
_PRUNE = delete(PUSHED).where(
    PUSHED.c.expires_at < bindparam("now", type_=PUSHED.c.expires_at.type)
)
# Only the client it was pushed by takes it, and only before it expires: a
# request_uri shown to another client, or too late, stays unused until pruned.
_TAKE = (
    delete(PUSHED)
    .where(
        PUSHED.c.request_uri_hash == bindparam("request_uri_hash"),
        PUSHED.c.client_id == bindparam("client_id"),
        PUSHED.c.expires_at > bindparam("now", type_=PUSHED.c.expires_at.type),
    )
    .returning(PUSHED.c.params)
)


def push(session: Session, values: dict[str, Any]) -> None:
    """Store a pushed request; expired ones are dropped on the way (they hold login hints)."""
    prune(session, values["created_at"])
    session.execute(_INSERT, values)


def take(
    session: Session, request_uri_hash: str, client_id: str, now: datetime
) -> dict[str, Any] | None:
    """The pushed parameters, removed as they are read; None when unknown, used,
    expired or pushed by another client. Expired ones are dropped on the way."""
    prune(session, now)
    params: dict[str, Any] | None = session.execute(
        _TAKE, {"request_uri_hash": request_uri_hash, "client_id": client_id, "now": now}
    ).scalar_one_or_none()
    return params


def prune(session: Session, now: datetime) -> int:
    """Delete the requests expired before ``now``; the number deleted."""
    result = session.execute(_PRUNE, {"now": now})
    return int(result.rowcount)  # type: ignore[attr-defined]
