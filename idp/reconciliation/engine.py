"""A reconciliation run: stream the legacy file, reconcile, audit, append the output.

Rows go in batches (:attr:`Reconciler.batch_size`). For each batch, in this order:

1. every row's audit entry (its own tracking code, the job's tracking code in
   ``detail``) and the caller's ``on_batch`` bookkeeping commit in one
   transaction;
2. only then are the batch's output lines written and fsynced.

So an output row always has its committed audit entry. A crash between 1 and
2 loses at most one batch of output lines; the resumed run does those rows
again (their second audit entries record that they were reconciled twice,
which they were). Resuming reads the row number of the output's last
complete line (:func:`idp.reconciliation.legacy_csv.prepare_output`) and skips
input rows up to it, parsing them without asking the registry.

Memory holds one batch of rows, whatever the file size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from sqlmodel import Session

from idp.audit.log import AuditEvent, append, append_many, subject_hash
from idp.reconciliation.config import ReconciliationSettings
from idp.reconciliation.legacy_csv import (
    CLAIM_FIELDS,
    INPUT_FIELDS,
    cell,
    format_records,
    legacy_rows,
    open_legacy,
    prepare_output,
)
from idp.reconciliation.quota import SubjectQuota
from idp.reconciliation.rows import RowResult, reconcile_row, subject_of
from idp.storage.engine import Database
from idp.tracking import new_tracking_code
from policies.service_policy import ServicePolicy
from verifiers.registry import CivilRegistry

OPERATION = "reconciliations.create"


@dataclass
class RunProgress:
    """Counters of the output file so far (earlier runs included)."""

    job_tracking_code: str
    rows: int = 0
    needs_review: int = 0
    failed: int = 0
    last_row: int = 0
    resumed_after_row: int = 0
    bytes_read: int = 0


BatchHook = Callable[[Session, RunProgress], None]
ProgressHook = Callable[[RunProgress], None]


def output_record(result: RowResult, tracking_code: str) -> list[str]:
    national_code = result.national_code or cell(result.values.get("national_code", ""))
    return [
        str(result.number),
        national_code,
        *(cell(result.values.get(name, "")) for name in INPUT_FIELDS[1:]),
        result.national_code_result,
        *(result.results[name] for name in CLAIM_FIELDS),
        *(result.filled.get(name, "") for name in CLAIM_FIELDS),
        result.needs_review,
        tracking_code,
    ]


@dataclass(frozen=True)
class Reconciler:
    """Who reconciles, under which service policy, against which registry."""

    db: Database
    civil: CivilRegistry
    policy: ServicePolicy
    pepper: bytes
    actor_type: str
    actor_id: str
    batch_size: int = 500
    # The service and ``hoviyat reconcile`` pass their HOVIYAT_RECONCILIATION_* values.
    max_rows_per_subject: int = ReconciliationSettings.model_fields["max_rows_per_subject"].default

    def _event(
        self,
        tracking_code: str,
        outcome: str,
        event_type: str,
        *,
        subject: str | None = None,
        detail: dict | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            tracking_code=tracking_code,
            event_type=event_type,
            actor_type=self.actor_type,
            actor_id=self.actor_id,
            service_code=self.policy.service_code,
            legal_basis=self.policy.legal_basis,
            operation=OPERATION,
            subject_hash=subject_hash(self.pepper, subject) if subject else None,
            outcome=outcome,
            detail=detail or {},
        )

    def run(
        self,
        source: Path,
        output: Path,
        *,
        job_tracking_code: str,
        resume: bool,
        on_batch: BatchHook | None = None,
        on_progress: ProgressHook | None = None,
    ) -> RunProgress:
        """Reconcile ``source`` into ``output``; raises ``RegistryUnavailable`` to stop."""
        if not self.policy.allows(OPERATION):
            code = self.policy.service_code
            raise PermissionError(f"service policy {code!r} does not allow operation {OPERATION!r}")
        state = prepare_output(output, resume=resume)
        # The counters start where the output file left them (rows, last_row, ...).
        progress = RunProgress(
            job_tracking_code=job_tracking_code, resumed_after_row=state.last_row, **asdict(state)
        )
        with self.db.session() as session:
            append(
                session,
                self._event(
                    job_tracking_code,
                    "resumed" if state.last_row else "started",
                    "reconciliation",
                    detail={"resumed_after_row": state.last_row},
                ),
            )
        counter, text = open_legacy(source)
        with text, open(output, "ab") as sink:
            batch: list[tuple[RowResult, str]] = []
            quota = SubjectQuota(self.max_rows_per_subject)
            for row in legacy_rows(text):
                if row.number <= state.last_row:
                    # Done by an earlier run, but still counted against its subject.
                    if (done := subject_of(row)) is not None:
                        quota.admit(done)
                    continue
                result = reconcile_row(row, self.civil, self.policy, quota)
                batch.append((result, new_tracking_code()))
                if len(batch) >= self.batch_size:
                    progress.bytes_read = counter.bytes_read
                    self._commit(batch, sink, progress, on_batch)
                    batch = []
                    if on_progress:
                        on_progress(progress)
            progress.bytes_read = counter.bytes_read
            self._commit(batch, sink, progress, on_batch)
        with self.db.session() as session:
            append(
                session,
                self._event(
                    job_tracking_code,
                    "completed",
                    "reconciliation",
                    detail={
                        "rows": progress.rows,
                        "needs_review": progress.needs_review,
                        "failed": progress.failed,
                    },
                ),
            )
        if on_progress:
            on_progress(progress)
        return progress

    def _commit(
        self,
        batch: list[tuple[RowResult, str]],
        sink: BinaryIO,
        progress: RunProgress,
        on_batch: BatchHook | None,
    ) -> None:
        if not batch and on_batch is None:
            return
        progress.rows += len(batch)
        progress.needs_review += sum(1 for result, _ in batch if result.reasons)
        progress.failed += sum(1 for result, _ in batch if result.outcome == "invalid")
        if batch:
            progress.last_row = batch[-1][0].number
        with self.db.session() as session:
            append_many(
                session,
                [
                    self._event(
                        tracking_code,
                        result.outcome,
                        "verification",
                        subject=result.national_code,
                        detail={"job": progress.job_tracking_code, "row": result.number},
                    )
                    for result, tracking_code in batch
                ],
            )
            if on_batch:
                on_batch(session, progress)
        lines = format_records(output_record(result, code) for result, code in batch)
        sink.write(lines)
        sink.flush()
        os.fsync(sink.fileno())
