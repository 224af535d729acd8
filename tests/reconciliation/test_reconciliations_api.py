"""``/v1/reconciliations`` over the real app: jobs, status, result, refusals, takeover."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fixtures_app import client_token
from sqlmodel import select

from idp.context import Hoviyat
from idp.reconciliation import jobs
from idp.reconciliation.sample import write_sample
from idp.storage.models import AuditEntry, utcnow
from idp.storage.reconciliations import ReconciliationJob
from idp.tracking import new_tracking_code

ROWS = 400


@pytest.fixture
def legacy_csv(tmp_path: Path, synthetic_registry_path: Path) -> bytes:
    path = tmp_path / "legacy.csv"
    write_sample(synthetic_registry_path, path, ROWS, persons=300)
    return path.read_bytes()


def hoviyat_of(client: TestClient) -> Hoviyat:
    return client.app.state.hoviyat  # type: ignore[attr-defined,no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_until_finished(client: TestClient, token: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status = client.get(f"/v1/reconciliations/{job_id}", headers=bearer(token))
        assert status.status_code == 200, status.text
        body: dict[str, Any] = status.json()
        if body["state"] in ("completed", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def audit_of(hoviyat: Hoviyat, tracking_code: str) -> list[str]:
    with hoviyat.db.read() as session:
        entries = session.exec(
            select(AuditEntry)
            .where(AuditEntry.tracking_code == tracking_code)
            .order_by(AuditEntry.id)  # type: ignore[arg-type]
        )
        return [entry.outcome for entry in entries]


def test_job_runs_to_a_downloadable_result_with_its_audit_trail(
    app_client: TestClient, bank_token: str, legacy_csv: bytes
) -> None:
    created = app_client.post(
        "/v1/reconciliations",
        content=legacy_csv,
        headers={**bearer(bank_token), "Content-Type": "text/csv; charset=utf-8"},
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.headers["location"] == f"/v1/reconciliations/{job_id}"
    assert created.json()["input_bytes"] == len(legacy_csv)

    status = wait_until_finished(app_client, bank_token, job_id)
    assert status["state"] == "completed", status
    assert status["rows_done"] == ROWS
    assert 0 < status["rows_failed"] <= status["rows_needs_review"] < ROWS
    assert status["result"] == f"/v1/reconciliations/{job_id}/result"

    result = app_client.get(status["result"], headers=bearer(bank_token))
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(result.text)))
    assert [int(row["row"]) for row in rows] == list(range(1, ROWS + 1))
    assert sum(1 for row in rows if row["needs_review"]) == status["rows_needs_review"]
    assert audit_of(hoviyat_of(app_client), job_id) == [
        "accepted",
        "started",
        "completed",
        "result_retrieved",
    ]


def test_result_of_an_unfinished_job_is_409_and_others_jobs_are_404(
    app_client: TestClient, bank_token: str
) -> None:
    hoviyat = hoviyat_of(app_client)
    mine = ReconciliationJob(
        id=new_tracking_code(),
        client_id="demo-bank",
        service_code="demo-bank-kyc",
        state="running",
        heartbeat_at=utcnow(),
    )
    theirs = ReconciliationJob(
        id=new_tracking_code(),
        client_id="another-bank",
        service_code="demo-bank-kyc",
        state="completed",
    )
    with hoviyat.db.session() as session:
        session.add(mine)
        session.add(theirs)
    early = app_client.get(f"/v1/reconciliations/{mine.id}/result", headers=bearer(bank_token))
    assert early.status_code == 409
    assert early.json()["state"] == "running" and early.headers["retry-after"]
    for path in (f"/v1/reconciliations/{theirs.id}", f"/v1/reconciliations/{theirs.id}/result"):
        assert app_client.get(path, headers=bearer(bank_token)).status_code == 404


def test_operation_outside_the_policy_is_refused_and_recorded(
    app_client: TestClient, demo_clients: dict[str, str], legacy_csv: bytes
) -> None:
    token = client_token(app_client, "demo-registry", demo_clients["demo-registry"])
    refused = app_client.post(
        "/v1/reconciliations",
        content=legacy_csv,
        headers={**bearer(token), "Content-Type": "text/csv"},
    )
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["service_code"] == "demo-match-only"
    assert problem["operation"] == "reconciliations.create"
    assert audit_of(hoviyat_of(app_client), problem["tracking_code"]) == ["refused"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "slug"),
    [
        (b'{"national_code": "0499370899"}', "application/json", 415, "unsupported-media-type"),
        (b"0499370899,\xd8\xb9\xd9\x84\xdb\x8c\n", "text/csv", 422, "invalid-legacy-file"),
        (b"", "text/csv", 422, "invalid-legacy-file"),
    ],
)
def test_bad_uploads_are_problems_and_create_nothing(
    app_client: TestClient,
    bank_token: str,
    body: bytes,
    content_type: str,
    status: int,
    slug: str,
) -> None:
    answer = app_client.post(
        "/v1/reconciliations",
        content=body,
        headers={**bearer(bank_token), "Content-Type": content_type},
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["type"].endswith(slug)
    hoviyat = hoviyat_of(app_client)
    with hoviyat.db.read() as session:
        assert session.exec(select(ReconciliationJob)).first() is None
    folder = hoviyat.settings.data_dir / "reconciliations"
    assert not folder.exists() or not any(folder.iterdir())


def test_a_job_abandoned_by_a_dead_worker_is_taken_over_and_finished(
    app_client: TestClient, bank_token: str, legacy_csv: bytes
) -> None:
    hoviyat = hoviyat_of(app_client)
    job_id = new_tracking_code()
    source, _output = jobs.job_files(hoviyat.settings.data_dir, job_id)
    source.parent.mkdir(parents=True)
    source.write_bytes(legacy_csv)
    with hoviyat.db.session() as session:
        session.add(
            ReconciliationJob(
                id=job_id,
                client_id="demo-bank",
                service_code="demo-bank-kyc",
                state="running",
                worker="dead-host:1",
                attempts=1,
                started_at=utcnow() - timedelta(hours=1),
                heartbeat_at=utcnow() - timedelta(minutes=10),
                input_bytes=len(legacy_csv),
            )
        )
    status = wait_until_finished(app_client, bank_token, job_id)
    assert status["state"] == "completed" and status["rows_done"] == ROWS
    with hoviyat.db.read() as session:
        job = session.get(ReconciliationJob, job_id)
    assert job is not None and job.attempts == 2 and job.worker == jobs.worker_name()


def test_only_one_worker_can_claim_a_job(app_client: TestClient) -> None:
    hoviyat = hoviyat_of(app_client)
    job_id = new_tracking_code()
    with hoviyat.db.session() as session:
        session.add(
            ReconciliationJob(id=job_id, client_id="demo-bank", service_code="demo-bank-kyc")
        )
    assert jobs.claim(hoviyat, job_id, "worker-a:1")
    assert not jobs.claim(hoviyat, job_id, "worker-b:2")  # running with a fresh heartbeat
    with hoviyat.db.read() as session:
        job = session.get(ReconciliationJob, job_id)
    assert job is not None and job.worker == "worker-a:1" and job.attempts == 1


def test_a_file_over_the_upload_limit_is_413_and_leaves_nothing(
    hoviyat_settings: Any, demo_clients: dict[str, str], legacy_csv: bytes
) -> None:
    """Declared or streamed, a file over HOVIYAT_RECONCILIATION_MAX_UPLOAD_BYTES is refused
    and no job, part file or input file remains."""
    from idp.app import create_app
    from idp.context import build_hoviyat
    from idp.reconciliation.config import ReconciliationSettings

    limited = ReconciliationSettings(max_upload_bytes=len(legacy_csv) // 2)
    hoviyat = build_hoviyat(hoviyat_settings, reconciliation_settings=limited)
    app = create_app(hoviyat_settings, hoviyat)
    with TestClient(app, base_url=hoviyat_settings.issuer) as client:
        token = client_token(client, "demo-bank", demo_clients["demo-bank"])
        headers = {**bearer(token), "Content-Type": "text/csv"}

        def streamed() -> Iterator[bytes]:  # chunked: no length to refuse up front
            for start in range(0, len(legacy_csv), 4096):
                yield legacy_csv[start : start + 4096]

        for body in (legacy_csv, streamed()):
            answer = client.post("/v1/reconciliations", content=body, headers=headers)
            assert answer.status_code == 413, answer.text
            assert answer.json()["type"].endswith("/body-too-large")
        with hoviyat.db.read() as session:
            assert session.exec(select(ReconciliationJob)).first() is None
        folder = hoviyat.settings.data_dir / "reconciliations"
        assert not any(folder.iterdir())  # the streamed one got as far as its part file


def test_a_registry_outage_requeues_the_job_and_a_later_status_resumes_it(
    app_client: TestClient, bank_token: str, legacy_csv: bytes, registry_server: Any
) -> None:
    from verifiers.registry import open_registries

    hoviyat = hoviyat_of(app_client)
    embedded = hoviyat.registries
    hoviyat.registries = open_registries(
        "http", {"url": registry_server.url, "timeout": 1.0, "retries": 0}
    )
    try:
        registry_server.control(error_rate=1.0, error_status=503)
        created = app_client.post(
            "/v1/reconciliations",
            content=legacy_csv,
            headers={**bearer(bank_token), "Content-Type": "text/csv"},
        )
        assert created.status_code == 202
        job_id = created.json()["id"]
        deadline = time.monotonic() + 30
        while True:
            with hoviyat.db.read() as session:
                job = session.get(ReconciliationJob, job_id)
            assert job is not None
            if (job.state == "queued" and job.error) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert job.state == "queued" and "registry" in (job.error or "")
        assert job.rows_done == 0

        registry_server.heal()
        hoviyat.registries.close()
        hoviyat.registries = open_registries(  # a fresh circuit breaker
            "http", {"url": registry_server.url, "timeout": 1.0, "retries": 0}
        )
        status = wait_until_finished(app_client, bank_token, job_id)
        assert status["state"] == "completed" and status["rows_done"] == ROWS
        assert status["error"] is None
    finally:
        hoviyat.registries.close()
        hoviyat.registries = embedded


def test_openapi_documents_the_csv_body(app_client: TestClient) -> None:
    operation = app_client.get("/openapi.json").json()["paths"]["/v1/reconciliations"]["post"]
    assert "text/csv" in operation["requestBody"]["content"]
    assert "202" in operation["responses"]


def test_a_legacy_file_larger_than_the_api_body_limit_is_accepted(
    hoviyat_settings: Any, init_report: dict[str, Any], legacy_csv: bytes
) -> None:
    """The front door's 1 MB body limit does not apply to legacy files."""
    from idp.app import create_app

    settings = hoviyat_settings.model_copy(update={"max_body_bytes": len(legacy_csv) // 2})
    app = create_app(settings)
    secret = {c["client_id"]: c["client_secret"] for c in init_report["demo_clients"]}
    with TestClient(app, base_url=settings.issuer) as client:
        token = client_token(client, "demo-bank", secret["demo-bank"])
        small = client.post(
            "/v1/persons/verify",
            content=b"x" * len(legacy_csv),
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert small.status_code == 413, "other paths keep the small limit"
        answer = client.post(
            "/v1/reconciliations",
            content=legacy_csv,
            headers={**bearer(token), "Content-Type": "text/csv"},
        )
        assert answer.status_code == 202, answer.text
        assert wait_until_finished(client, token, answer.json()["id"])["state"] == "completed"
    app.state.hoviyat.close()
