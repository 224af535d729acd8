"""Person, mobile, entity and representative verification over the API."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from api.helpers import active_entity, living_person
from fastapi.testclient import TestClient
from sqlmodel import select

from idp.storage.models import AuditEntry

# Run with the direct routes on and off (tests/api/conftest.py).
BOTH_ROUTINGS = True


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _entries(app_client: TestClient) -> list[AuditEntry]:
    with app_client.app.state.hoviyat.db.read() as session:  # type: ignore[attr-defined]
        return list(session.exec(select(AuditEntry).where(AuditEntry.event_type == "verification")))


def test_match_and_mismatch_each_get_a_recorded_tracking_code(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    good = app_client.post(
        "/v1/persons/verify",
        json={
            "national_code": person["national_code"],
            "birth_date": person["birth_date"],
            "first_name": person["first_name"],
        },
        headers=_auth(bank_token),
    )
    assert good.status_code == 200, good.text
    assert good.json()["match"] is True
    assert good.json()["fields"]["birth_date"] == "match"
    assert good.json()["disclosed"]["last_name"] == person["last_name"]

    other_day = (date.fromisoformat(person["birth_date"]) + timedelta(days=1)).isoformat()
    bad = app_client.post(
        "/v1/persons/verify",
        json={"national_code": person["national_code"], "birth_date": other_day},
        headers=_auth(bank_token),
    )
    assert bad.status_code == 200
    assert bad.json()["match"] is False
    assert bad.json()["fields"]["birth_date"] == "mismatch"
    assert bad.json()["disclosed"] == {}, "nothing is disclosed without a full match"

    codes = {good.json()["tracking_code"], bad.json()["tracking_code"]}
    assert len(codes) == 2
    recorded = {e.tracking_code: e for e in _entries(app_client)}
    assert codes <= set(recorded)
    assert recorded[good.json()["tracking_code"]].outcome == "match"
    assert recorded[bad.json()["tracking_code"]].outcome == "no_match"
    for entry in recorded.values():
        assert entry.subject_hash and person["national_code"] not in entry.subject_hash


def test_jalali_date_in_persian_digits_matches(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    persian = person["birth_date_jalali"].translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    code = person["national_code"].translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    response = app_client.post(
        "/v1/persons/verify",
        json={"national_code": code, "birth_date": persian},
        headers=_auth(bank_token),
    )
    assert response.status_code == 200, response.text
    assert response.json()["match"] is True


def test_unknown_person_answers_like_a_wrong_attribute(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    wrong = app_client.post(
        "/v1/persons/verify",
        json={"national_code": person["national_code"], "birth_date": "1300-01-01"},
        headers=_auth(bank_token),
    ).json()
    unknown = app_client.post(
        "/v1/persons/verify",
        json={"national_code": "0499370899", "birth_date": "1300-01-01"},
        headers=_auth(bank_token),
    ).json()
    strip = lambda body: {k: v for k, v in body.items() if k != "tracking_code"}  # noqa: E731
    assert strip(wrong) == strip(unknown)


def test_mobile_entity_and_representative(
    app_client: TestClient, bank_token: str, synthetic_registry_path: Path
) -> None:
    person = living_person(synthetic_registry_path)
    owned = app_client.post(
        "/v1/mobile/verify",
        json={"national_code": person["national_code"], "mobile": person["mobiles"][0]},
        headers=_auth(bank_token),
    )
    assert owned.json()["match"] is True
    not_owned = app_client.post(
        "/v1/mobile/verify",
        json={"national_code": person["national_code"], "mobile": "09000000000"},
        headers=_auth(bank_token),
    )
    assert not_owned.json()["match"] is False

    entity = active_entity(synthetic_registry_path)
    found = app_client.post(
        "/v1/legal-entities/verify",
        json={"national_id": entity["national_id"], "name": entity["name"]},
        headers=_auth(bank_token),
    ).json()
    assert found["match"] is True and found["status"] == "active"
    assert found["disclosed"]["name"] == entity["name"]

    rep = entity["current_representative"]
    answer = app_client.post(
        f"/v1/legal-entities/{entity['national_id']}/representatives/verify",
        json={"national_code": rep["national_code"]},
        headers=_auth(bank_token),
    ).json()
    assert answer["match"] is True and answer["role"] == rep["role"]
    stranger = app_client.post(
        f"/v1/legal-entities/{entity['national_id']}/representatives/verify",
        json={"national_code": "0499370899"},
        headers=_auth(bank_token),
    ).json()
    assert stranger["match"] is False and stranger["role"] is None


def test_match_only_policy_discloses_nothing(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    from fixtures_app import client_token

    token = client_token(app_client, "demo-registry", demo_clients["demo-registry"])
    person = living_person(synthetic_registry_path)
    body = app_client.post(
        "/v1/persons/verify",
        json={"national_code": person["national_code"], "birth_date": person["birth_date"]},
        headers=_auth(token),
    ).json()
    assert body["match"] is True and body["disclosed"] == {}
