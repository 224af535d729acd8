"""``/v1/reconciliations``: batch reconciliation of legacy records as an API job.

``POST`` takes the legacy CSV as a ``text/csv`` body, stores it, records the
job and answers ``202`` with the job's status and its ``Location``; the job
runs in a background thread of the accepting worker. ``GET /{id}`` answers
from the database on any worker, and resumes a job whose worker died or
whose registry was down. ``GET /{id}/result`` is the reconciled CSV once the
job has completed. A client sees only its own jobs: another's is a 404.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from idp.audit.log import AuditEvent, append
from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import Caller, require_client
from idp.private_files import open_private, private_folder
from idp.problems import Problem, not_found
from idp.reconciliation import jobs
from idp.reconciliation.engine import OPERATION
from idp.reconciliation.legacy_csv import LegacyFormatError, check_header
from idp.storage.reconciliations import ReconciliationJob, get_job
from idp.tracking import new_tracking_code

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliation"])
CallerDep = Annotated[Caller, Depends(require_client)]
HoviyatDep = Annotated[Hoviyat, Depends(get_hoviyat)]


class ReconciliationStatus(BaseModel):
    id: str
    tracking_code: str
    state: str
    service_code: str
    input_bytes: int
    rows_done: int
    rows_needs_review: int
    rows_failed: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: str | None

    @classmethod
    def of(cls, job: ReconciliationJob) -> ReconciliationStatus:
        return cls(
            id=job.id,
            tracking_code=job.id,
            state=job.state,
            service_code=job.service_code,
            input_bytes=job.input_bytes,
            rows_done=job.rows_done,
            rows_needs_review=job.rows_needs_review,
            rows_failed=job.rows_failed,
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            result=f"/v1/reconciliations/{job.id}/result" if job.state == "completed" else None,
        )


def _event(caller: Caller, tracking_code: str, outcome: str, **detail: object) -> AuditEvent:
    return caller.audit_event(
        tracking_code=tracking_code,
        event_type="reconciliation",
        operation=OPERATION,
        outcome=outcome,
        detail=dict(detail),
    )


def _refuse(hoviyat: Hoviyat, caller: Caller, problem: Problem) -> Problem:
    """Record the refusal under a fresh tracking code, which the problem then carries."""
    tracking_code = new_tracking_code()
    with hoviyat.db.session() as session:
        append(session, _event(caller, tracking_code, "refused", problem=problem.slug))
    problem.extensions.setdefault("tracking_code", tracking_code)
    return problem


async def _refused(hoviyat: Hoviyat, caller: Caller, problem: Problem) -> Problem:
    return await run_in_threadpool(_refuse, hoviyat, caller, problem)


def _authorise(hoviyat: Hoviyat, caller: Caller) -> None:
    """403 outside the policy, recorded like every refused verification."""
    try:
        caller.require_operation(OPERATION)
    except Problem as problem:
        raise _refuse(hoviyat, caller, problem) from None


def _own_job(hoviyat: Hoviyat, caller: Caller, job_id: str) -> ReconciliationJob:
    with hoviyat.db.read() as session:
        job = get_job(session, job_id[:40])
    if job is None or job.client_id != caller.client_id:
        raise not_found(f"no reconciliation {job_id!r} of this client")
    return job


CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        "description": "legacy records: a header naming national_code and any of first_name, "
        "last_name, father_name, birth_date, postal_code; then one row per record. UTF-8 "
        "(byte-order mark optional) or UTF-16 with a byte-order mark. Only the first "
        "HOVIYAT_RECONCILIATION_MAX_ROWS_PER_SUBJECT rows (default 10) naming one national "
        "code are looked up; later ones are marked duplicate-subject",
    }
}


@router.post("", status_code=202, response_model=ReconciliationStatus, openapi_extra=CSV_BODY)
async def create_reconciliation(
    request: Request,
    caller: CallerDep,
    hoviyat: HoviyatDep,
) -> JSONResponse:
    await run_in_threadpool(_authorise, hoviyat, caller)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise await _refused(
            hoviyat,
            caller,
            Problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"send the legacy records as text/csv, not {media_type or 'nothing'}",
            ),
        )
    limit = hoviyat.reconciliation_settings.max_upload_bytes
    job_id = new_tracking_code()
    source, _output = jobs.job_files(hoviyat.settings.data_dir, job_id)
    private_folder(source.parent)
    partial = source.with_suffix(".part")
    received = 0
    try:
        with os.fdopen(open_private(partial), "wb") as handle:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise Problem(
                        413,
                        "body-too-large",
                        "Request body too large",
                        f"a legacy file may have at most {limit} bytes; split it",
                    )
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        check_header(partial)
    except LegacyFormatError as exc:
        partial.unlink(missing_ok=True)
        invalid = Problem(422, "invalid-legacy-file", "Invalid legacy file", str(exc))
        raise await _refused(hoviyat, caller, invalid) from None
    except Problem as problem:
        partial.unlink(missing_ok=True)
        raise await _refused(hoviyat, caller, problem) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, source)
    job = ReconciliationJob(
        id=job_id,
        client_id=caller.client_id,
        service_code=caller.service_code,
        input_bytes=received,
    )
    await run_in_threadpool(jobs.create_job, hoviyat, job, caller.policy.legal_basis)
    await run_in_threadpool(jobs.start, hoviyat, job_id)
    status = ReconciliationStatus.of(job)
    return JSONResponse(
        status.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/v1/reconciliations/{job_id}"},
    )


@router.get("/{job_id}", response_model=ReconciliationStatus)
def reconciliation_status(
    job_id: str,
    caller: CallerDep,
    hoviyat: HoviyatDep,
) -> ReconciliationStatus:
    _authorise(hoviyat, caller)
    job = _own_job(hoviyat, caller, job_id)
    if jobs.is_abandoned(hoviyat, job) and jobs.start(hoviyat, job.id):
        job = _own_job(hoviyat, caller, job_id)
    return ReconciliationStatus.of(job)


@router.get("/{job_id}/result", response_class=FileResponse)
def reconciliation_result(
    job_id: str,
    caller: CallerDep,
    hoviyat: HoviyatDep,
) -> FileResponse:
    _authorise(hoviyat, caller)
    job = _own_job(hoviyat, caller, job_id)
    if job.state != "completed":
        raise Problem(
            409,
            "reconciliation-not-finished",
            "Not finished",
            f"the reconciliation is {job.state} ({job.rows_done} rows done); "
            "ask its status until it is completed",
            headers={"Retry-After": "5"},
            state=job.state,
        )
    _source, output = jobs.job_files(hoviyat.settings.data_dir, job.id)
    with hoviyat.db.session() as session:
        append(session, _event(caller, job.id, "result_retrieved", rows=job.rows_done))
    return FileResponse(
        output, media_type="text/csv; charset=utf-8", filename=f"reconciliation-{job.id}.csv"
    )
