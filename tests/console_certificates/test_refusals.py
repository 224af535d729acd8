"""Every certificates page refuses a person without the CA operator role, and audits it;
every form refuses a missing or forged CSRF token, and audits it."""

from __future__ import annotations

import pytest
from certs_support import certificate_count, issue, record, serial_of
from console_support import csrf_token, grant, person_key, refusals, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pki_helpers import make_csr

from idp.console.roles import Role
from verifiers.registry.base import Person

ROUTES = [
    ("GET", "/console/certs"),
    ("GET", "/console/certs/one"),
    ("POST", "/console/certs/revoke"),
    ("GET", "/console/certs/issue"),
    ("POST", "/console/certs/issue"),
    ("GET", "/console/certs/health"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_person_without_the_ca_operator_role_is_refused_and_audited(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], method: str, path: str
) -> None:
    # Every other role: administrators and auditors are not CA operators.
    grant(hoviyat_app, people[2].national_code, Role.ADMIN, Role.AUDITOR, Role.COUNTER_SUPERVISOR)
    signed_in(hoviyat_app, browser, people[2].national_code)
    token = csrf_token(browser.get("/console").text)
    data = {"csrf_token": token, "serial": "01", "reason": "keyCompromise", "profile": "tls-server"}
    answer = browser.request(
        method,
        path + ("?serial=01" if method == "GET" else ""),
        data=data if method == "POST" else None,
    )
    assert answer.status_code == 403
    (entry,) = refusals(hoviyat_app, "missing_role")
    assert entry.operation == f"{method} {path}"
    assert entry.actor_id == person_key(hoviyat_app, people[2].national_code)
    assert entry.detail["needed"] == ["ca_operator"]


def test_a_person_not_signed_in_is_sent_to_sign_in(
    hoviyat_app: FastAPI, browser: TestClient
) -> None:
    for path in ("/console/certs", "/console/certs/health", "/console/certs/issue"):
        answer = browser.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login")


@pytest.mark.parametrize("sent", [None, "forged-token"], ids=["missing", "forged"])
def test_revoking_without_this_sessions_csrf_token_is_refused_and_changes_nothing(
    ca_ready: FastAPI, browser: TestClient, people: list[Person], sent: str | None
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    issued = issue(
        browser, make_csr()[0], "person-authentication", national_code=people[3].national_code
    )
    assert issued.status_code == 303, issued.text
    serial = serial_of(issued.headers["location"])
    data = {"serial": serial, "reason": "keyCompromise"}
    if sent is not None:
        data["csrf_token"] = sent
    answer = browser.post("/console/certs/revoke", data=data)
    assert answer.status_code == 403
    (entry,) = refusals(ca_ready, "csrf_missing" if sent is None else "csrf_invalid")
    assert entry.operation == "POST /console/certs/revoke"
    assert record(ca_ready, serial).status == "issued"


@pytest.mark.parametrize("sent", [None, "0" * 64], ids=["missing", "forged"])
def test_issuing_without_this_sessions_csrf_token_is_refused_and_issues_nothing(
    ca_ready: FastAPI, browser: TestClient, people: list[Person], sent: str | None
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    data = {"profile": "person-authentication", "national_code": people[3].national_code}
    if sent is not None:
        data["csrf_token"] = sent
    answer = browser.post(
        "/console/certs/issue",
        data=data,
        files={"csr_file": ("r.csr", make_csr()[0], "text/plain")},
    )
    assert answer.status_code == 403
    assert len(refusals(ca_ready, "csrf_missing" if sent is None else "csrf_invalid")) == 1
    assert certificate_count(ca_ready) == 0


def test_another_sessions_csrf_token_is_refused(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    grant(ca_ready, people[1].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    signed_in(ca_ready, other_browser, people[1].national_code)
    theirs = csrf_token(other_browser.get("/console/certs/issue").text)
    answer = issue(
        browser,
        make_csr()[0],
        "person-authentication",
        token=theirs,
        national_code=people[3].national_code,
    )
    assert answer.status_code == 403
    assert len(refusals(ca_ready, "csrf_invalid")) == 1
    assert certificate_count(ca_ready) == 0
