"""Revocation in the console: the page says revoked, OCSP says revoked at once, the CRL
is reissued and the health page shows it; bad reasons change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from certs_support import issue, ocsp_status, record, serial_of
from console_support import audit_events, csrf_token, grant, person_key, signed_in
from cryptography import x509
from cryptography.x509 import ocsp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pki_helpers import make_csr

from idp.console.certificates_health import expiry
from idp.console.roles import Role
from verifiers.registry.base import Person


def _issued(app: FastAPI, browser: TestClient, people: list[Person]) -> str:
    grant(app, people[0].national_code, Role.CA_OPERATOR)
    signed_in(app, browser, people[0].national_code)
    answer = issue(
        browser, make_csr()[0], "person-authentication", national_code=people[3].national_code
    )
    assert answer.status_code == 303, answer.text
    return serial_of(answer.headers["location"])


def test_revoking_shows_revoked_and_ocsp_answers_revoked(
    ca_ready: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    serial = _issued(ca_ready, browser, people)
    assert ocsp_status(ca_ready, browser, serial).certificate_status == ocsp.OCSPCertStatus.GOOD
    page = browser.get(f"/console/certs/one?serial={serial}")
    answer = browser.post(
        "/console/certs/revoke",
        data={
            "serial": serial,
            "reason": "keyCompromise",
            "comment": "lost token",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert answer.status_code == 303, answer.text
    after = browser.get(answer.headers["location"] + "&lang=en")
    assert "Revoked" in after.text and "keyCompromise" in after.text
    assert "The certificate has been revoked." in after.text
    assert 'action="/console/certs/revoke' not in after.text  # nothing left to revoke

    status = ocsp_status(ca_ready, browser, serial)
    assert status.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert status.revocation_reason == x509.ReasonFlags.key_compromise
    row = record(ca_ready, serial)
    assert row.status == "revoked" and row.revocation_reason == "keyCompromise"
    (event,) = audit_events(ca_ready, "certificate_revoked")
    assert event.actor_id == person_key(ca_ready, people[0].national_code)
    assert event.actor_type == "console_user"

    health = browser.get("/console/certs/health?lang=en")
    assert health.status_code == 200
    persons_crl = next(
        line for line in health.text.split("<tr>") if ">persons<" in line and "UTC" in line
    )
    assert "no CRL published yet" not in persons_crl


@pytest.mark.parametrize("reason", ["lostPhone", "removeFromCRL", ""])
def test_a_reason_rfc_5280_does_not_allow_is_refused_and_changes_nothing(
    ca_ready: FastAPI, browser: TestClient, people: list[Person], reason: str
) -> None:
    serial = _issued(ca_ready, browser, people)
    token = csrf_token(browser.get(f"/console/certs/one?serial={serial}").text)
    answer = browser.post(
        "/console/certs/revoke", data={"serial": serial, "reason": reason, "csrf_token": token}
    )
    assert answer.status_code == 400
    assert 'role="alert"' in answer.text
    assert record(ca_ready, serial).status == "issued"
    assert audit_events(ca_ready, "certificate_revoked") == []


@pytest.mark.parametrize(("serial", "status"), [("not-hex", 400), ("0123456789abcdef01", 404)])
def test_a_serial_never_issued_is_a_clear_page(
    ca_ready: FastAPI, browser: TestClient, people: list[Person], serial: str, status: int
) -> None:
    _issued(ca_ready, browser, people)
    assert browser.get(f"/console/certs/one?serial={serial}").status_code == status
    token = csrf_token(browser.get("/console/certs").text)
    answer = browser.post(
        "/console/certs/revoke",
        data={"serial": serial, "reason": "superseded", "csrf_token": token},
    )
    assert answer.status_code == status


def test_the_health_page_shows_the_hierarchy_crls_and_responders(
    ca_ready: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    serial = _issued(ca_ready, browser, people)
    ocsp_status(ca_ready, browser, serial)  # the responder certifies itself on first use
    page = browser.get("/console/certs/health?lang=en")
    assert page.status_code == 200
    for name in ("root", "persons", "organisations", "infrastructure"):
        assert f'<bdi dir="ltr">{name}</bdi>' in page.text
    assert "Days left" in page.text and "thisUpdate" in page.text
    assert "OCSP responder certificates" in page.text
    responders = page.text.split('id="responders"')[1]
    persons = next(line for line in responders.split("<tr>") if ">persons<" in line)
    assert "<code>" in persons  # the persons CA's responder serial and expiry
    persian = browser.get("/console/certs/health")
    assert 'dir="rtl"' in persian.text


def test_expiry_is_flagged_under_ninety_days_and_when_past() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    assert not expiry(now + timedelta(days=400), now).warn
    soon = expiry(now + timedelta(days=89, hours=23), now)
    assert soon.warn and not soon.expired
    assert not expiry(now + timedelta(days=90, hours=1), now).warn
    gone = expiry(now - timedelta(seconds=1), now)
    assert gone.expired and gone.warn
