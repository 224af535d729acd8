"""Reconciliation jobs submitted over the API: their state, shared by every worker.

The legacy file and the output live under ``<data_dir>/reconciliations``; the
row is what any worker reads to answer for the job, and what a worker claims
(a conditional UPDATE, see :mod:`idp.reconciliation.jobs`) to run or resume it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel

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
