"""The errors that mean "the store is unavailable now", not "this request is wrong".

The front door answers each with a 503 problem and Retry-After, the CLI with
one line; neither is a bug to trace. They come from SQLAlchemy (a refused or
dropped connection, an exhausted pool), from the drivers directly (the group
committer's SAVEPOINTs go to the driver), and from the group committer when no
commit came within its write timeout.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from idp.storage.group_commit import WriterUnavailable

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
    WriterUnavailable,
    sqlite3.OperationalError,
    psycopg.OperationalError,
)
