"""Reconciliation jobs submitted over the API: their state, shared by every worker.

The legacy file and the output live under ``<data_dir>/reconciliations``; the
row is what any worker reads to answer for the job, and what a worker claims
(a conditional UPDATE, see :mod:`idp.reconciliation.jobs`) to run or resume it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, and_, func, or_, update
from sqlmodel import Field, Session, SQLModel

from idp.storage.models import utcnow
from idp.storage.types import UtcDateTime


class ReconciliationJob(SQLModel, table=True):
    """States: ``queued`` → ``running`` → ``completed`` | ``failed``.

    A ``running`` job whose ``heartbeat_at`` is older than the stale limit
    lost its worker and may be claimed by another; a registry outage puts it
    back to ``queued`` with the reason in ``error``.
    """

    __tablename__ = "reconciliation_jobs"
    __table_args__ = (Index("ix_reconciliation_jobs_state_heartbeat", "state", "heartbeat_at"),)

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(max_length=64, index=True)
    service_code: str = Field(max_length=64)
    state: str = Field(default="queued", max_length=20)
    input_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    rows_done: int = Field(default=0)
    rows_needs_review: int = Field(default=0)
    rows_failed: int = Field(default=0)
    attempts: int = Field(default=0)
    worker: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


_jobs = ReconciliationJob.__table__  # type: ignore[attr-defined]


def add_job(session: Session, job: ReconciliationJob) -> None:
    session.add(job)


def get_job(session: Session, job_id: str) -> ReconciliationJob | None:
    return session.get(ReconciliationJob, job_id)


def claim_job(
    session: Session, job_id: str, worker: str, *, now: datetime, stale_before: datetime
) -> bool:
    """One conditional UPDATE: a queued job, or a running one whose heartbeat is older
    than ``stale_before``, becomes ``worker``'s; True when it did."""
    statement = (
        update(_jobs)
        .where(
            _jobs.c.id == job_id,
            or_(
                _jobs.c.state == "queued",
                and_(_jobs.c.state == "running", _jobs.c.heartbeat_at < stale_before),
            ),
        )
        .values(
            state="running",
            worker=worker,
            heartbeat_at=now,
            attempts=_jobs.c.attempts + 1,
            started_at=func.coalesce(_jobs.c.started_at, now),
            error=None,
        )
    )
    return bool(session.execute(statement).rowcount == 1)  # type: ignore[attr-defined]


def update_owned_job(session: Session, job_id: str, owner: str, /, **values: Any) -> bool:
    """Set ``values`` (``worker`` among them, maybe) on the job if ``owner`` still runs it;
    False when it does not."""
    owned = and_(_jobs.c.id == job_id, _jobs.c.worker == owner, _jobs.c.state == "running")
    moved = session.execute(update(_jobs).where(owned).values(**values))
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]
