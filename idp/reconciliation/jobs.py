"""API reconciliation jobs: accepted by one worker, visible to all, taken over when abandoned.

A job runs in a background thread of the worker that claimed it. Claiming is
one conditional UPDATE (``queued``, or ``running`` with a heartbeat older than
the stale limit, becomes ``running`` under this worker's name), so two workers
can never both run a job, whatever process or host they are on. Each batch's
transaction also moves the job's counters and heartbeat, conditioned on this
worker still owning it: a worker that was presumed dead and comes back finds
the job taken, and its batch rolls back.

Files: ``<data_dir>/reconciliations/<job id>.in.csv`` and ``.out.csv``; every
worker must see the same data directory (one host, or shared storage).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from idp.audit.log import AuditEvent, append
from idp.context import Hoviyat
from idp.reconciliation.engine import OPERATION, Reconciler, RunProgress
from idp.storage.models import utcnow
from idp.storage.reconciliations import (
    ReconciliationJob,
    add_job,
    claim_job,
    get_job,
    update_owned_job,
)
from verifiers.registry import RegistryUnavailable

log = logging.getLogger("hoviyat.reconciliation")


class JobLost(Exception):
    """Another worker took the job over (this one was presumed dead)."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_files(data_dir: Path, job_id: str) -> tuple[Path, Path]:
    folder = data_dir / "reconciliations"
    return folder / f"{job_id}.in.csv", folder / f"{job_id}.out.csv"


def create_job(hoviyat: Hoviyat, job: ReconciliationJob, legal_basis: str) -> None:
    """Record the job and its ``accepted`` audit entry in one transaction."""
    with hoviyat.db.session() as session:
        add_job(session, job)
        append(
            session,
            AuditEvent(
                tracking_code=job.id,
                event_type="reconciliation",
                actor_type="client",
                actor_id=job.client_id,
                service_code=job.service_code,
                legal_basis=legal_basis,
                operation=OPERATION,
                outcome="accepted",
                detail={"input_bytes": job.input_bytes},
            ),
        )


def claim(hoviyat: Hoviyat, job_id: str, worker: str) -> bool:
    """Take the job if it is queued or abandoned; True when this worker now owns it."""
    now = utcnow()
    stale_before = now - timedelta(seconds=hoviyat.reconciliation_settings.stale_after_seconds)
    with hoviyat.db.session() as session:
        return claim_job(session, job_id, worker, now=now, stale_before=stale_before)


def _counters(progress: RunProgress) -> dict[str, Any]:
    return {
        "rows_done": progress.rows,
        "rows_needs_review": progress.needs_review,
        "rows_failed": progress.failed,
        "heartbeat_at": utcnow(),
    }


def _finish(hoviyat: Hoviyat, job_id: str, owner: str, **values: Any) -> None:
    """Set ``values`` on the job if ``owner`` still runs it."""
    with hoviyat.db.session() as session:
        update_owned_job(session, job_id, owner, **values)


def run_job(hoviyat: Hoviyat, job_id: str, worker: str) -> None:
    """Run (or resume) a job this worker has claimed, to completion or a recorded stop."""
    with hoviyat.db.read() as session:
        job = get_job(session, job_id)
    policy = hoviyat.policies.get(job.service_code) if job else None
    if job is None or policy is None:
        _finish(hoviyat, job_id, worker, state="failed", error="service policy no longer loaded")
        return
    source, output = job_files(hoviyat.settings.data_dir, job_id)
    reconciler = Reconciler(
        db=hoviyat.db,
        civil=hoviyat.registries.civil,
        policy=policy,
        pepper=hoviyat.secrets.subject_pepper,
        actor_type="client",
        actor_id=job.client_id,
        batch_size=hoviyat.reconciliation_settings.batch_size,
        max_rows_per_subject=hoviyat.reconciliation_settings.max_rows_per_subject,
    )

    def on_batch(session: Session, progress: RunProgress) -> None:
        if not update_owned_job(session, job_id, worker, **_counters(progress)):
            raise JobLost(job_id)

    try:
        progress = reconciler.run(
            source, output, job_tracking_code=job_id, resume=True, on_batch=on_batch
        )
    except JobLost:
        log.warning("reconciliation %s was taken over by another worker", job_id)
    except RegistryUnavailable as outage:
        _finish(
            hoviyat,
            job_id,
            worker,
            state="queued",
            worker=None,
            error=f"the {outage.registry} registry was unavailable; the job resumes when asked",
        )
    except Exception as exc:  # the thread's last word: record it, never lose it silently
        log.exception("reconciliation %s failed", job_id)
        _finish(hoviyat, job_id, worker, state="failed", error=f"{type(exc).__name__}: {exc}"[:500])
    else:
        _finish(
            hoviyat,
            job_id,
            worker,
            state="completed",
            finished_at=utcnow(),
            **_counters(progress),
        )


def start(hoviyat: Hoviyat, job_id: str) -> bool:
    """Claim the job and run it in a background thread of this worker; False if not claimable."""
    worker = worker_name()
    if not claim(hoviyat, job_id, worker):
        return False
    threading.Thread(
        target=run_job, args=(hoviyat, job_id, worker), name=f"reconcile-{job_id}", daemon=True
    ).start()
    return True


def is_abandoned(hoviyat: Hoviyat, job: ReconciliationJob) -> bool:
    """Queued with nobody on it, or running without a heartbeat for the stale limit."""
    if job.state == "queued":
        return True
    if job.state != "running" or job.heartbeat_at is None:
        return False
    limit = timedelta(seconds=hoviyat.reconciliation_settings.stale_after_seconds)
    return utcnow() - job.heartbeat_at > limit
