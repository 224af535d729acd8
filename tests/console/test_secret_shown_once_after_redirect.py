"""A new client secret is shown once, by a GET after the POST (Post/Redirect/Get).

From the attacker's (and the careless reloader's) side, over HTTP through the
real app: reloading the page after a rotation does not rotate again; a second
GET does not show the secret; another console session cannot read it; the
secret is in no URL, no cookie, and not in clear in the database.
"""

from __future__ import annotations

import re

import httpx
from console_support import audit_events, csrf_token, grant, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from idp.console.roles import Role
from idp.storage.console_shown_once import ConsoleShownOnce
from verifiers.registry.base import Person

CLIENT = "demo-bank"


def _secret(page: str) -> str | None:
    found = re.search(r'<code id="client_secret">([^<]+)</code>', page)
    return found.group(1) if found else None


def _token_status(browser: TestClient, secret: str) -> int:
    answer = browser.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(CLIENT, secret)
    )
    return answer.status_code


def _rotate(app: FastAPI, browser: TestClient) -> httpx.Response:
    page = browser.get(f"/console/clients/{CLIENT}")
    answer = browser.post(
        f"/console/clients/{CLIENT}/secret", data={"csrf_token": csrf_token(page.text)}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert "client_secret" not in answer.text
    return answer


def _rows(app: FastAPI) -> list[ConsoleShownOnce]:
    with app.state.hoviyat.db.read() as session:
        return list(session.exec(select(ConsoleShownOnce)).all())


def test_attack_reloading_after_rotation_does_not_rotate_again_nor_show_the_secret_again(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    location = _rotate(hoviyat_app, browser).headers["location"]
    shown = browser.get(location)
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    secret = _secret(shown.text)
    assert secret is not None
    # The secret travels in neither the URL nor a cookie.
    assert secret not in location
    assert all(secret not in value for value in browser.cookies.values())
    # The reload: the same GET again. Nothing rotates, nothing is shown.
    reloaded = browser.get(location)
    assert reloaded.status_code == 410
    assert reloaded.headers["cache-control"] == "no-store"
    assert _secret(reloaded.text) is None and secret not in reloaded.text
    assert _token_status(browser, secret) == 200  # still the one secret made
    rotations = [
        e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "rotate_secret"
    ]
    assert len(rotations) == 1
    # Spent: the sealed secret is gone from the row.
    assert [row.sealed_secret for row in _rows(hoviyat_app)] == [None]


def test_attack_another_console_session_cannot_read_the_secret(
    hoviyat_app: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
) -> None:
    for person in people[:2]:
        grant(hoviyat_app, person.national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    signed_in(hoviyat_app, other_browser, people[1].national_code)
    location = _rotate(hoviyat_app, browser).headers["location"]
    stolen = other_browser.get(location)
    assert stolen.status_code == 404
    assert _secret(stolen.text) is None
    # The other session's attempt spent nothing: the owner still sees the secret once.
    owner = browser.get(location)
    secret = _secret(owner.text)
    assert owner.status_code == 200 and secret is not None
    assert _token_status(browser, secret) == 200
    # Signed out: no session at all reads it either.
    browser.cookies.clear()
    assert browser.get(location).status_code == 303  # to sign-in


def test_the_waiting_secret_is_sealed_not_kept_in_clear(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    location = _rotate(hoviyat_app, browser).headers["location"]
    (row,) = _rows(hoviyat_app)
    assert row.sealed_secret is not None
    secret = _secret(browser.get(location).text)
    assert secret is not None and secret.encode() not in row.sealed_secret


def test_a_registered_clients_secret_is_shown_once_after_a_redirect(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    form = browser.get("/console/new-client")
    service = hoviyat_app.state.hoviyat.client_directory.lookup(
        hoviyat_app.state.hoviyat.db, CLIENT
    )
    answer = browser.post(
        "/console/new-client",
        data={
            "csrf_token": csrf_token(form.text),
            "name": "Back office",
            "service_code": service.service_code,
            "grant_types": "client_credentials",
            "auth_method": "client_secret_basic",
        },
    )
    assert answer.status_code == 303, answer.text
    first = browser.get(answer.headers["location"])
    assert first.status_code == 200 and _secret(first.text) is not None
    second = browser.get(answer.headers["location"])
    assert second.status_code == 410 and _secret(second.text) is None
    created = [e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "create"]
    assert len(created) == 1
