"""Session reuse rules (prompt=login, max_age, login_hint), my permissions, logout, headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import (
    REDIRECT_URI,
    follow,
    living_with_mobile,
    make_client,
    new_interaction,
    submit,
)
from sqlalchemy import update
from sqlmodel import select

from idp.login.consent import has_consent
from idp.login.sessions import cookie_name, current_login
from idp.settings import Settings
from idp.storage.login import LoginSession
from idp.storage.models import AuditEntry


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


def _login_and_consent(browser: TestClient, app: FastAPI, person: dict[str, Any]) -> None:
    interaction = new_interaction(app, make_client(app))
    page = browser.get(f"/login?interaction={interaction}")
    consent = follow(browser, submit(browser, page, "/login/identify",
                                     national_code=person["national_code"],
                                     birth_date=person["birth_date"]))  # fmt: skip
    assert follow(browser, submit(browser, consent, "/login/consent", decision="allow"))


def _shows_login_form(browser: TestClient, interaction: str) -> bool:
    page = browser.get(f"/login?interaction={interaction}")
    return page.status_code == 200 and "/login/identify" in page.text


def test_prompt_login_max_age_and_login_hint_force_a_new_login(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    _login_and_consent(browser, hoviyat_app, person)
    client_id = make_client(hoviyat_app)
    assert not _shows_login_form(browser, new_interaction(hoviyat_app, client_id))
    assert _shows_login_form(browser, new_interaction(hoviyat_app, client_id, prompt=["login"]))
    assert not _shows_login_form(browser, new_interaction(hoviyat_app, client_id, max_age=600))
    with hoviyat_app.state.hoviyat.db.session() as session:
        session.execute(
            update(LoginSession).values(auth_time=datetime.now(UTC) - timedelta(minutes=20))
        )
    assert _shows_login_form(browser, new_interaction(hoviyat_app, client_id, max_age=600))
    other = living_with_mobile(synthetic_registry_path, 1)
    hinted = new_interaction(hoviyat_app, client_id, login_hint=other["national_code"])
    assert _shows_login_form(browser, hinted)
    assert other["national_code"] in browser.get(f"/login?interaction={hinted}").text


def test_prompt_login_is_satisfied_by_logging_in_again(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    _login_and_consent(browser, hoviyat_app, person)
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), prompt=["login"])
    page = browser.get(f"/login?interaction={interaction}")
    again = submit(browser, page, "/login/identify", national_code=person["national_code"],
                   birth_date=person["birth_date"])  # fmt: skip
    # Nothing else to ask: the identify step answers the client itself.
    assert again.headers["location"].startswith(REDIRECT_URI + "?code=")
    with hoviyat_app.state.hoviyat.db.session() as session:
        rows = session.exec(select(LoginSession)).all()
        assert len(rows) == 2
        assert sum(1 for row in rows if row.ended_at is None) == 1  # the old one ended


def test_my_permissions_revoke_and_logout(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    assert browser.get("/login/consents").status_code == 401
    _login_and_consent(browser, hoviyat_app, person)
    page = browser.get("/login/consents?lang=en")
    assert page.status_code == 200
    assert "date of birth" in page.text and "درگاه مالیاتی" in page.text
    revoked = submit(browser, page, "/login/consents/revoke")
    assert revoked.status_code == 303
    assert "You have given no permissions" in follow(browser, revoked).text
    with hoviyat_app.state.hoviyat.db.session() as session:
        assert not has_consent(session, person["national_code"], "tax-web", ["given_name"])
        assert session.exec(
            select(AuditEntry).where(AuditEntry.event_type == "consent",
                                     AuditEntry.outcome == "revoked")
        ).first()  # fmt: skip
    page = browser.get("/login/consents?lang=en")
    logged_out = submit(browser, page, "/login/logout")
    assert logged_out.status_code == 200
    assert "logged out" in logged_out.text
    assert browser.get("/login/consents").status_code == 401
    with hoviyat_app.state.hoviyat.db.session() as session:
        assert session.exec(select(AuditEntry).where(AuditEntry.event_type == "logout")).first()


def test_current_login_reads_the_cookie(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    _login_and_consent(browser, hoviyat_app, person)
    settings = hoviyat_app.state.hoviyat.settings
    token = browser.cookies.get(cookie_name(settings))
    assert token

    def request_with(cookie: str | None) -> Any:
        from starlette.requests import Request

        headers = [(b"cookie", f"{cookie_name(settings)}={cookie}".encode())] if cookie else []
        return Request({"type": "http", "headers": headers, "app": hoviyat_app})

    with hoviyat_app.state.hoviyat.db.session() as session:
        state = current_login(request_with(token), session)
        assert state is not None
        assert state.national_code == person["national_code"]
        assert state.acr == "http://eidas.europa.eu/LoA/low" and state.amr == ["kba"]
        assert current_login(request_with("forged"), session) is None
        assert current_login(request_with(None), session) is None


def test_cookie_is_host_prefixed_and_secure_for_an_https_issuer(tmp_path: Path) -> None:
    assert cookie_name(Settings(issuer="https://id.example.ir", data_dir=tmp_path)) == (
        "__Host-hoviyat_session"
    )
    assert cookie_name(Settings(issuer="http://127.0.0.1:8000", data_dir=tmp_path)) == (
        "hoviyat_session"
    )


def test_security_headers_on_pages_and_docs(hoviyat_app: FastAPI) -> None:
    with TestClient(hoviyat_app, base_url="http://127.0.0.1") as client:
        page = client.get("/login?interaction=unknown")
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "script-src" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        docs = client.get("/docs")
        assert "content-security-policy" not in docs.headers
        assert docs.headers["x-content-type-options"] == "nosniff"


def test_https_issuer_sets_host_prefixed_secure_cookies(
    hoviyat_settings: Settings,
    init_report: dict[str, Any],
    synthetic_registry_path: Path,
) -> None:
    from idp.app import create_app

    settings = hoviyat_settings.model_copy(update={"issuer": "https://id.example.ir"})
    app = create_app(settings)
    try:
        with TestClient(app, base_url="https://id.example.ir") as browser:
            browser.follow_redirects = False
            person = living_with_mobile(synthetic_registry_path)
            interaction = new_interaction(app, make_client(app))
            page = browser.get(f"/login?interaction={interaction}")
            csrf_cookie = page.headers["set-cookie"]
            assert csrf_cookie.startswith("__Host-hoviyat_csrf=")
            answer = submit(browser, page, "/login/identify",
                            national_code=person["national_code"],
                            birth_date=person["birth_date"])  # fmt: skip
            cookie = answer.headers["set-cookie"]
            assert cookie.startswith("__Host-hoviyat_session=")
            attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
            assert {"secure", "httponly", "path", "samesite"} <= attributes
            assert "domain" not in attributes
            assert "Path=/" in cookie and "samesite=lax" in cookie.lower()
    finally:
        app.state.hoviyat.close()
