"""Signing in to the console: the real OIDC code flow against Hoviyat itself."""

from __future__ import annotations

import pytest
from console_support import age_sessions, audit_events, sign_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import query_of

from idp.console.framework import safe_return_path
from policies import assurance
from verifiers.registry.base import Person


def test_a_person_signs_in_through_the_providers_own_login(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    person = people[0]
    answer = sign_in(hoviyat_app, browser, person.national_code)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console"
    home = browser.get("/console")
    assert home.status_code == 200, home.text
    assert person.first_name in home.text
    assert person.national_code not in home.text
    assert 'dir="rtl"' in home.text
    english = browser.get("/console?lang=en")
    assert 'dir="ltr"' in english.text and "Sign out" in english.text


def test_unsigned_visitor_is_sent_to_sign_in_with_the_page_to_return_to(
    browser: TestClient,
) -> None:
    answer = browser.get("/console?lang=en")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/login?next=%2Fconsole%3Flang%3Den&lang=en"


def test_sign_in_asks_for_substantial_or_high_and_pkce(browser: TestClient) -> None:
    answer = browser.get("/console/login")
    location = answer.headers["location"]
    assert "acr_values=http%3A%2F%2Feidas.europa.eu%2FLoA%2Fsubstantial+http" in location
    assert "code_challenge_method=S256" in location
    assert "client_id=hoviyat-console" in location


def test_a_login_at_level_low_does_not_open_the_console(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    answer = sign_in(hoviyat_app, browser, people[0].national_code, acr=assurance.LOW)
    # The provider itself refuses to issue a code below the requested level,
    # or the console refuses the ID token's acr; either way no session.
    assert answer.status_code == 400, answer.text
    assert "hoviyat_console=" not in answer.headers.get("set-cookie", "")
    assert browser.get("/console").status_code == 303


def test_session_cookie_is_httponly_strict_host_wide(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    answer = sign_in(hoviyat_app, browser, people[0].national_code)
    cookies = [c for c in answer.headers.get_list("set-cookie") if c.startswith("hoviyat_console=")]
    assert len(cookies) == 1, answer.headers.get_list("set-cookie")
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert not any(part.startswith("domain=") for part in attributes)
    # Plain-http test issuer: no Secure (browsers drop it there); https gets __Host- + Secure.
    assert "secure" not in attributes


def test_idle_session_is_sent_back_to_sign_in(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    sign_in(hoviyat_app, browser, people[0].national_code)
    assert browser.get("/console").status_code == 200
    age_sessions(hoviyat_app, minutes=14)
    assert browser.get("/console").status_code == 200, "used within the idle time: still open"
    age_sessions(hoviyat_app, minutes=14)
    assert browser.get("/console").status_code == 200, "each request restarts the idle clock"
    age_sessions(hoviyat_app, minutes=16)
    answer = browser.get("/console")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=")


def test_a_replayed_callback_opens_nothing(
    hoviyat_app: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    answer = sign_in(hoviyat_app, browser, people[0].national_code)
    assert answer.status_code == 303
    replay = browser.get(str(answer.request.url))
    assert replay.status_code == 400
    stolen = other_browser.get(str(answer.request.url))
    assert stolen.status_code == 400
    assert other_browser.get("/console").status_code == 303


def test_console_pages_carry_a_strict_content_security_policy_and_no_store(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    sign_in(hoviyat_app, browser, people[0].national_code)
    for path in ("/console", "/console/signed-out", "/console/roles"):
        answer = browser.get(path)
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "form-action 'self'" in policy
        assert "unsafe-inline" not in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["cache-control"] == "no-store"
        assert "<script" not in answer.text


@pytest.mark.parametrize(
    "asked",
    ["https://evil.example/", "//evil.example/console", "/console\\@evil.example", "/login", None],
)
def test_after_sign_in_the_browser_goes_only_to_a_console_page(asked: str | None) -> None:
    assert safe_return_path(asked) == "/console"


def test_a_console_page_is_where_the_browser_returns(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    answer = sign_in(hoviyat_app, browser, people[0].national_code, start="/console/roles?lang=en")
    assert answer.headers["location"] == "/console/roles?lang=en"


def test_a_callback_with_another_state_is_refused_and_audited(
    hoviyat_app: FastAPI, browser: TestClient
) -> None:
    browser.get("/console/login")  # a sign-in under way in this browser
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    answer = browser.get(f"/console/callback?code=x&state=forged&iss={issuer}")
    assert answer.status_code == 400
    (entry,) = audit_events(hoviyat_app, "console_sign_in")
    assert entry.outcome == "refused" and "state" in entry.detail["reason"]
    assert browser.get("/console").status_code == 303


def test_a_callback_naming_another_issuer_is_refused(
    hoviyat_app: FastAPI, browser: TestClient
) -> None:
    started = browser.get("/console/login")
    state = query_of(started.headers["location"])["state"]
    answer = browser.get(f"/console/callback?code=x&state={state}&iss=https://other.example")
    assert answer.status_code == 400
    (entry,) = audit_events(hoviyat_app, "console_sign_in")
    assert "issuer" in entry.detail["reason"]
