"""Group commit: many requests' writes share one transaction, each still all-or-nothing.

A request hands its write (a function of the session) to the process's single
writer thread and waits for the commit before it answers, so an answer is
never sent whose audit record is not durable. The writer drains whatever has
queued while the previous transaction committed and runs each write under its
own SAVEPOINT: one write that fails is rolled back alone and its caller gets
the error, the others commit. Fewer, larger transactions are what lets several
worker processes share SQLite's single write lock, and they save PostgreSQL a
WAL flush per request.

Requests waiting on an event loop are woken once per batch and loop (one
``call_soon_threadsafe``), not once each: a wake-up is a write to the loop's
self-pipe, and at load a batch holds tens of requests. The other way round,
the writes an event loop queues during one turn reach the writer together
(one ``put``), so the writer is not woken, and the GIL not handed over, once
per request.

Writes of one :class:`BulkKind` (an audit entry, say) carry only their item:
a batch applies all of a kind's items in one call, a multi-row insert rather
than a statement and a SAVEPOINT each.

The writer outlives its database: a connection that cannot be had fails the
batch it was for (its callers get the error, a 503 at the front door), and the
writer tries again with backoff instead of dying. No caller waits on it for
longer than ``write_timeout``: past that it is told the store is unavailable,
and its write is skipped if it has not started yet.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlmodel import Session

from idp.storage.engine import Database

T = TypeVar("T")
Item = TypeVar("Item")
Write = Callable[[Session], Any]
_STOP = object()
_IDLE_SECONDS = 1.0
# Reconnection backoff: doubles from the first to the last value.
_BACKOFF_FIRST_SECONDS = 0.1
_BACKOFF_LAST_SECONDS = 2.0
log = logging.getLogger("hoviyat.storage")


class WriterUnavailable(Exception):
    """No commit came within the write timeout: the store is down, locked or overloaded."""


class KeepWrites(Exception):
    """Raised by a write to fail its caller with ``error`` while keeping what it wrote.

    For refusals that must leave a trace, e.g. a replayed authorization code
    answers ``invalid_grant`` and the grant it came from stays revoked.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def keeping_earlier_writes(session: Session, action: Callable[[], T]) -> T:
    """``action`` under its own SAVEPOINT: if it fails, only its writes are undone,
    and the error reaches the caller as :class:`KeepWrites`, so what ``session``
    wrote before (a spent ``jti``, say) is still committed."""
    savepoint = session.begin_nested()
    try:
        result = action()
    except KeepWrites:
        savepoint.commit()  # the action keeps its own writes too (e.g. a revocation)
        raise
    except Exception as error:
        savepoint.rollback()
        raise KeepWrites(error) from error
    savepoint.commit()
    return result


