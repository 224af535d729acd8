"""Console roles over HTTP: every refusal audited, two-person approval, CSRF, bootstrap."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from console_support import (
    audit_events,
    csrf_token,
    grant,
    person_key,
    refusals,
    signed_in,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.console.roles import Role, roles_of
from idp.settings import Settings
from idp.storage import console as console_store
from verifiers.registry.base import Person

# Every route of the roles and approvals pages, with what a browser would send.
ADMIN_ROUTES = [
    ("GET", "/console/roles"),
    ("POST", "/console/roles/grant"),
    ("POST", "/console/roles/revoke"),
]
ANY_ROLE_ROUTES = [
    ("GET", "/console/approvals"),
    ("POST", "/console/approvals/1/approve"),
    ("POST", "/console/approvals/1/reject"),
]
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def held(app: FastAPI, national_code: str) -> frozenset[Role]:
    with app.state.hoviyat.db.session() as db:
        return roles_of(db, person_key(app, national_code))


def home_csrf(browser: TestClient) -> str:
    return csrf_token(browser.get("/console").text)


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES + ANY_ROLE_ROUTES)
def test_a_person_without_any_role_is_refused_and_the_refusal_audited(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], method: str, path: str
) -> None:
    signed_in(hoviyat_app, browser, people[3].national_code)
    data = {"csrf_token": home_csrf(browser), "national_code": people[0].national_code}
    answer = browser.request(method, path, data=data if method == "POST" else None)
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "no-store" in answer.headers["cache-control"]
    (entry,) = refusals(hoviyat_app, "missing_role")
    assert entry.operation == f"{method} {path}"
    assert entry.actor_id == person_key(hoviyat_app, people[3].national_code)
    assert entry.tracking_code in answer.text
    assert held(hoviyat_app, people[0].national_code) == frozenset()


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_an_auditor_is_refused_the_administrators_pages(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], method: str, path: str
) -> None:
    grant(hoviyat_app, people[2].national_code, Role.AUDITOR)
    signed_in(hoviyat_app, browser, people[2].national_code)
    data = {"csrf_token": home_csrf(browser), "national_code": people[2].national_code}
    answer = browser.request(method, path, data=data if method == "POST" else None)
    assert answer.status_code == 403
    (entry,) = refusals(hoviyat_app, "missing_role")
    assert entry.detail["needed"] == ["admin"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES + ANY_ROLE_ROUTES)
def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(
    browser: TestClient, method: str, path: str
) -> None:
    answer = browser.request(method, path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=")


def test_a_post_without_csrf_token_is_refused_and_audited(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    admin = people[0].national_code
    grant(hoviyat_app, admin, Role.ADMIN)
    signed_in(hoviyat_app, browser, admin)
    answer = browser.post(
        "/console/roles/grant", data={"national_code": people[2].national_code, "role": "auditor"}
    )
    assert answer.status_code == 403
    assert [entry.detail["reason"] for entry in refusals(hoviyat_app)] == ["csrf_missing"]
    assert audit_events(hoviyat_app, "console_approval") == []


def test_a_forged_or_another_sessions_csrf_token_is_refused(
    hoviyat_app: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    admin, other_admin = people[0].national_code, people[1].national_code
    grant(hoviyat_app, admin, Role.ADMIN)
    grant(hoviyat_app, other_admin, Role.ADMIN)
    signed_in(hoviyat_app, browser, admin)
    signed_in(hoviyat_app, other_browser, other_admin)
    others_token = home_csrf(other_browser)
    form = {"national_code": people[2].national_code, "role": "auditor"}
    for token in ("0" * 64, others_token):
        answer = browser.post("/console/roles/grant", data={**form, "csrf_token": token})
        assert answer.status_code == 403
    reasons = [entry.detail["reason"] for entry in refusals(hoviyat_app)]
    assert reasons == ["csrf_invalid", "csrf_invalid"]
    # The right token is accepted: the refusals above were about the token alone.
    accepted = browser.post("/console/roles/grant", data={**form, "csrf_token": home_csrf(browser)})
    assert accepted.status_code == 303, accepted.text


def test_a_role_is_granted_only_when_a_second_administrator_approves(
    hoviyat_app: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    admin, second, newcomer = (p.national_code for p in people[:3])
    grant(hoviyat_app, admin, Role.ADMIN)
    grant(hoviyat_app, second, Role.ADMIN)
    signed_in(hoviyat_app, browser, admin)
    typed = newcomer.translate(PERSIAN_DIGITS)
    asked = browser.post(
        "/console/roles/grant",
        data={"national_code": typed, "role": "auditor", "csrf_token": home_csrf(browser)},
    )
    assert asked.status_code == 303, asked.text
    assert held(hoviyat_app, newcomer) == frozenset(), "a request alone grants nothing"
    page = browser.get("/console/roles")
    assert newcomer not in page.text and typed not in page.text
    (approval_id,) = {
        entry.detail["approval_id"] for entry in audit_events(hoviyat_app, "console_approval")
    }

    own = browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": home_csrf(browser)}
    )
    assert own.status_code == 403
    (refusal,) = refusals(hoviyat_app, "self_approval")
    assert refusal.detail["approval_id"] == approval_id
    assert held(hoviyat_app, newcomer) == frozenset()

    signed_in(hoviyat_app, other_browser, second)
    approved = other_browser.post(
        f"/console/approvals/{approval_id}/approve?back=/console/roles",
        data={"csrf_token": home_csrf(other_browser)},
    )
    assert approved.status_code == 303, approved.text
    assert held(hoviyat_app, newcomer) == frozenset({Role.AUDITOR})
    (granted,) = audit_events(hoviyat_app, "console_role")
    assert granted.outcome == "granted"
    assert granted.subject_hash == person_key(hoviyat_app, newcomer)
    assert granted.actor_id == person_key(hoviyat_app, second)

    again = other_browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": home_csrf(other_browser)}
    )
    assert again.status_code == 409, "a decided request is not decided twice"


def test_a_revocation_also_needs_a_second_administrator(
    hoviyat_app: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    admin, second, auditor = (p.national_code for p in people[:3])
    grant(hoviyat_app, admin, Role.ADMIN)
    grant(hoviyat_app, second, Role.ADMIN)
    grant(hoviyat_app, auditor, Role.AUDITOR)
    signed_in(hoviyat_app, browser, admin)
    asked = browser.post(
        "/console/roles/revoke",
        data={
            "person_key": person_key(hoviyat_app, auditor),
            "role": "auditor",
            "csrf_token": home_csrf(browser),
        },
    )
    assert asked.status_code == 303
    assert held(hoviyat_app, auditor) == frozenset({Role.AUDITOR})
    signed_in(hoviyat_app, other_browser, second)
    listing = other_browser.get("/console/approvals")
    assert listing.status_code == 200
    approval_id = audit_events(hoviyat_app, "console_approval")[0].detail["approval_id"]
    assert f"/console/approvals/{approval_id}/approve" in listing.text
    approved = other_browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": home_csrf(other_browser)}
    )
    assert approved.status_code == 303
    assert held(hoviyat_app, auditor) == frozenset()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0499370898", "رقم کنترل"),
        ("04993708", "ده رقم"),
        ("1111111111", "تکراری"),
        ("04993x0899", "فقط رقم"),
        ("", "وارد کنید"),
    ],
)
def test_a_bad_national_code_is_shown_on_the_form_and_nothing_is_requested(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], typed: str, message: str
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    answer = browser.post(
        "/console/roles/grant",
        data={"national_code": typed, "role": "auditor", "csrf_token": home_csrf(browser)},
    )
    assert answer.status_code == 400
    assert message in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert audit_events(hoviyat_app, "console_approval") == []


def test_arabic_indic_digits_name_the_same_person(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    typed = people[2].national_code.translate(ARABIC_INDIC_DIGITS)
    answer = browser.post(
        "/console/roles/grant",
        data={"national_code": typed, "role": "ca_operator", "csrf_token": home_csrf(browser)},
    )
    assert answer.status_code == 303
    (requested,) = audit_events(hoviyat_app, "console_approval")
    assert requested.subject_hash == person_key(hoviyat_app, people[2].national_code)


def test_sign_out_ends_the_session_on_the_server(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    signed_in(hoviyat_app, browser, people[0].national_code)
    cookie = dict(browser.cookies)
    answer = browser.post("/console/logout", data={"csrf_token": home_csrf(browser)})
    assert answer.status_code == 303
    assert browser.get("/console").status_code == 303
    # The old cookie value, replayed, opens nothing: the row is ended, not only the cookie.
    browser.cookies.clear()
    for name, value in cookie.items():
        browser.cookies.set(name, value)
    assert browser.get("/console").status_code == 303


def test_grant_admin_makes_the_first_administrator_once(
    hoviyat_app: FastAPI, hoviyat_settings: Settings, browser: TestClient, people: list[Person]
) -> None:
    env = {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(hoviyat_settings.data_dir),
        "HOVIYAT_DATABASE_URL": hoviyat_settings.resolved_database_url,
        "HOVIYAT_REGISTRY_PATH": str(hoviyat_settings.resolved_registry_path),
        "HOVIYAT_ISSUER": hoviyat_settings.issuer,
    }
    command = [sys.executable, "-m", "idp.cli", "console", "grant-admin", "--national-code"]
    first_code = people[0].national_code.translate(PERSIAN_DIGITS)
    made = subprocess.run(
        [*command, first_code, "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    assert people[0].national_code not in made.stdout
    assert held(hoviyat_app, people[0].national_code) == frozenset({Role.ADMIN})
    signed_in(hoviyat_app, browser, people[0].national_code)
    assert browser.get("/console/roles").status_code == 200

    second = subprocess.run(
        [*command, people[1].national_code], env=env, capture_output=True, text=True, check=False
    )
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1 and "/console/roles" in second.stderr
    assert held(hoviyat_app, people[1].national_code) == frozenset()


@pytest.mark.parametrize("approval_id", ["abc", "99999", "1e3", "-1", "2147483648", "9" * 40])
def test_deciding_a_request_that_does_not_exist_is_a_page_not_an_error(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], approval_id: str
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    answer = browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": home_csrf(browser)}
    )
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("text/html")


def test_a_revoked_role_stops_working_in_the_open_session(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    admin = people[0].national_code
    grant(hoviyat_app, admin, Role.ADMIN)
    signed_in(hoviyat_app, browser, admin)
    assert browser.get("/console/roles").status_code == 200
    with hoviyat_app.state.hoviyat.db.session() as db:
        assert console_store.revoke_role(db, person_key(hoviyat_app, admin), "admin")
    assert browser.get("/console/roles").status_code == 403
    (entry,) = refusals(hoviyat_app, "missing_role")
    assert entry.operation == "GET /console/roles"


def test_attack_a_refusal_on_a_very_long_path_is_still_a_403_and_audited(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    """The refused path is the visitor's text: 300 characters must not overflow the audit
    row's operation (PostgreSQL refuses it) and turn the 403 into another error."""
    signed_in(hoviyat_app, browser, people[3].national_code)
    path = "/console/clients/" + "a" * 300
    answer = browser.get(path)
    assert answer.status_code == 403, answer.text
    (entry,) = refusals(hoviyat_app, "missing_role")
    assert entry.operation is not None and len(entry.operation) == 64
    assert entry.detail["path"] == path
