"""Acting for a legal entity: current representatives only, refusals said in plain words."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import (
    Forms,
    follow,
    in_force,
    interaction_row,
    make_client,
    new_interaction,
    person_by_code,
    representations,
    submit,
)

from idp.login.entities import assess
from verifiers.registry.base import LegalEntity, Representative


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


def _pick(registry: Path, status: str, current: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    for entity, representative in representations(registry):
        if entity["status"] != status or in_force(representative) != current:
            continue
        if current is False and representative["valid_until"] is None:
            continue
        person = person_by_code(registry, representative["national_code"])
        if person["alive"]:
            return entity, person
    raise AssertionError(f"no {status} entity with a {'current' if current else 'past'} person")


def _entity_page(browser: TestClient, app: FastAPI, person: dict[str, Any], lang: str = "fa"):
    interaction = new_interaction(
        app, make_client(app), scope=["openid", "profile", "legal_entity"],
        requested_claims=["given_name", "legal_entity"], ui_locales=[lang],
    )  # fmt: skip
    page = browser.get(f"/login?interaction={interaction}")
    answer = submit(browser, page, "/login/identify", national_code=person["national_code"],
                    birth_date=person["birth_date"])  # fmt: skip
    entity_page = follow(browser, answer)
    assert "/login/entity" in entity_page.text
    return interaction, entity_page


def test_current_representative_acts_for_active_entity(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    entity, person = _pick(synthetic_registry_path, "active", True)
    interaction, page = _entity_page(browser, hoviyat_app, person)
    persian = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    chosen = submit(browser, page, "/login/entity",
                    entity_national_id=entity["national_id"].translate(persian))  # fmt: skip
    assert chosen.status_code == 303
    consent = follow(browser, chosen)
    assert entity["name"] in consent.text
    assert "سمت و حق امضای شما" in consent.text
    done = submit(browser, consent, "/login/consent", decision="allow")
    assert follow(browser, done).status_code == 303
    row = interaction_row(hoviyat_app, interaction)
    assert row.entity_national_id == entity["national_id"]
    assert row.completed_at is not None


def test_dissolved_entity_refused_with_reason(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    entity, person = _pick(synthetic_registry_path, "dissolved", True)
    interaction, page = _entity_page(browser, hoviyat_app, person, lang="en")
    refused = submit(browser, page, "/login/entity", entity_national_id=entity["national_id"])
    assert refused.status_code == 403
    assert "dissolved" in Forms(refused.text).errors["entity_national_id"]
    assert interaction_row(hoviyat_app, interaction).entity_national_id is None


def test_expired_representation_refused_with_its_end_date(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    entity, person = _pick(synthetic_registry_path, "active", False)
    ended = max(
        r["valid_until"]
        for r in entity["representatives"]
        if r["national_code"] == person["national_code"] and r["valid_until"]
    )
    _interaction, page = _entity_page(browser, hoviyat_app, person, lang="en")
    refused = submit(browser, page, "/login/entity", entity_national_id=entity["national_id"])
    assert refused.status_code == 403
    error = Forms(refused.text).errors["entity_national_id"]
    assert "ended on" in error and ended in error


def test_someone_elses_entity_and_malformed_identifier(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    mine, person = _pick(synthetic_registry_path, "active", True)
    other = next(
        e
        for e, _r in representations(synthetic_registry_path)
        if all(r["national_code"] != person["national_code"] for r in e["representatives"])
    )
    _interaction, page = _entity_page(browser, hoviyat_app, person, lang="en")
    refused = submit(browser, page, "/login/entity", entity_national_id=other["national_id"])
    assert refused.status_code == 403
    assert "does not list you" in Forms(refused.text).errors["entity_national_id"]
    typo = mine["national_id"][:-1] + str((int(mine["national_id"][-1]) + 1) % 10)
    malformed = submit(browser, page, "/login/entity", entity_national_id=typo)
    assert malformed.status_code == 400
    assert "11 digits" in Forms(malformed.text).errors["entity_national_id"]


def _entity(status: str, *reps: Representative) -> LegalEntity:
    return LegalEntity("10380284790", "شرکت نمونه", "1", date(2000, 1, 1), "ثبت تهران", status,  # type: ignore[arg-type]
                       tuple(reps))  # fmt: skip


def test_assess_rules() -> None:
    today = date(2026, 6, 1)
    current = Representative("0499370899", "مدیرعامل", "منفرد", date(2025, 1, 1), None)
    past = Representative("0499370899", "مدیرعامل", "منفرد", date(2020, 1, 1), date(2022, 1, 1))
    future = Representative("0499370899", "مدیرعامل", "منفرد", date(2027, 1, 1), None)
    assert assess("x", _entity("active", current), "0499370899", today).allowed
    assert assess("x", None, "0499370899", today).refusal == "err.entity_not_representative"
    assert assess("x", _entity("active", current), "1111111111", today).refusal == (
        "err.entity_not_representative"
    )
    assert assess("x", _entity("suspended", current), "0499370899", today).refusal == (
        "err.entity_suspended"
    )
    expired = assess("x", _entity("active", past), "0499370899", today)
    assert expired.refusal == "err.representation_expired"
    assert expired.refusal_values == {"date": "2022-01-01"}
    assert assess("x", _entity("active", future), "0499370899", today).refusal == (
        "err.representation_not_started"
    )


def test_entities_listed_when_the_registry_can_list_them(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """The embedded deeds registry answers the reverse lookup, so the page offers choices."""
    entity, person = _pick(synthetic_registry_path, "active", True)
    interaction, page = _entity_page(browser, hoviyat_app, person, lang="en")
    assert "Entities you represent" in page.text
    assert entity["name"] in page.text
    listed = [f for f in Forms(page.text).forms if f["action"] == "/login/entity"]
    choice = next(
        f["fields"] for f in listed
        if f["fields"].get("entity_national_id") == entity["national_id"]
    )  # fmt: skip
    chosen = browser.post("/login/entity", data=choice)
    assert chosen.status_code == 303
    assert interaction_row(hoviyat_app, interaction).entity_national_id == entity["national_id"]

    # A representation that ended is listed with its reason, and without a button.
    ended, former = _pick(synthetic_registry_path, "active", False)
    browser.cookies.clear()
    _interaction, page = _entity_page(browser, hoviyat_app, former, lang="en")
    assert ended["name"] in page.text and "ended on" in page.text
    buttons = [
        f for f in Forms(page.text).forms
        if f["fields"].get("entity_national_id") == ended["national_id"]
    ]  # fmt: skip
    assert buttons == []
