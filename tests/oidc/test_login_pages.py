"""Login at level low, consent and cancel, in both languages, over the app's ASGI transport."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import (
    REDIRECT_URI,
    Forms,
    deceased,
    follow,
    interaction_row,
    living_with_mobile,
    make_client,
    new_interaction,
    submit,
)
from sqlmodel import col, select

from idp.storage.login import LoginSession
from idp.storage.models import AuditEntry

COMPLETE = "/authorize/complete?interaction="


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


def _events(app: FastAPI, tracking_code: str) -> list[tuple[str, str, str]]:
    with app.state.hoviyat.db.session() as session:
        rows = session.exec(
            select(AuditEntry)
            .where(AuditEntry.tracking_code == tracking_code)
            .order_by(col(AuditEntry.id))
        ).all()
        return [(row.event_type, row.operation or "", row.outcome) for row in rows]


def test_login_low_then_consent_then_back_to_authorize(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    client_id = make_client(hoviyat_app)
    interaction = new_interaction(hoviyat_app, client_id)
    person = living_with_mobile(synthetic_registry_path)

    page = browser.get(f"/login?interaction={interaction}")
    assert page.status_code == 200
    forms = Forms(page.text)
    assert forms.html_attrs == {"lang": "fa", "dir": "rtl"}
    assert "درگاه مالیاتی" in page.text
    assert page.headers["cache-control"] == "no-store"
    # Jalali date in Persian digits, national code in Persian digits: both accepted.
    persian = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    answer = submit(
        browser,
        page,
        "/login/identify",
        national_code=person["national_code"].translate(persian),
        birth_date=person["birth_date_jalali"].translate(persian),
    )
    assert answer.status_code == 303
    assert "hoviyat_session" in answer.headers["set-cookie"]
    assert "HttpOnly" in answer.headers["set-cookie"]
    assert "samesite=lax" in answer.headers["set-cookie"].lower()
    consent = follow(browser, answer)
    assert consent.status_code == 200
    assert "تاریخ تولد" in consent.text  # the facts, in plain Persian
    assert "Direct Taxation Act" in consent.text  # the service's legal basis
    done = submit(browser, consent, "/login/consent", decision="allow")
    assert done.status_code == 303
    final = follow(browser, done)
    assert final.status_code == 303
    # The last step answers the client itself (no hop through /authorize/complete).
    assert final.headers["location"].startswith(REDIRECT_URI + "?code=")

    row = interaction_row(hoviyat_app, interaction)
    assert row.completed_at is not None and row.error is None
    assert row.consent_granted is True
    assert row.acr == "http://eidas.europa.eu/LoA/low"
    assert row.amr == ["kba"]
    assert row.auth_time is not None
    with hoviyat_app.state.hoviyat.db.session() as session:
        stored = session.get(LoginSession, row.session_id)
        assert stored is not None and stored.national_code == person["national_code"]
    events = _events(hoviyat_app, row.tracking_code)
    assert ("login", "identify", "success") in events
    assert ("consent", "consent", "granted") in events

    # A second request of the same app for the same facts: no login, no consent question.
    again = new_interaction(hoviyat_app, client_id)
    straight = browser.get(f"/login?interaction={again}")
    assert straight.status_code == 303
    assert straight.headers["location"].startswith(REDIRECT_URI + "?code=")
    # Answered once: the interaction is consumed with the code it produced.
    assert browser.get(COMPLETE + again).status_code == 400
    assert browser.get(f"/login?interaction={again}").status_code == 400
    assert interaction_row(hoviyat_app, again).consent_granted is True

    # prompt=consent asks again even though it is remembered.
    asked = new_interaction(hoviyat_app, client_id, prompt=["consent"])
    assert browser.get(f"/login?interaction={asked}").status_code == 200

    # More facts than were granted: asked again.
    more = new_interaction(hoviyat_app, client_id, requested_claims=["given_name", "national_code"])
    page = browser.get(f"/login?interaction={more}")
    assert page.status_code == 200 and "/login/consent" in page.text


def test_english_page_and_language_switch(hoviyat_app: FastAPI, browser: TestClient) -> None:
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), ui_locales=["en-US"])
    page = browser.get(f"/login?interaction={interaction}")
    forms = Forms(page.text)
    assert forms.html_attrs == {"lang": "en", "dir": "ltr"}
    assert "National code" in page.text
    for field in forms.inputs:
        if field.get("type") != "hidden":
            assert field["id"] in forms.labels
    assert f"/login?interaction={interaction}&amp;lang=fa" in page.text
    switched = browser.get(f"/login?interaction={interaction}&lang=fa")
    assert Forms(switched.text).html_attrs["dir"] == "rtl"
    assert "کد ملی" in switched.text


def test_wrong_birth_date_error_next_to_field_in_each_language(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app))
    person = living_with_mobile(synthetic_registry_path)
    for lang, words in (("fa", "مطابقت ندارد"), ("en", "do not match")):
        page = browser.get(f"/login?interaction={interaction}&lang={lang}")
        answer = submit(
            browser, page, "/login/identify",
            national_code=person["national_code"], birth_date="1300/01/01",
        )  # fmt: skip
        assert answer.status_code == 400
        errors = Forms(answer.text).errors
        assert words in errors["birth_date"]
        assert 'aria-invalid="true"' in answer.text
        assert person["national_code"] in answer.text  # the typed value is kept
    # Unknown national code (valid checksum): the very same message, nothing told apart.
    page = browser.get(f"/login?interaction={interaction}&lang=en")
    unknown = submit(browser, page, "/login/identify", national_code="0499370899",
                     birth_date=person["birth_date"])  # fmt: skip
    assert Forms(unknown.text).errors["birth_date"] == Forms(answer.text).errors["birth_date"]
    # A mistyped national code is named as such, next to its own field.
    page = browser.get(f"/login?interaction={interaction}&lang=en")
    typo = submit(browser, page, "/login/identify", national_code="0499370898",
                  birth_date="1991-08-03")  # fmt: skip
    assert typo.status_code == 400
    assert "check digit" in Forms(typo.text).errors["national_code"]
    assert "birth_date" not in Forms(typo.text).errors
    assert interaction_row(hoviyat_app, interaction).completed_at is None
    with hoviyat_app.state.hoviyat.db.session() as session:
        assert session.exec(select(LoginSession)).first() is None


def test_deceased_person_cannot_log_in_and_is_told_why(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app))
    person = deceased(synthetic_registry_path)
    page = browser.get(f"/login?interaction={interaction}")
    answer = submit(browser, page, "/login/identify", national_code=person["national_code"],
                    birth_date=person["birth_date"])  # fmt: skip
    assert answer.status_code == 403
    assert "فوت" in Forms(answer.text).errors["national_code"]
    assert (
        "set-cookie" not in answer.headers or "hoviyat_session" not in answer.headers["set-cookie"]
    )
    events = _events(hoviyat_app, interaction_row(hoviyat_app, interaction).tracking_code)
    assert events == [("login", "identify", "refused_deceased")]


def test_post_without_valid_csrf_token_is_refused_and_changes_nothing(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app))
    person = living_with_mobile(synthetic_registry_path)
    page = browser.get(f"/login?interaction={interaction}")
    fields = Forms(page.text).form("/login/identify")
    fields.update(national_code=person["national_code"], birth_date=person["birth_date"])
    forged = dict(fields, csrf_token="0" * 64)
    answer = browser.post("/login/identify", data=forged)
    assert answer.status_code == 403
    assert "این فرم منقضی شده" in answer.text
    # The right token but without the browser's cookie (a cross-site request elsewhere).
    stranger = TestClient(hoviyat_app, base_url=str(browser.base_url))
    assert stranger.post("/login/identify", data=fields, follow_redirects=False).status_code == 403
    cancel = dict(Forms(page.text).form("/login/cancel"), csrf_token="")
    assert browser.post("/login/cancel", data=cancel).status_code == 403
    assert interaction_row(hoviyat_app, interaction).completed_at is None
    with hoviyat_app.state.hoviyat.db.session() as session:
        assert session.exec(select(LoginSession)).first() is None
    # And with the token it goes through.
    assert browser.post("/login/identify", data=fields).status_code == 303


def test_cancel_and_deny_answer_access_denied(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    client_id = make_client(hoviyat_app)
    first = new_interaction(hoviyat_app, client_id)
    page = browser.get(f"/login?interaction={first}")
    answer = submit(browser, page, "/login/cancel")
    assert answer.headers["location"] == COMPLETE + first
    assert interaction_row(hoviyat_app, first).error == "access_denied"
    # The interaction is over: its page says so instead of starting again.
    assert browser.get(f"/login?interaction={first}").status_code == 400

    person = living_with_mobile(synthetic_registry_path)
    second = new_interaction(hoviyat_app, client_id)
    page = browser.get(f"/login?interaction={second}")
    consent = follow(browser, submit(browser, page, "/login/identify",
                                     national_code=person["national_code"],
                                     birth_date=person["birth_date"]))  # fmt: skip
    denied = submit(browser, consent, "/login/consent", decision="deny")
    assert denied.headers["location"] == COMPLETE + second
    row = interaction_row(hoviyat_app, second)
    assert row.error == "access_denied" and row.consent_granted is False
    assert ("consent", "consent", "denied") in _events(hoviyat_app, row.tracking_code)


def test_unknown_or_expired_interaction(hoviyat_app: FastAPI, browser: TestClient) -> None:
    assert browser.get("/login?interaction=nope").status_code == 400
    expired = new_interaction(hoviyat_app, make_client(hoviyat_app), expires_in=-1)
    page = browser.get(f"/login?interaction={expired}&lang=en")
    assert page.status_code == 400
    assert "expired" in page.text
