"""The holder's own page: a citizen logged in at Hoviyat issues, sees the code, revokes."""

from __future__ import annotations

import re

import pytest
from attest_helpers import root_of

from idp.attestations.verifier import AttestationVerifier
from idp.login.sessions import choose_entity, cookie_name, start_session
from idp.tracking import new_tracking_code
from policies.assurance import LOW, SUBSTANTIAL


def log_in(app, client, national_code: str, acr: str = SUBSTANTIAL, entity: str | None = None):
    """A login session as the login pages start it, its cookie given to the browser."""
    hoviyat = app.state.hoviyat
    with hoviyat.db.session() as db_session:
        row, token = start_session(
            db_session,
            national_code=national_code,
            acr=acr,
            amr=["kba", "sms"],
            tracking_code=new_tracking_code(),
            ttl_seconds=600,
        )
        if entity:
            choose_entity(db_session, row.id, entity)
    client.cookies.set(cookie_name(hoviyat.settings), token)


def csrf_of(html: str) -> str:
    return _group(r'name="csrf_token" value="([^"]+)"', html)


def test_not_logged_in_is_told_to_log_in(ca_ready, app_client):
    page = app_client.get("/attestations")
    assert page.status_code == 401 and 'data-message="not_logged_in"' in page.text


def test_low_level_login_cannot_issue(ca_ready, app_client, representative):
    person, _ = representative
    log_in(ca_ready, app_client, person.national_code, acr=LOW)
    page = app_client.get("/attestations", params={"lang": "en"})
    assert page.status_code == 403 and "one-time code" in page.text


def test_citizen_issues_derived_facts_sees_code_and_revokes(ca_ready, app_client, representative):
    person, entity = representative
    log_in(ca_ready, app_client, person.national_code, entity=entity.national_id)
    form = app_client.get("/attestations")
    assert form.status_code == 200 and 'dir="rtl"' in form.text
    assert entity.national_id in form.text  # the entity chosen at login is offered
    issued = app_client.post(
        "/attestations/new",
        data={
            "csrf_token": csrf_of(form.text),
            "lang": "fa",
            "purpose": "ثبت‌نام دانشگاه",
            "facts": ["alive"],
            "age_over": "۱۸",
            "representation": "1",
        },
    )
    assert issued.status_code == 200, issued.text
    code = _group(r'id="code" dir="ltr">([A-Z0-9-]+)<', issued.text)
    sd_jwt = _group(r'id="sd_jwt"[^>]*>([^<]+)<', issued.text)
    report = AttestationVerifier([root_of(ca_ready)]).verify(sd_jwt)
    facts = dict(report.facts)
    assert report.valid and facts["age_over_18"] is True and facts["alive"] is True
    assert facts["representation"]["national_id"] == entity.national_id
    assert "birthdate" not in facts and "national_code" not in facts

    check = app_client.get("/attestations/check", params={"code": code})
    assert 'data-valid="true"' in check.text

    listed = app_client.get("/attestations")
    attestation_id = _group(r'data-attestation="([^"]+)"', listed.text)
    revoked = app_client.post(
        "/attestations/revoke",
        data={"csrf_token": csrf_of(listed.text), "attestation_id": attestation_id},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert 'data-valid="false"' in app_client.get("/attestations/check", params={"code": code}).text


def test_forged_form_is_refused_and_nothing_issued(ca_ready, app_client, representative):
    person, _ = representative
    log_in(ca_ready, app_client, person.national_code)
    app_client.get("/attestations")  # sets the CSRF cookie
    forged = app_client.post(
        "/attestations/new",
        data={"csrf_token": "0" * 64, "purpose": "anything", "facts": ["alive"]},
    )
    assert forged.status_code == 403 and 'data-message="forged"' in forged.text
    assert "data-attestation" not in app_client.get("/attestations").text


@pytest.mark.parametrize(
    ("fields", "status"),
    [({"purpose": "x", "facts": ["alive"]}, 400), ({"purpose": "purpose", "age_over": "ten"}, 400)],
)
def test_bad_form_shows_the_reason(ca_ready, app_client, representative, fields, status):
    person, _ = representative
    log_in(ca_ready, app_client, person.national_code)
    form = app_client.get("/attestations", params={"lang": "en"})
    answer = app_client.post(
        "/attestations/new", data={"csrf_token": csrf_of(form.text), "lang": "en", **fields}
    )
    assert answer.status_code == status
    assert 'id="error"' in answer.text


def _group(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s first match in ``text`` (which must have one)."""
    found = re.search(pattern, text)
    assert found is not None, pattern
    return found.group(1)
