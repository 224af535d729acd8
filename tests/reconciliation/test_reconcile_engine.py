"""Whole runs on real databases (SQLite and PostgreSQL): audit, output, resumption."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from idp.reconciliation.engine import Reconciler, RunProgress
from idp.reconciliation.legacy_csv import OUTPUT_FIELDS
from idp.reconciliation.sample import write_sample
from idp.storage.engine import Database
from idp.storage.models import AuditEntry
from policies.service_policy import load_service_policies
from verifiers.registry import CivilRegistry, RegistryUnavailable, open_registries
from verifiers.registry.synthetic import SyntheticRegistry

ROWS = 1_200


@pytest.fixture
def legacy_file(tmp_path: Path, synthetic_registry_path: Path) -> Path:
    path = tmp_path / "legacy.csv"
    counts = write_sample(synthetic_registry_path, path, ROWS, persons=500)
    assert counts["clean"] < ROWS  # the sample really has defects to report
    return path


def reconciler(db: Database, civil: CivilRegistry) -> Reconciler:
    return Reconciler(
        db=db,
        civil=civil,
        policy=load_service_policies()["demo-bank-kyc"],
        pepper=b"p" * 32,
        actor_type="operator",
        actor_id="cli:test",
        batch_size=100,
    )


def output_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == OUTPUT_FIELDS
        return list(reader)


def audit_entries(db: Database) -> list[AuditEntry]:
    with db.read() as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))))


def test_every_row_comes_back_once_with_its_own_audited_tracking_code(
    db: Database, synthetic_registry_path: Path, legacy_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    civil = SyntheticRegistry(synthetic_registry_path)
    report = reconciler(db, civil).run(legacy_file, out, job_tracking_code="JOB1", resume=False)
    civil.close()
    rows = output_rows(out)
    assert [int(row["row"]) for row in rows] == list(range(1, ROWS + 1))
    assert report.rows == ROWS
    assert report.needs_review == sum(1 for row in rows if row["needs_review"])
    assert 0 < report.needs_review < ROWS
    reasons = Counter(row["needs_review"].split(":")[0] for row in rows if row["needs_review"])
    assert {"mismatch", "invalid", "malformed-row"} <= set(reasons)
    assert any(row["filled_birth_date"] for row in rows)
    assert not any(row["filled_postal_code"] for row in rows)  # not disclosed to the bank

    entries = audit_entries(db)
    row_entries = [e for e in entries if e.event_type == "verification"]
    assert [e.detail["row"] for e in row_entries] == list(range(1, ROWS + 1))
    assert {e.detail["job"] for e in row_entries} == {"JOB1"}
    assert {e.tracking_code for e in row_entries} == {row["tracking_code"] for row in rows}
    assert len({e.tracking_code for e in row_entries}) == ROWS
    assert [e.outcome for e in entries if e.event_type == "reconciliation"] == [
        "started",
        "completed",
    ]
    assert all(e.service_code == "demo-bank-kyc" and e.legal_basis for e in entries)
    valid = [e for e in row_entries if e.outcome != "invalid"]
    assert valid and all(e.subject_hash and len(e.subject_hash) == 64 for e in valid)


def test_registry_outage_stops_the_run_and_resume_finishes_without_redoing_rows(
    db: Database, registry_server: Any, legacy_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    options = {"url": registry_server.url, "timeout": 1.0, "retries": 0}
    first = open_registries("http", options)

    def break_registry(progress: RunProgress) -> None:
        if progress.rows >= 300:
            registry_server.control(error_rate=1.0, error_status=503)

    with pytest.raises(RegistryUnavailable):
        reconciler(db, first.civil).run(
            legacy_file, out, job_tracking_code="JOB1", resume=True, on_progress=break_registry
        )
    first.close()
    saved = output_rows(out)
    assert 300 <= len(saved) < ROWS
    assert [int(row["row"]) for row in saved] == list(range(1, len(saved) + 1))

    registry_server.heal()
    second = open_registries("http", options)
    report = reconciler(db, second.civil).run(
        legacy_file, out, job_tracking_code="JOB2", resume=True
    )
    second.close()
    assert report.resumed_after_row == len(saved)
    rows = output_rows(out)
    assert [int(row["row"]) for row in rows] == list(range(1, ROWS + 1))
    done = Counter(e.detail["row"] for e in audit_entries(db) if e.event_type == "verification")
    assert set(done) == set(range(1, ROWS + 1))
    assert max(done.values()) == 1  # no row was reconciled twice


def test_a_half_written_output_is_repaired_and_its_rows_done_again(
    db: Database, synthetic_registry_path: Path, legacy_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    civil = SyntheticRegistry(synthetic_registry_path)
    engine = reconciler(db, civil)
    engine.run(legacy_file, out, job_tracking_code="JOB1", resume=False)
    complete = out.read_bytes()
    out.write_bytes(complete[: len(complete) * 2 // 3 + 7])  # a crash mid-line
    kept = len(output_rows(out)) - 1
    report = engine.run(legacy_file, out, job_tracking_code="JOB2", resume=True)
    civil.close()
    assert report.resumed_after_row == kept
    rows = output_rows(out)
    assert [int(row["row"]) for row in rows] == list(range(1, ROWS + 1))
    redone = [e for e in audit_entries(db) if e.detail.get("job") == "JOB2"]
    assert [e.detail["row"] for e in redone] == list(range(kept + 1, ROWS + 1))
