"""``console_shown_once``: a new client secret waiting for its one showing (issue 15).

The console rotates or registers on a POST and answers with a redirect (303,
Post/Redirect/Get); the page it redirects to shows the secret from a row here.
A row is bound to the console session that made it (another session finds
nothing), holds the secret sealed under the server's key-encryption key
(:func:`idp.secrets_at_rest.seal_secret`), lives a few minutes, and is spent
by one conditional UPDATE that also drops the sealed secret: a second showing,
a reload or a racing request finds it already shown. Expired rows are deleted
whenever a new one is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import LargeBinary, delete, update
from sqlmodel import Field, Session, SQLModel

from idp.storage.types import UtcDateTime


class ConsoleShownOnce(SQLModel, table=True):
    __tablename__ = "console_shown_once"

    id: str = Field(primary_key=True, max_length=43)
    session_id: str = Field(max_length=40)  # console_sessions.id
    client_id: str = Field(max_length=64)
    notice_key: str = Field(max_length=64)
    # None: the client holds no shared secret, or the secret was shown.
    sealed_secret: bytes | None = Field(default=None, sa_type=LargeBinary, nullable=True)
    shown: bool = Field(default=False)
    expires_at: datetime = Field(index=True, sa_type=UtcDateTime)


ROWS = ConsoleShownOnce.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Showing:
    client_id: str
    notice_key: str
    sealed_secret: bytes | None


def put(db: Session, row: ConsoleShownOnce, now: datetime) -> None:
    db.execute(delete(ROWS).where(ROWS.c.expires_at <= now))  # housekeeping
    db.add(row)
    db.flush()


UNKNOWN = "unknown"
GONE = "gone"


def take(db: Session, row_id: str, session_id: str, now: datetime) -> Showing | str:
    """The row's contents, once; else :data:`GONE` (already shown or expired) or
    :data:`UNKNOWN` (no such row in this session: another session's row is not told)."""
    row = db.get(ConsoleShownOnce, row_id)
    if row is None or row.session_id != session_id:
        return UNKNOWN
    if row.shown or row.expires_at <= now:
        return GONE
    spent = db.execute(
        update(ROWS)
        .where(ROWS.c.id == row_id, ROWS.c.session_id == session_id, ROWS.c.shown.is_(False))
        .values(shown=True, sealed_secret=None)
    )
    if not spent.rowcount:  # type: ignore[attr-defined]
        return GONE  # another request showed it first
    return Showing(row.client_id, row.notice_key, row.sealed_secret)
