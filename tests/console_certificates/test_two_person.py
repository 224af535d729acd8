"""CA-power certificates (OCSP responder, service signing) need a second CA operator:
the request alone issues nothing, its requester cannot approve it (refused, audited),
another operator's approval issues it through the CA's ceremony path."""

from __future__ import annotations

import pytest
from certs_support import certificate_count, issue
from console_support import audit_events, csrf_token, grant, person_key, refusals, signed_in
from cryptography import x509
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pki_helpers import make_csr
from sqlmodel import select

from idp.app import create_app
from idp.console.roles import Role
from idp.storage.certificates import CertificateRecord
from verifiers.registry.base import Person


def _approval_id(app: FastAPI) -> int:
    (requested,) = [e for e in audit_events(app, "console_approval") if e.outcome == "requested"]
    return int(requested.detail["approval_id"])


@pytest.mark.parametrize(
    ("profile", "fields"),
    [
        ("ocsp-responder", {"service_name": "persons OCSP responder 2", "issuing_ca": "persons"}),
        ("service-signing", {"service_name": "attestation signer"}),
    ],
    ids=["ocsp-responder", "service-signing"],
)
def test_a_ca_power_certificate_is_issued_only_when_a_second_operator_approves(
    ca_ready: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
    profile: str,
    fields: dict[str, str],
) -> None:
    first, second = people[0].national_code, people[1].national_code
    grant(ca_ready, first, Role.CA_OPERATOR)
    grant(ca_ready, second, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, first)
    asked = issue(browser, make_csr()[0], profile, reason="new responder key", **fields)
    assert asked.status_code == 303, asked.text
    assert "console.certs.requested" in asked.headers["location"]
    assert certificate_count(ca_ready, profile) == 0, "a request alone issues nothing"
    approval_id = _approval_id(ca_ready)

    own_page = browser.get("/console/certs/issue")
    assert f"/console/approvals/{approval_id}/approve" not in own_page.text
    own = browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": csrf_token(own_page.text)}
    )
    assert own.status_code == 403
    (refusal,) = refusals(ca_ready, "self_approval")
    assert refusal.detail["approval_id"] == approval_id
    assert refusal.actor_id == person_key(ca_ready, first)
    assert certificate_count(ca_ready, profile) == 0

    signed_in(ca_ready, other_browser, second)
    their_page = other_browser.get("/console/certs/issue?lang=en")
    assert f"/console/approvals/{approval_id}/approve" in their_page.text
    assert fields["service_name"] in their_page.text
    approved = other_browser.post(
        f"/console/approvals/{approval_id}/approve",
        data={"csrf_token": csrf_token(their_page.text)},
    )
    assert approved.status_code == 303, approved.text
    decided = [e for e in audit_events(ca_ready, "console_approval") if e.outcome == "approved"]
    (decision,) = decided
    assert decision.actor_id == person_key(ca_ready, second)
    with ca_ready.state.hoviyat.db.session() as db:
        (row,) = db.exec(
            select(CertificateRecord).where(CertificateRecord.profile == profile)
        ).all()
    assert row.status == "issued"
    assert row.tracking_code == decision.detail["certificate_tracking_code"]
    assert row.requested_by == person_key(ca_ready, first)
    assert row.der is not None
    certificate = x509.load_der_x509_certificate(row.der)
    assert fields["service_name"] in certificate.subject.rfc4514_string()
    (issued,) = [e for e in audit_events(ca_ready, "certificate_issued") if e.operation == profile]
    assert issued.detail["issuance"] == "ceremony"

    again = other_browser.post(
        f"/console/approvals/{approval_id}/approve",
        data={"csrf_token": csrf_token(their_page.text)},
    )
    assert again.status_code == 409, "a decided request is not carried out twice"
    assert certificate_count(ca_ready, profile) == 1


def test_a_ceremony_request_failing_a_check_is_refused_before_it_is_recorded(
    ca_ready: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    # An OCSP responder answers for one CA: it must be named (and the root issues none).
    for issuing in ("", "root"):
        answer = issue(
            browser, make_csr()[0], "ocsp-responder", service_name="responder", issuing_ca=issuing
        )
        assert answer.status_code in (400, 409), answer.text
    garbage = issue(browser, b"not a csr", "service-signing", service_name="signer")
    assert garbage.status_code == 400 and "csr-malformed" in garbage.text
    assert audit_events(ca_ready, "console_approval") == []
    assert certificate_count(ca_ready) == 0


def test_a_person_without_the_ca_operator_role_cannot_approve_a_certificate_request(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    grant(ca_ready, people[2].national_code, Role.ADMIN)
    signed_in(ca_ready, browser, people[0].national_code)
    asked = issue(browser, make_csr()[0], "service-signing", service_name="signer")
    assert asked.status_code == 303
    approval_id = _approval_id(ca_ready)
    signed_in(ca_ready, other_browser, people[2].national_code)
    token = csrf_token(other_browser.get("/console").text)
    answer = other_browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": token}
    )
    assert answer.status_code == 403
    (refusal,) = refusals(ca_ready, "missing_role")
    assert refusal.detail["approval_kind"] == "ca_ceremony_certificate"
    assert certificate_count(ca_ready) == 0


def test_a_ceremony_request_is_approved_in_another_worker_that_never_served_a_certs_page(
    ca_ready: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    """Requested in one worker, approved in another (a fresh app over the same database,
    as after a restart): the approver's worker opens the PKI itself and issues."""
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    grant(ca_ready, people[1].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    assert (
        issue(browser, make_csr()[0], "service-signing", service_name="signer").status_code == 303
    )
    approval_id = _approval_id(ca_ready)
    settings = ca_ready.state.hoviyat.settings
    other = create_app(settings)
    try:
        with TestClient(other, base_url=settings.issuer, follow_redirects=False) as elsewhere:
            signed_in(other, elsewhere, people[1].national_code)
            token = csrf_token(elsewhere.get("/console").text)
            approved = elsewhere.post(
                f"/console/approvals/{approval_id}/approve", data={"csrf_token": token}
            )
            assert approved.status_code == 303, approved.text
    finally:
        other.state.hoviyat.close()
    assert certificate_count(ca_ready, "service-signing") == 1
