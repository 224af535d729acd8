"""The audit API through the real app: auditors search, export and prove; citizens see history."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col

from idp.audit import rfc9162
from idp.audit.canonical import entry_bytes
from idp.audit.log import AuditEvent, append, subject_hash
from idp.audit.verify import verify_export
from idp.oauth.rfc9068 import issue_access_token
from idp.storage.models import AuditEntry
from idp.tracking import new_tracking_code

PERSON = "0499370899"
OTHER = "0013542419"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _record(app_client: TestClient, national_code: str, service_code: str, age_days: int) -> str:
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    code = new_tracking_code()
    with hoviyat.db.session() as session:
        entry = append(
            session,
            AuditEvent(
                tracking_code=code,
                event_type="verification",
                actor_type="client",
                actor_id="demo-bank",
                service_code=service_code,
                legal_basis=hoviyat.policies[service_code].legal_basis,
                operation="persons.verify",
                subject_hash=subject_hash(hoviyat.secrets.subject_pepper, national_code),
                outcome="match",
            ),
        )
        session.execute(
            update(AuditEntry)
            .where(col(AuditEntry.id) == entry.id)
            .values(created_at=datetime.now(UTC) - timedelta(days=age_days))
        )
    return code


def _citizen_token(app_client: TestClient, national_code: str) -> str:
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    return issue_access_token(
        hoviyat.keyring,
        issuer=hoviyat.settings.issuer,
        client_id="citizen-portal",
        subject="citizen",
        scope=["openid"],
        lifetime=300,
        extra_claims={"national_code": national_code},
    )


def test_citizen_sees_own_lookups_newest_first_with_deferred_ones_hidden(
    app_client: TestClient,
) -> None:
    old_bank = _record(app_client, PERSON, "demo-bank-kyc", 10)
    old_inquiry = _record(app_client, PERSON, "demo-investigation", 120)
    _record(app_client, PERSON, "demo-investigation", 5)  # within its 90-day delay
    new_bank = _record(app_client, PERSON, "demo-bank-kyc", 1)
    _record(app_client, OTHER, "demo-bank-kyc", 1)

    response = app_client.get(
        "/v1/me/access-history", headers=_auth(_citizen_token(app_client, PERSON))
    )
    assert response.status_code == 200, response.text
    items = response.json()["entries"]
    assert [i["tracking_code"] for i in items] == [new_bank, old_bank, old_inquiry]
    first = items[0]
    assert first["service"]["en"] and first["service"]["fa"] != first["service"]["en"]
    assert first["event"] == {"type": "verification", "fa": "استعلام هویت",
                              "en": "Identity verification"}  # fmt: skip
    assert first["agency"] == "Demo bank back office"
    assert first["outcome"]["code"] == "match" and first["legal_basis"]
    assert first["time_jalali"].startswith("14")


def test_citizen_logged_in_at_hoviyat_sees_history_by_session_cookie(
    app_client: TestClient,
) -> None:
    from idp.login.sessions import cookie_name, start_session

    code = _record(app_client, PERSON, "demo-bank-kyc", 2)
    hoviyat = app_client.app.state.hoviyat  # type: ignore[attr-defined]
    with hoviyat.db.session() as session:
        _, token = start_session(
            session, national_code=PERSON, acr="http://eidas.europa.eu/LoA/substantial",
            amr=["otp"], tracking_code=new_tracking_code(), ttl_seconds=600,
        )  # fmt: skip
    app_client.cookies.set(cookie_name(hoviyat.settings), token)
    response = app_client.get("/v1/me/access-history")
    assert response.status_code == 200, response.text
    assert [i["tracking_code"] for i in response.json()["entries"]] == [code]


def test_access_history_refuses_back_office_tokens(app_client: TestClient, bank_token: str) -> None:
    response = app_client.get("/v1/me/access-history", headers=_auth(bank_token))
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert app_client.get("/v1/me/access-history").status_code == 401


def test_auditor_searches_by_national_code_and_is_recorded(
    app_client: TestClient, admin_token: str, bank_token: str
) -> None:
    codes = {_record(app_client, PERSON, "demo-bank-kyc", d) for d in (1, 2)}
    _record(app_client, OTHER, "demo-bank-kyc", 1)
    response = app_client.get(
        "/v1/audit/entries", params={"national_code": PERSON}, headers=_auth(admin_token)
    )
    assert response.status_code == 200, response.text
    assert {e["tracking_code"] for e in response.json()["entries"]} == codes
    # the search itself lands in the person's history
    history = app_client.get(
        "/v1/me/access-history", headers=_auth(_citizen_token(app_client, PERSON))
    ).json()["entries"]
    assert history[0]["event"]["type"] == "audit_searched"
    assert history[0]["tracking_code"] == response.json()["tracking_code"]

    by_client = app_client.get(
        "/v1/audit/entries",
        params={"client": "demo-bank", "outcome": "match", "limit": 2},
        headers=_auth(admin_token),
    ).json()
    assert len(by_client["entries"]) == 2 and by_client["next_cursor"] is not None

    bad = app_client.get(
        "/v1/audit/entries", params={"national_code": "1234567890"}, headers=_auth(admin_token)
    )
    assert bad.status_code == 422 and bad.json()["field"] == "national_code"
    forbidden = app_client.get("/v1/audit/entries", headers=_auth(bank_token))
    assert forbidden.status_code == 403
    assert app_client.get("/v1/audit/entries").status_code == 401


def test_export_proofs_and_checkpoints_verify(app_client: TestClient, admin_token: str) -> None:
    for days in range(5):
        _record(app_client, PERSON, "demo-bank-kyc", days)
    assert app_client.get("/v1/audit/checkpoint").status_code == 404
    signed = app_client.post("/v1/audit/checkpoints", json={}, headers=_auth(admin_token))
    assert signed.status_code == 201, signed.text
    earlier = signed.json()

    export = app_client.get("/v1/audit/export", headers=_auth(admin_token))
    assert export.status_code == 200, export.text
    assert export.headers["content-type"].startswith("application/jsonl")
    report = verify_export(io.BytesIO(export.content), earlier_checkpoint=earlier)
    assert report.ok, [p.message for p in report.problems]
    assert report.entries == report.tree_size == earlier["tree_size"] + 1

    latest = app_client.get("/v1/audit/checkpoint").json()
    assert latest["tree_size"] == report.tree_size
    proof = app_client.get(
        "/v1/audit/proofs/inclusion", params={"leaf_index": 2}, headers=_auth(admin_token)
    ).json()
    with app_client.app.state.hoviyat.db.session() as session:  # type: ignore[attr-defined]
        row = session.query(AuditEntry).filter(AuditEntry.leaf_index == 2).one()
        from idp.audit.canonical import entry_document

        document = entry_document(
            leaf_index=2, created_at=row.created_at, tracking_code=row.tracking_code,
            event_type=row.event_type, actor_type=row.actor_type, actor_id=row.actor_id,
            service_code=row.service_code, legal_basis=row.legal_basis,
            operation=row.operation, subject_hash=row.subject_hash, outcome=row.outcome,
            detail=row.detail,
        )  # fmt: skip
    rfc9162.verify_inclusion(
        rfc9162.leaf_hash(entry_bytes(document)),
        2,
        latest["tree_size"],
        [bytes.fromhex(h) for h in proof["inclusion_proof"]],
        bytes.fromhex(latest["root_hash"]),
    )
    consistency = app_client.get(
        "/v1/audit/proofs/consistency",
        params={"first": earlier["tree_size"], "second": latest["tree_size"]},
    ).json()
    rfc9162.verify_consistency(
        earlier["tree_size"],
        latest["tree_size"],
        bytes.fromhex(earlier["root_hash"]),
        bytes.fromhex(latest["root_hash"]),
        [bytes.fromhex(h) for h in consistency["consistency_proof"]],
    )
    too_far = app_client.get("/v1/audit/proofs/consistency", params={"first": 1, "second": 10_000})
    assert too_far.status_code == 400
    keys = app_client.get("/v1/audit/log-key").json()
    assert keys["keys"][0]["key_id"] == latest["key_id"]
