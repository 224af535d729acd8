"""Driving the login pages as a browser would: real interactions, real forms, real registry."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from idp.app import create_app
from idp.clients import create_client
from idp.context import build_hoviyat
from idp.login.config import LoginSettings
from idp.settings import Settings
from idp.storage.login import OutboxMessage
from idp.storage.models import Client
from idp.storage.oidc import OidcInteraction
from idp.tracking import new_tracking_code
from verifiers.registry.synthetic import export

REDIRECT_URI = "https://tax.example.ir/callback"
LOW = "http://eidas.europa.eu/LoA/low"
SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"


class Forms(HTMLParser):
    """Every form of a page: its action and its named inputs/buttons, plus the <html> attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.html_attrs: dict[str, str] = {}
        self.labels: set[str] = set()
        self.inputs: list[dict[str, str]] = []
        self.errors: dict[str, str] = {}
        self._error_for: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.html_attrs = values
        elif tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": {}})
        elif tag == "label" and "for" in values:
            self.labels.add(values["for"])
        elif tag in ("input", "button") and self.forms:
            if tag == "input":
                self.inputs.append(values)
            if "name" in values and (tag == "input" or "value" in values):
                self.forms[-1]["fields"].setdefault(values["name"], values.get("value", ""))
        elif tag == "p" and values.get("class") == "error":
            self._error_for = values.get("id", "").removesuffix("-error")

    def handle_data(self, data: str) -> None:
        if self._error_for is not None:
            self.errors[self._error_for] = self.errors.get(self._error_for, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._error_for = None

    def form(self, action: str) -> dict[str, str]:
        for form in self.forms:
            if form["action"] == action:
                return dict(form["fields"])
        raise AssertionError(f"no form posting to {action}; forms: {self.forms}")


def submit(client: TestClient, page: Response, action: str, **fields: str) -> Response:
    """POST the page's form for ``action`` with its hidden fields and ``fields`` filled in."""
    data = Forms(page.text).form(action)
    data.update(fields)
    return client.post(action, data=data, follow_redirects=False)


def follow(client: TestClient, response: Response) -> Response:
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"], follow_redirects=False)


def make_client(
    app: FastAPI, client_id: str = "tax-web", service_code: str = "demo-tax-portal"
) -> str:
    hoviyat = app.state.hoviyat
    with hoviyat.db.session() as session:
        if session.get(Client, client_id) is None:
            create_client(
                session,
                hoviyat.secrets.client_secret_key,
                client_id=client_id,
                name="درگاه مالیاتی" if client_id == "tax-web" else client_id,
                service_code=service_code,
                redirect_uris=[REDIRECT_URI],
                grant_types=["authorization_code"],
            )
    return client_id


def new_interaction(
    app: FastAPI,
    client_id: str,
    *,
    scope: list[str] | None = None,
    acr_values: list[str] | None = None,
    prompt: list[str] | None = None,
    max_age: int | None = None,
    ui_locales: list[str] | None = None,
    login_hint: str | None = None,
    requested_claims: list[str] | None = None,
    expires_in: int = 600,
) -> str:
    """What /authorize stores before sending the browser to /login (the interaction contract)."""
    interaction_id = secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    params = {
        "redirect_uri": REDIRECT_URI,
        "scope": scope or ["openid", "profile"],
        "state": "s",
        "nonce": "n",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
        "acr_values": acr_values or [],
        "prompt": prompt or [],
        "max_age": max_age,
        "login_hint": login_hint,
        "ui_locales": ui_locales or [],
        "claims": None,
    }
    with app.state.hoviyat.db.session() as session:
        session.add(
            OidcInteraction(
                id=interaction_id,
                client_id=client_id,
                params=params,
                requested_claims=requested_claims
                if requested_claims is not None
                else ["given_name", "family_name", "birthdate"],
                tracking_code=new_tracking_code(),
                created_at=now,
                expires_at=now + timedelta(seconds=expires_in),
            )
        )
    return interaction_id


def interaction_row(app: FastAPI, interaction_id: str) -> OidcInteraction:
    with app.state.hoviyat.db.session() as session:
        row = session.get(OidcInteraction, interaction_id)
        assert row is not None
        return row


@contextmanager
def app_with_login(settings: Settings, login: LoginSettings) -> Iterator[FastAPI]:
    """An app of ``settings`` whose login steps follow ``login``, not the environment."""
    app = create_app(settings, build_hoviyat(settings, login_settings=login))
    try:
        yield app
    finally:
        app.state.hoviyat.close()


def last_text(app: FastAPI) -> OutboxMessage:
    from idp.login.sms import latest_message

    message = latest_message(app.state.hoviyat.db)
    assert message is not None
    return message


def code_in(text: str) -> str:
    digits = [word for word in text.replace("\n", " ").split() if word.isdigit() and len(word) == 6]
    assert digits, text
    return digits[0]


def persons(registry: Path, count: int = 400) -> list[dict[str, Any]]:
    return list(export(registry, "persons", count))


def living_with_mobile(registry: Path, skip: int = 0) -> dict[str, Any]:
    found = [p for p in persons(registry) if p["alive"] and p["mobiles"]]
    return found[skip]


def deceased(registry: Path) -> dict[str, Any]:
    return next(p for p in persons(registry, 2000) if not p["alive"])


def representations(registry: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(entity, representative) pairs of the registry."""
    pairs = []
    for entity in export(registry, "entities", 300):
        for representative in entity["representatives"]:
            pairs.append((entity, representative))
    return pairs


@lru_cache(maxsize=4)
def _people_by_code(registry: Path) -> dict[str, dict[str, Any]]:
    return {p["national_code"]: p for p in persons(registry, 2000)}


def person_by_code(registry: Path, national_code: str) -> dict[str, Any]:
    return _people_by_code(registry)[national_code]


def in_force(representative: dict[str, Any], today: date | None = None) -> bool:
    on = (today or date.today()).isoformat()
    until = representative["valid_until"]
    return representative["valid_from"] <= on and (until is None or until >= on)
