"""Database engines for the two supported stores: SQLite (embedded) and PostgreSQL.

Several worker processes share one database, so every state change that must
happen once (single-use codes, serial numbers, counters) is made atomic by the
database itself (unique constraints, ``UPDATE ... RETURNING``, row locks),
never by process-local locks.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

log = logging.getLogger("hoviyat.storage")


# Bounds on waiting for the database, so that an outage is answered (503), never a hang.
CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 5
_PING = text("SELECT 1")


def make_engine(url: str, *, autocheckpoint: bool = True, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    # Errors and their tracebacks name the statement, never its parameters:
    # those are tracking codes, subject hashes, token digests.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        in_memory = parsed.database in (None, "", ":memory:")
        lock_path = None if in_memory else f"{parsed.database}.writelock"
        event.listen(engine, "connect", _sqlite_pragmas)
        if not autocheckpoint:
            event.listen(engine, "connect", _no_autocheckpoint)
        event.listen(engine, "begin", _sqlite_begin(lock_path))
        event.listen(engine, "commit", _end_transaction("COMMIT"))
        event.listen(engine, "rollback", _end_transaction("ROLLBACK"))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    return create_engine(url, connect_args=connect_args, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off so that BEGIN
    # IMMEDIATE below takes the write lock up front: two processes then queue
    # on busy_timeout instead of failing with "database is locked" on upgrade.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    # A checkpoint run by whichever write happens to cross the threshold stalls
    # that request (and every request queued behind the write lock) for tens of
    # milliseconds; the Database's own thread checkpoints instead.
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _sqlite_begin(lock_path: str | None) -> Any:
    """BEGIN IMMEDIATE, queued on a file lock shared by every process of the database.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so with
    several writer processes the lock sat idle between holders and tail
    latencies reached half a second. ``flock`` wakes the next writer the
    moment the lock is released; the kernel drops it if a holder dies.
    """

    def begin(connection: Any) -> None:
        if connection.get_execution_options().get("hoviyat_read_only"):
            connection.exec_driver_sql("BEGIN")
            return
        info = connection.connection.info
        if lock_path is not None:
            fd = info.get("write_lock_fd")
            if fd is None:
                fd = info["write_lock_fd"] = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            info["write_lock_held"] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release_write_lock(connection)
            raise

    return begin


def _end_transaction(statement: str) -> Any:
    """End the transaction ourselves, then hand the file lock on.

    SQLAlchemy fires these events before it ends the transaction; ending it
    here first means the next writer never finds SQLite's lock still taken.
    The driver's own commit/rollback that follows has nothing left to do.
    """

    def end(connection: Any) -> None:
        if connection.connection.info.get("write_lock_held"):
            try:
                dbapi_connection = connection.connection.dbapi_connection
                if dbapi_connection.in_transaction:
                    dbapi_connection.execute(statement)
            finally:
                _release_write_lock(connection)

    return end


def _release_write_lock(connection: Any) -> None:
    info = connection.connection.info
    if info.pop("write_lock_held", False):
        fcntl.flock(info["write_lock_fd"], fcntl.LOCK_UN)


class Database:
    """The engine plus the one way to open a transaction."""

    def __init__(self, url: str, *, background_checkpoints: bool = False, **kwargs: Any) -> None:
        """``background_checkpoints``: a SQLite server process copies the WAL into the
        database from a thread of its own, every second, instead of during requests."""
        self.url = url
        parsed = make_url(url)
        sqlite_file = (
            parsed.database
            if parsed.get_backend_name() == "sqlite"
            and parsed.database not in (None, "", ":memory:")
            else None
        )
        checkpointing = background_checkpoints and sqlite_file is not None
        self.engine = make_engine(url, autocheckpoint=not checkpointing, **kwargs)
        self._read_engine = self.engine.execution_options(hoviyat_read_only=True)
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if checkpointing:
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop,
                args=(sqlite_file,),
                daemon=True,
                name="hoviyat-wal-checkpoint",
            )
            self._checkpointer.start()

    def _checkpoint_loop(self, path: str) -> None:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(1.0):
                # PASSIVE never waits for, nor blocks, readers and writers.
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.warning("WAL checkpoints stopped for %s", path)
        finally:
            connection.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on any error."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only: on SQLite it does not take the write lock."""
        # Closing (not rolling back) ends the transaction and keeps loaded
        # objects readable after the block.
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    def ping(self) -> None:
        """One round trip to the database; raises the driver's error if it cannot be reached."""
        with self.read() as session:
            session.execute(_PING)

    def dispose(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
            self._checkpointer = None
        self.engine.dispose()
