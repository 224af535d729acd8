"""Clients in the console: administrators only, each refusal audited; disabling takes effect."""

from __future__ import annotations

import pytest
from console_support import audit_events, csrf_token, grant, person_key, refusals, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.console.roles import Role
from verifiers.registry.base import Person

ROUTES = [
    ("GET", "/console/clients"),
    ("GET", "/console/clients/demo-bank"),
    ("POST", "/console/clients/demo-bank/disable"),
]


def token_status(browser: TestClient, client_id: str, secret: str) -> int:
    answer = browser.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return answer.status_code


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_person_without_the_admin_role_is_refused_and_audited(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], method: str, path: str
) -> None:
    grant(hoviyat_app, people[2].national_code, Role.AUDITOR, Role.CA_OPERATOR)
    signed_in(hoviyat_app, browser, people[2].national_code)
    token = csrf_token(browser.get("/console").text)
    answer = browser.request(method, path, data={"csrf_token": token} if method == "POST" else None)
    assert answer.status_code == 403
    (entry,) = refusals(hoviyat_app, "missing_role")
    assert entry.operation == f"{method} {path}"
    assert entry.actor_id == person_key(hoviyat_app, people[2].national_code)


def test_an_administrator_sees_each_client_and_its_service_policy(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    listing = browser.get("/console/clients")
    assert listing.status_code == 200
    assert "/console/clients/demo-bank" in listing.text
    assert "/console/clients/hoviyat-console" in listing.text
    one = browser.get("/console/clients/demo-portal?lang=en")
    assert one.status_code == 200
    assert "Tax services portal (demo)" in one.text
    assert "oidc.login" in one.text and "national_code" in one.text
    assert "client_secret" not in one.text.lower().replace("client_secret_basic", "")
    assert browser.get("/console/clients/no-such-client").status_code == 404


def test_disabling_a_client_stops_its_tokens_and_is_audited(
    hoviyat_app: FastAPI,
    browser: TestClient,
    people: list[Person],
    demo_clients: dict[str, str],
) -> None:
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 200
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    page = browser.get("/console/clients/demo-bank")
    answer = browser.post(
        "/console/clients/demo-bank/disable", data={"csrf_token": csrf_token(page.text)}
    )
    assert answer.status_code == 303, answer.text
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 401
    (changed,) = [
        e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "disable"
    ]
    assert changed.actor_id == person_key(hoviyat_app, people[0].national_code)
    assert changed.detail["client_id"] == "demo-bank"


def test_disabling_without_csrf_token_changes_nothing(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], demo_clients: dict[str, str]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    answer = browser.post("/console/clients/demo-bank/disable", data={})
    assert answer.status_code == 403
    assert [e.detail["reason"] for e in refusals(hoviyat_app)] == ["csrf_missing"]
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 200


def test_the_consoles_own_client_cannot_be_disabled_from_the_console(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    token = csrf_token(browser.get("/console").text)
    answer = browser.post("/console/clients/hoviyat-console/disable", data={"csrf_token": token})
    assert answer.status_code == 400
    # Still usable: a second browser signs in.
    browser.cookies.clear()
    signed_in(hoviyat_app, browser, people[0].national_code)
    assert browser.get("/console/clients").status_code == 200
