"""Batch reconciliation from the attacker's side: each test is named after its attack.

Real app over ASGI, real jobs in background threads, real synthetic registry.
"""

from __future__ import annotations

import codecs
import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
from api.helpers import living_person
from fastapi.testclient import TestClient
from fixtures_app import client_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from idp.audit.log import subject_hash
from idp.clients import create_client
from idp.reconciliation.engine import Reconciler
from idp.reconciliation.legacy_csv import LegacyFormatError, legacy_rows, open_legacy
from idp.reconciliation.rows import reconcile_row
from idp.storage.engine import Database
from idp.storage.models import AuditEntry
from policies.service_policy import load_service_policies
from verifiers.registry.synthetic import SyntheticRegistry

PROBLEM = "application/problem+json"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(client: TestClient, token: str, body: bytes | str) -> Any:
    return client.post(
        "/v1/reconciliations", content=body, headers={**_bearer(token), "Content-Type": "text/csv"}
    )


def _finished(client: TestClient, token: str, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status: dict = client.get(f"/v1/reconciliations/{job_id}", headers=_bearer(token)).json()
        if status["state"] in ("completed", "failed"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def _result_rows(client: TestClient, token: str, job_id: str) -> list[dict[str, str]]:
    result = client.get(f"/v1/reconciliations/{job_id}/result", headers=_bearer(token))
    assert result.status_code == 200, result.text
    return list(csv.DictReader(io.StringIO(result.text)))


def _legacy(person: dict[str, Any]) -> str:
    return (
        "national_code,first_name,last_name,birth_date\r\n"
        f"{person['national_code']},{person['first_name']},{person['last_name']},"
        f"{person['birth_date']}\r\n"
    )


# --- encodings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
        lambda text: text.encode("utf-16"),  # BOM in the machine's order
        lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
        lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    ],
    ids=["utf-8-bom", "utf-16", "utf-16-le", "utf-16-be"],
)
def test_attack_spreadsheet_unicode_export_is_read_not_refused_as_headerless(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path, encode: Any
) -> None:
    person = living_person(synthetic_registry_path)
    created = _upload(app_client, bank_token, encode(_legacy(person)))
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert _finished(app_client, bank_token, job_id)["state"] == "completed"
    [row] = _result_rows(app_client, bank_token, job_id)
    assert row["national_code"] == person["national_code"]
    assert row["first_name_result"] == row["last_name_result"] == "match", row


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (codecs.BOM_UTF8, "empty"),
        (codecs.BOM_UTF16_LE, "empty"),
        ("national_code\r\n0499370899\r\n".encode("utf-16-le"), "UTF-16 without a byte-order"),
        ("national_code\r\n".encode("utf-32"), "UTF-32"),
        (b"0499370899,Kaveh\r\n", "read as UTF-8"),
    ],
    ids=["empty", "utf-8-bom-only", "utf-16-bom-only", "utf-16-no-bom", "utf-32", "headerless"],
)
def test_attack_unreadable_legacy_file_is_refused_with_a_reason(
    app_client: TestClient, bank_token: str, body: bytes, words: str
) -> None:
    refused = _upload(app_client, bank_token, body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    detail = refused.json()["detail"]
    assert words in detail, detail
    assert "0499370899" not in detail  # a headerless first row is a citizen's record


# --- one subject, many rows ----------------------------------------------------------------------


def _subject_entries(client: TestClient, national_code: str) -> int:
    hoviyat = client.app.state.hoviyat  # type: ignore[attr-defined]
    digest = subject_hash(hoviyat.secrets.subject_pepper, national_code)
    with hoviyat.db.read() as session:
        return int(
            session.exec(
                select(func.count()).where(AuditEntry.subject_hash == digest)  # type: ignore[arg-type]
            ).one()
        )


def test_attack_one_citizen_repeated_200000_times_is_looked_up_only_up_to_the_quota(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    """A 2 MB upload naming one person 200,000 times: at most the quota is looked up."""
    person = living_person(synthetic_registry_path)
    body = ("national_code\r\n" + f"{person['national_code']}\r\n" * 200_000).encode()
    assert len(body) > 2_000_000
    created = _upload(app_client, bank_token, body)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    status = _finished(app_client, bank_token, job_id, timeout=600)
    assert status["state"] == "completed", status
    assert status["rows_done"] == 200_000
    assert _subject_entries(app_client, person["national_code"]) == 10
    rows = _result_rows(app_client, bank_token, job_id)
    assert [r["needs_review"] for r in rows[:10]] == ["nothing-to-compare"] * 10
    assert {r["national_code_result"] for r in rows[10:]} == {"not_checked"}
    assert all(r["needs_review"].startswith("duplicate-subject") for r in rows[10:])


def test_attack_quota_dodged_by_crashing_and_resuming_still_holds(
    tmp_path: Path, db: Database, synthetic_registry_path: Path
) -> None:
    """Rows done before a resume still count against their subject."""
    person = living_person(synthetic_registry_path)
    source = tmp_path / "legacy.csv"
    source.write_text("national_code\r\n" + f"{person['national_code']}\r\n" * 6)
    output = tmp_path / "out.csv"
    registry = SyntheticRegistry(synthetic_registry_path)
    reconciler = Reconciler(
        db=db,
        civil=registry,
        policy=load_service_policies()["demo-bank-kyc"],
        pepper=b"p" * 32,
        actor_type="client",
        actor_id="demo-bank",
        batch_size=1,
        max_rows_per_subject=3,
    )
    batches = 0

    def crash_after_two(_session: Any, _progress: Any) -> None:
        nonlocal batches
        batches += 1
        if batches > 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reconciler.run(source, output, job_tracking_code="J1", resume=False,
                       on_batch=crash_after_two)  # fmt: skip
    reconciler.run(source, output, job_tracking_code="J1", resume=True)
    registry.close()
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert [r["national_code_result"] for r in rows] == ["valid"] * 3 + ["not_checked"] * 3


# --- another client's job ------------------------------------------------------------


def test_attack_reading_another_clients_reconciliation_by_its_tracking_code_is_a_404(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    with hoviyat.db.session() as session:
        rival = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            client_id="rival-bank",
            name="rival",
            service_code="demo-bank-kyc",
            grant_types=["client_credentials"],
        )
    assert rival.client_secret
    rival_token = client_token(app_client, "rival-bank", rival.client_secret)
    created = _upload(app_client, bank_token, _legacy(living_person(synthetic_registry_path)))
    job_id = created.json()["id"]
    assert _finished(app_client, bank_token, job_id)["state"] == "completed"
    for suffix in ("", "/result"):
        theirs = app_client.get(
            f"/v1/reconciliations/{job_id}{suffix}", headers=_bearer(rival_token)
        )
        nobody = app_client.get(
            f"/v1/reconciliations/01JZZZZZZZZZZZZZZZZZZZZZZZ{suffix}", headers=_bearer(rival_token)
        )
        assert theirs.status_code == nobody.status_code == 404
        assert theirs.json()["type"] == nobody.json()["type"]
        assert theirs.json().keys() == nobody.json().keys()


# --- fuzzing the CSV parser ------------------------------------------------------------

_CELLS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=14
) | st.sampled_from(["0499370899", "۰۴۹۹۳۷۰۸۹۹", "49937089", '"', '""', "\r", "\n", "=1+1", ""])
_TABLES = st.lists(st.lists(_CELLS, max_size=7), max_size=6)
_HEADERS = st.lists(
    st.sampled_from(["national_code", "first_name", "birth_date", "postal_code", "x", ""]),
    max_size=6,
)


@st.composite
def _legacy_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\r\n", "\n", "\r"])))
    writer.writerow(draw(_HEADERS))
    writer.writerows(draw(_TABLES))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1256"]))
    return buffer.getvalue().encode(encoding, errors="replace")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=_legacy_bytes())
def test_attack_fuzzed_legacy_files_give_rows_or_a_format_error(
    tmp_path: Path, synthetic_registry_path: Path, data: bytes
) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    policy = load_service_policies()["demo-bank-kyc"]
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        _counter, text = open_legacy(path)
        with text:
            for row in legacy_rows(text):
                result = reconcile_row(row, registry, policy)
                assert result.outcome in ("match", "no_match", "invalid")
    except LegacyFormatError as error:
        assert str(error)
    finally:
        registry.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=_legacy_bytes())
def test_attack_fuzzed_uploads_are_accepted_or_refused_never_a_500(
    app_client: TestClient, bank_token: str, data: bytes
) -> None:
    answer = _upload(app_client, bank_token, data)
    assert answer.status_code in (202, 422), answer.text
    if answer.status_code == 202:
        status = _finished(app_client, bank_token, answer.json()["id"])
        assert status["state"] == "completed", status
    else:
        assert answer.headers["content-type"].startswith(PROBLEM)
        assert answer.json()["detail"].strip()
