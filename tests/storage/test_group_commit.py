"""The group committer: each write all-or-nothing, neighbours unharmed, callers woken once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import Connection, insert
from sqlmodel import Session, func, select

from idp.audit.log import AuditEvent, append, audit_entry
from idp.storage.engine import Database
from idp.storage.group_commit import BulkKind, GroupCommitter, KeepWrites
from idp.storage.models import AuditEntry, RateCounter


def _event(code: str, outcome: Any = "ok") -> AuditEvent:
    return AuditEvent(tracking_code=code, event_type="test", actor_type="test", outcome=outcome)


def _codes(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.exec(select(AuditEntry.tracking_code)).all())


def _held(committer: GroupCommitter) -> threading.Event:
    """Occupy the writer so that whatever is queued next shares one batch."""
    release, holding = threading.Event(), threading.Event()

    def hold(_session: Session) -> None:
        holding.set()
        release.wait(5)

    committer.submit(hold)
    # Until the writer is inside ``hold``, what is queued next could still join
    # hold's own batch and split the one the test means to build.
    assert holding.wait(5)
    return release


def test_a_bad_audit_entry_fails_alone_in_its_batch(db: Database) -> None:
    committer = GroupCommitter(db)
    release = _held(committer)

    async def batch() -> list[Any]:
        calls = [
            committer.run(audit_entry(_event("GOOD-1"))),
            committer.run(audit_entry(_event("BAD", outcome=None))),  # NOT NULL refuses it
            committer.run(audit_entry(_event("GOOD-2"))),
        ]
        waiting = asyncio.gather(*calls, return_exceptions=True)
        await asyncio.sleep(0.05)
        release.set()
        return await waiting

    try:
        results = asyncio.run(batch())
    finally:
        committer.close()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Exception)
    codes = _codes(db)
    # Once each: the failed multi-row insert left nothing behind before the retries.
    assert codes.count("GOOD-1") == 1 and codes.count("GOOD-2") == 1
    assert "BAD" not in codes


def test_bulk_kinds_apply_once_per_batch_each_with_its_items(db: Database) -> None:
    """Any kind of bulk write, not only audit entries: one call per kind and batch."""
    calls: list[tuple[str, list[str]]] = []

    def counter(name: str) -> BulkKind[str]:
        def apply(connection: Connection, buckets: Sequence[str]) -> None:
            calls.append((name, list(buckets)))
            rows = [{"bucket": f"{name}:{b}", "window_start": 0, "count": 1} for b in buckets]
            connection.execute(insert(RateCounter), rows)

        return BulkKind(name, apply)

    first, second = counter("first"), counter("second")
    committer = GroupCommitter(db)
    release = _held(committer)
    futures = [
        committer.submit(first("a")),
        committer.submit(second("x")),
        committer.submit(first("b")),
        committer.submit(first("a")),  # the primary key refuses it: fails alone
    ]
    release.set()
    try:
        assert [f.exception(5) is None for f in futures] == [True, True, True, False]
    finally:
        committer.close()
    # A kind's items go together; when that fails, the batch is redone and the
    # failing kind's items are applied one by one.
    assert calls[0] == ("first", ["a", "b", "a"])
    assert calls[-4:] == [("first", ["a"]), ("first", ["b"]), ("first", ["a"]), ("second", ["x"])]
    with db.read() as session:
        buckets = session.exec(select(RateCounter.bucket).order_by(RateCounter.bucket)).all()
    assert list(buckets) == ["first:a", "first:b", "second:x"]


def test_orm_writes_roll_back_alone_and_keep_writes_keeps(db: Database) -> None:
    committer = GroupCommitter(db)
    release = _held(committer)

    def writes(code: str, fail: BaseException | None = None) -> Any:
        def write(session: Session) -> str:
            append(session, _event(code))
            if fail is not None:
                raise fail
            return code

        return write

    futures = [
        committer.submit(writes("KEPT-OK")),
        committer.submit(writes("ROLLED-BACK", ValueError("refused"))),
        committer.submit(writes("KEPT-REFUSED", KeepWrites(PermissionError("traced")))),
    ]
    release.set()
    try:
        assert futures[0].result(5) == "KEPT-OK"
        with pytest.raises(ValueError):
            futures[1].result(5)
        with pytest.raises(PermissionError):
            futures[2].result(5)
    finally:
        committer.close()
    codes = _codes(db)
    assert codes.count("KEPT-OK") == 1 and codes.count("KEPT-REFUSED") == 1
    assert "ROLLED-BACK" not in codes


def test_hooks_run_in_every_batch_on_its_connection(db: Database) -> None:
    committer = GroupCommitter(db)
    seen: list[int] = []

    def count_entries(connection: Connection) -> None:
        seen.append(connection.execute(select(func.count()).select_from(AuditEntry)).scalar_one())

    committer.after_commit(count_entries)

    async def one() -> None:
        await committer.run(audit_entry(_event("HOOKED")))

    try:
        asyncio.run(one())
    finally:
        committer.close()
    # The hook ran inside the batch, after the batch's own insert.
    assert seen and seen[-1] >= 1


def _totals_per_commit(committer: GroupCommitter) -> list[int]:
    """How many audit entries the table holds at each commit (the differences are batches)."""
    totals: list[int] = []
    committer.after_commit(
        lambda connection: totals.append(
            connection.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        )
    )
    return totals


async def _a_batch_of_three(committer: GroupCommitter) -> None:
    """Requests arriving together: a held write and two entries commit as one batch."""
    release = _held(committer)
    pair = asyncio.gather(*(committer.run(audit_entry(_event(f"PAIR-{n}"))) for n in range(2)))
    await asyncio.sleep(0.05)
    release.set()
    await pair


def test_after_a_shared_batch_the_writer_lingers_for_followers(db: Database) -> None:
    committer = GroupCommitter(db, linger_seconds=1.0)
    totals = _totals_per_commit(committer)

    async def arrivals() -> None:
        await _a_batch_of_three(committer)
        first = asyncio.ensure_future(committer.run(audit_entry(_event("EARLY"))))
        await asyncio.sleep(0.2)  # well inside the linger
        await asyncio.gather(first, committer.run(audit_entry(_event("LATE"))))

    try:
        asyncio.run(arrivals())
    finally:
        committer.close()
    # EARLY waited for LATE: both rows appeared in one commit.
    assert totals[-1] - totals[-2] == 2


def test_a_lone_write_is_not_delayed_by_the_linger(db: Database) -> None:
    committer = GroupCommitter(db, linger_seconds=30.0)

    async def alone() -> None:
        await committer.run(audit_entry(_event("FIRST")))
        # The previous batch held one write: nobody else is arriving, no wait.
        await asyncio.wait_for(committer.run(audit_entry(_event("SECOND"))), timeout=10)

    try:
        asyncio.run(alone())
    finally:
        committer.close()
    assert {"FIRST", "SECOND"} <= set(_codes(db))


def test_the_linger_ends_once_as_many_writes_as_last_time_have_come(db: Database) -> None:
    committer = GroupCommitter(db, linger_seconds=30.0)
    totals = _totals_per_commit(committer)

    async def steady() -> None:
        await _a_batch_of_three(committer)
        again = (committer.run(audit_entry(_event(f"AGAIN-{n}"))) for n in range(3))
        # Three came back: committed at once, not after the 30 s linger.
        await asyncio.wait_for(asyncio.gather(*again), timeout=10)

    try:
        asyncio.run(steady())
    finally:
        committer.close()
    assert totals[-1] - totals[-2] == 3
