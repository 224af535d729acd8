"""Behind https the console's cookies are ``__Host-`` and Secure (production's shape)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from console_support import sign_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.app import create_app
from idp.cli.setup import initialise
from idp.settings import Settings
from verifiers.registry.base import Person

ISSUER = "https://console.hoviyat.test"


@pytest.fixture
def https_app(hoviyat_settings: Settings, init_report: dict[str, Any]) -> Iterator[FastAPI]:
    settings = hoviyat_settings.model_copy(update={"issuer": ISSUER})
    initialise(settings)  # what `hoviyat init` does when the issuer changes: a new redirect URI
    app = create_app(settings)
    yield app
    app.state.hoviyat.close()


def attributes(header: str) -> list[str]:
    return [part.strip().lower() for part in header.split(";")]


def test_session_and_sign_in_cookies_are_host_prefixed_and_secure(
    https_app: FastAPI, people: list[Person]
) -> None:
    with TestClient(https_app, base_url=ISSUER, follow_redirects=False) as browser:
        started = browser.get("/console/login")
        (pending,) = started.headers.get_list("set-cookie")
        assert pending.startswith("__Host-hoviyat_console_signin=")
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= set(attributes(pending))
        answer = sign_in(https_app, browser, people[0].national_code)
        assert answer.status_code == 303, answer.text
        (session,) = [
            c
            for c in answer.headers.get_list("set-cookie")
            if c.startswith("__Host-hoviyat_console=")
        ]
        parts = attributes(session)
        assert {"secure", "httponly", "path=/", "samesite=strict"} <= set(parts)
        assert not any(part.startswith("domain=") for part in parts)
        home = browser.get("/console")
        assert home.status_code == 200
        assert "max-age=31536000" in home.headers["strict-transport-security"]
        # The plain-http name means nothing here: only the __Host- cookie opens a session.
        token = browser.cookies.get("__Host-hoviyat_console")
        browser.cookies.clear()
        browser.cookies.set("hoviyat_console", token or "")
        assert browser.get("/console").status_code == 303