class GroupCommitter:
    def __init__(
        self,
        database: Database,
        max_batch: int = 512,
        linger_seconds: float = 0.004,
        write_timeout: float = 10.0,
    ) -> None:
        self._database = database
        self.write_timeout = write_timeout
        # Set while the writer cannot reach the database; read by /readyz.
        self.unavailable_since: float | None = None
        self._batch_started: float | None = None
        self._stopping = threading.Event()
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._last_batch_size = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._after_commit: list[Callable[[Connection], None]] = []
        # Writes queued on an event loop during its current turn, per loop.
        self._outboxes: dict[asyncio.AbstractEventLoop, list[tuple[Write, _LoopWaiter]]] = {}

    def after_commit(self, hook: Callable[[Connection], None]) -> None:
        """Run ``hook(connection)`` in every batch, after its writes, before the commit."""
        self._after_commit.append(hook)

    def submit(self, write: Callable[[Session], T]) -> Future[T]:
        """Queue ``write`` from any thread; the future settles after the commit."""
        self._ensure_started()
        future: Future[T] = Future()
        self._queue.put((write, future))
        return future

    def call(self, write: Callable[[Session], T]) -> T:
        """``submit`` and wait, from a thread, at most ``write_timeout``."""
        future = self.submit(write)
        try:
            return future.result(timeout=self.write_timeout)
        except FutureTimeout:
            future.cancel()  # skipped if the writer has not reached it yet
            raise WriterUnavailable(self._timeout_reason()) from None

    async def run(self, write: Callable[[Session], T]) -> T:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        waiter = _LoopWaiter(loop)
        outbox = self._outboxes.get(loop)
        if outbox is None:
            # Sent to the writer once this turn of the loop is over.
            outbox = self._outboxes[loop] = []
            loop.call_soon(self._send_outbox, loop)
        outbox.append((write, waiter))
        # Cancelling the future on timeout makes the writer skip the write if
        # it has not started it; one already running still commits or fails.
        try:
            result: T = await asyncio.wait_for(waiter.future, self.write_timeout)
        except TimeoutError:
            raise WriterUnavailable(self._timeout_reason()) from None
        return result

    def _timeout_reason(self) -> str:
        if self.unavailable_since is not None:
            return "the database cannot be reached"
        return f"no commit within {self.write_timeout:g} s"

    def health(self) -> str:
        """ "ok", or why writes cannot be acknowledged now (for /readyz)."""
        if self._thread is not None and not self._thread.is_alive():
            return "stopped: the writer thread has ended"
        now = time.monotonic()
        if self.unavailable_since is not None:
            return f"unavailable: no database connection for {now - self.unavailable_since:.0f} s"
        started = self._batch_started
        if started is not None and now - started > self.write_timeout:
            return f"stalled: a commit has waited {now - started:.0f} s (locked database?)"
        return "ok"

    def _send_outbox(self, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put(_Outbox(self._outboxes.pop(loop)))

    def close(self) -> None:
        """Stop the writer: it finishes the batch in hand, within ``write_timeout``."""
        if self._thread is not None:
            self._stopping.set()
            self._queue.put(_STOP)
            self._thread.join(timeout=self.write_timeout)
            self._thread = None

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    # Started lazily, so a process that forks after building the
                    # app does not inherit a writer thread that no longer runs.
                    self._thread = threading.Thread(
                        target=self._loop, name="hoviyat-group-commit", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        connection: Connection | None = None
        failures = 0
        try:
            while True:
                try:
                    first = self._queue.get(timeout=_IDLE_SECONDS)
                except queue.Empty:
                    if connection is not None:
                        # Idle: hand the connection back, so that the pool
                        # checks it (pre-ping) before the next batch.
                        connection.close()
                        connection = None
                    if self.unavailable_since is not None:
                        # Nothing to write, but /readyz must see the recovery
                        # (a balancer sends no writes to a server not ready).
                        self._probe()
                        continue
                    first = self._queue.get()
                if first is _STOP:
                    return
                gathered = self._gather(_writes(first))
                self._last_batch_size = len(gathered)
                # Claimed once, here: a caller that gave up before now is skipped.
                batch = [(write, waiter) for write, waiter in gathered if _claim(waiter)]
                self._batch_started = time.monotonic()
                try:
                    if connection is None or connection.invalidated:
                        if connection is not None:
                            connection.close()
                            connection = None
                        # Held from batch to batch while writes keep coming: a
                        # pool checkout and its reset cost as much as a small
                        # batch's SQL.
                        connection = self._database.engine.connect()
                    self._commit(connection, batch)
                    self.unavailable_since = None
                    failures = 0
                except Exception as error:  # the writer must outlive any failure
                    _discard(connection)
                    connection = None
                    failures += 1
                    if self.unavailable_since is None:
                        self.unavailable_since = time.monotonic()
                    log.error(
                        "database unavailable to the writer (%s); %d writes failed",
                        type(error).__name__,
                        len(batch),
                    )
                    _settle([(waiter, False, error) for _, waiter in batch])
                    backoff = min(
                        _BACKOFF_LAST_SECONDS, _BACKOFF_FIRST_SECONDS * 2 ** (failures - 1)
                    )
                    if self._stopping.wait(backoff):
                        return
                finally:
                    self._batch_started = None
        finally:
            _discard(connection)

    def _probe(self) -> None:
        try:
            self._database.ping()
        except Exception as error:  # still down: say so once a probe, go on waiting
            log.info("database still unavailable to the writer (%s)", type(error).__name__)
            return
        self.unavailable_since = None
        log.warning("database reachable again; the writer resumes")

    def _gather(self, batch: list[Any]) -> list[Any]:
        """The first writes and whatever follows them within the linger time.

        A commit costs about the same for one write as for fifty (SQLite
        writes each touched page to the WAL once per transaction), so when the
        previous batch showed that requests are arriving together, the writer
        waits up to ``linger_seconds`` for more, as PostgreSQL's
        ``commit_delay`` does when ``commit_siblings`` are active, and stops
        waiting once as many have come as last time. A lone request is never
        delayed.
        """
        deadline = None
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                # Waiting ends once as many writes have come as last time:
                # under steady load those are the same clients coming back.
                if len(batch) >= self._last_batch_size:
                    break
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._linger
                if now >= deadline:
                    break
                try:
                    item = self._queue.get(timeout=deadline - now)
                except queue.Empty:
                    break
            if item is _STOP:
                self._queue.put(_STOP)
                break
            batch += _writes(item)
        return batch

    def _commit(self, connection: Connection, live: list[tuple[Write, Waiter]]) -> None:
        bulks: dict[BulkKind[Any], list[tuple[Any, Waiter]]] = {}
        others: list[tuple[Write, Waiter]] = []
        for write, waiter in live:
            if type(write) is BulkWrite:
                bulks.setdefault(write.kind, []).append((write.item, waiter))
            else:
                others.append((write, waiter))
        try:
            try:
                results = self._transaction(connection, bulks, others, isolate_bulks=False)
            except _BulkFailed:
                # Rolled back whole, nothing else had run: again, each item alone.
                results = self._transaction(connection, bulks, others, isolate_bulks=True)
        except SQLAlchemyError as error:
            if _connection_lost(error):
                raise  # the loop fails the batch, reconnects and backs off
            log.error("group commit failed for %d writes: %s", len(live), type(error).__name__)
            results = [(waiter, False, error) for _, waiter in live]
        _settle(results)

    def _transaction(
        self,
        connection: Connection,
        bulks: dict[BulkKind[Any], list[tuple[Any, Waiter]]],
        others: list[tuple[Write, Waiter]],
        *,
        isolate_bulks: bool,
    ) -> list[tuple[Waiter, bool, Any]]:
        results: list[tuple[Waiter, bool, Any]] = []
        # A Core transaction: most batches hold only audit entries and rate
        # counts, and an ORM session would cost more than their inserts.
        with connection.begin():
            for kind, items in bulks.items():
                if isolate_bulks:
                    results += _apply_bulk_isolated(connection, kind, items)
                    continue
                # One call with no SAVEPOINT around it: items that fail are a
                # bug, and then the batch is redone.
                try:
                    kind.apply(connection, [item for item, _ in items])
                except SQLAlchemyError as error:
                    raise _BulkFailed from error
                results += [(waiter, True, None) for _, waiter in items]
            if others:
                results += _apply_all(connection, others)
            for hook in self._after_commit:
                hook(connection)
        return results


def _connection_lost(error: SQLAlchemyError) -> bool:
    return isinstance(error, OperationalError | InterfaceError | DisconnectionError) or bool(
        getattr(error, "connection_invalidated", False)
    )


def _discard(connection: Connection | None) -> None:
    """Give a connection back; one that is broken may fail even to close."""
    if connection is not None:
        try:
            connection.invalidate()
            connection.close()
        except SQLAlchemyError:
            log.warning("could not close a broken database connection")


class _Outbox(list):  # type: ignore[type-arg]
    """The writes one event loop queued during one of its turns."""


def _writes(item: Any) -> list[Any]:
    return item if isinstance(item, _Outbox) else [item]


class _BulkFailed(Exception):
    """A bulk apply failed; the batch's transaction is rolled back."""


def _apply_bulk_isolated(
    connection: Connection, kind: BulkKind[Any], items: list[tuple[Any, Waiter]]
) -> list[tuple[Waiter, bool, Any]]:
    savepoint = connection.begin_nested()
    try:
        kind.apply(connection, [item for item, _ in items])
    except SQLAlchemyError:
        savepoint.rollback()
        # One bad item must not fail its neighbours: retry them one by one.
        return [_apply_one(connection, kind, item, waiter) for item, waiter in items]
    savepoint.commit()
    return [(waiter, True, None) for _, waiter in items]


def _apply_one(
    connection: Connection, kind: BulkKind[Any], item: Any, waiter: Waiter
) -> tuple[Waiter, bool, Any]:
    savepoint = connection.begin_nested()
    try:
        kind.apply(connection, [item])
    except SQLAlchemyError as error:
        savepoint.rollback()
        return waiter, False, error
    savepoint.commit()
    return waiter, True, None


def _apply_all(
    connection: Connection, writes: list[tuple[Write, Waiter]]
) -> list[tuple[Waiter, bool, Any]]:
    """ORM writes, each under its own SAVEPOINT, in a session joined to the batch's transaction.

    The SAVEPOINTs go to the driver directly: through SQLAlchemy each one was
    compiled afresh (a new name every time) and they were a third of the
    writer's statements per login. The session only flushes into the batch's
    transaction ("rollback_only": it never commits it), and a write that did
    not succeed takes its session with it, so nothing it left in the session
    reaches the next write.
    """
    driver = connection.connection.driver_connection
    results = []
    session = _joined_session(connection)
    try:
        for write, waiter in writes:
            outcome = _apply(session, driver, write, waiter)
            results.append(outcome)
            if not outcome[1]:
                session.close()
                session = _joined_session(connection)
    finally:
        session.close()
    return results


def _joined_session(connection: Connection) -> Session:
    return Session(bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False)


def _apply(session: Session, driver: Any, write: Write, waiter: Waiter) -> tuple[Waiter, bool, Any]:
    driver.execute("SAVEPOINT hoviyat_write")
    try:
        try:
            value = write(session)
        except KeepWrites as kept:
            session.flush()  # its writes stay; its caller gets the error
            outcome: tuple[Waiter, bool, Any] = (waiter, False, kept.error)
        else:
            session.flush()
            outcome = (waiter, True, value)
    except Exception as error:
        driver.execute("ROLLBACK TO SAVEPOINT hoviyat_write")
        driver.execute("RELEASE SAVEPOINT hoviyat_write")
        return waiter, False, error
    driver.execute("RELEASE SAVEPOINT hoviyat_write")
    return outcome


class _LoopWaiter:
    """A request waiting on an event loop for its write's commit."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


Waiter = Future[Any] | _LoopWaiter


def _claim(waiter: Waiter) -> bool:
    """False if the caller gave up before its write started: the write is skipped."""
    if isinstance(waiter, _LoopWaiter):
        return not waiter.future.cancelled()
    return waiter.set_running_or_notify_cancel()


def _settle(results: list[tuple[Waiter, bool, Any]]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for waiter, ok, value in results:
        if isinstance(waiter, _LoopWaiter):
            by_loop.setdefault(waiter.loop, []).append((waiter.future, ok, value))
        elif ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, settled)
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting any more


def _settle_on_loop(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class BulkKind(Generic[Item]):
    """Writes that a batch applies together: ``apply(connection, items)``, all or nothing.

    ``apply`` is typically one multi-row insert. Its items commit with the
    batch and their callers get ``None``; when ``apply`` fails on a batch's
    items, each is applied again alone, and only the bad ones fail.
    """

    __slots__ = ("apply", "name")

    def __init__(self, name: str, apply: Callable[[Connection, Sequence[Item]], object]) -> None:
        self.name = name
        self.apply = apply

    def __call__(self, item: Item) -> BulkWrite[Item]:
        return BulkWrite(self, item)

    def __repr__(self) -> str:
        return f"BulkKind({self.name!r})"


class BulkWrite(Generic[Item]):
    """One item of a :class:`BulkKind`, for :meth:`GroupCommitter.run` or ``submit``.

    Outside the committer it is an ordinary write: called with a session, it
    applies its item alone in the session's transaction.
    """

    __slots__ = ("item", "kind")

    def __init__(self, kind: BulkKind[Item], item: Item) -> None:
        self.kind = kind
        self.item = item

    def __call__(self, session: Session) -> None:
        self.kind.apply(session.connection(), (self.item,))
