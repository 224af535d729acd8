"""Attacks on the console's resumable approvals and the CA lifecycle forms.

From the attacker's side, over HTTP through the real app, on SQLite and
PostgreSQL: an approved ceremony certificate whose worker signed it and died
before recording the result is not issued a second time when resumed; ``/apply``
does nothing for a pending or rejected request, for someone without the kind's
role (also a requester who lost it), or for an odd id; an approval's page says
nothing to another role; an uploaded chain of any bytes is a clear 400, never a
500 and never a request.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from certs_support import certificate_count, issue
from console_support import audit_events, csrf_token, grant, person_key, signed_in
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pki_helpers import make_csr
from sqlalchemy import update

from idp.console.certificates_lifecycle import FAIL_PENDING
from idp.console.roles import Role
from idp.pki.hierarchy import Hierarchy
from idp.pki.service import build_pki
from idp.storage import console as store
from verifiers.registry.base import Person

PAGE = "/console/certs/lifecycle"
CEREMONY = "ca_ceremony_certificate"


def _operators(app: FastAPI, first: TestClient, second: TestClient, people: list[Person]) -> None:
    for person in people[:2]:
        grant(app, person.national_code, Role.CA_OPERATOR)
    signed_in(app, first, people[0].national_code)
    signed_in(app, second, people[1].national_code)


def _requested_id(app: FastAPI, kind: str) -> int:
    (requested,) = [
        e
        for e in audit_events(app, "console_approval")
        if e.outcome == "requested" and e.operation == kind
    ]
    return int(requested.detail["approval_id"])


def _token(browser: TestClient) -> str:
    return csrf_token(browser.get("/console/approvals").text)


def _apply(browser: TestClient, approval_id: object) -> int:
    answer = browser.post(
        f"/console/approvals/{approval_id}/apply", data={"csrf_token": _token(browser)}
    )
    return answer.status_code


def test_attack_resuming_a_ceremony_certificate_signed_before_its_worker_died_issues_no_second(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    asked = issue(browser, make_csr()[0], "service-signing", service_name="attestation signer")
    assert asked.status_code == 303, asked.text
    approval_id = _requested_id(ca_ready, CEREMONY)
    approved = other_browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": _token(other_browser)}
    )
    assert approved.status_code == 303, approved.text
    assert certificate_count(ca_ready, "service-signing") == 1
    with ca_ready.state.hoviyat.db.session() as db:
        row = store.approval(db, approval_id)
    assert row is not None and row.result is not None
    serial, code = row.result["serial"], row.result["certificate_tracking_code"]
    # The state a worker leaves that signed and died before recording the result: the
    # claim (with the decision's detail) an hour old, applied_at not set.
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with ca_ready.state.hoviyat.db.session() as db:
        db.execute(
            update(store.APPROVALS)
            .where(store.APPROVALS.c.id == approval_id)
            .values(
                applied_at=None,
                applying_since=long_ago,
                result={"certificate_tracking_code": code},
            )
        )
    page = other_browser.get(f"/console/approvals/{approval_id}?lang=en")
    assert page.status_code == 200 and f"/console/approvals/{approval_id}/apply" in page.text
    assert code not in page.text  # the decision's detail waits; it is no result
    assert _apply(other_browser, approval_id) == 303
    assert certificate_count(ca_ready, "service-signing") == 1
    with ca_ready.state.hoviyat.db.session() as db:
        row = store.approval(db, approval_id)
    assert row is not None and row.applied_at is not None and row.result is not None
    assert row.result["serial"] == serial and row.result["already"] == "issued"
    assert _apply(browser, approval_id) == 409


def _fail_pending_request(app: FastAPI, requester: str) -> int:
    with app.state.hoviyat.db.session() as db:
        approval = store.request_approval(
            db, FAIL_PENDING, {"minutes": 60, "reason": "r"}, requester, datetime.now(UTC)
        )
        assert approval.id is not None
        return approval.id


def test_attack_apply_before_approval_after_rejection_or_without_the_role_does_nothing(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    first = person_key(ca_ready, people[0].national_code)
    second = person_key(ca_ready, people[1].national_code)
    pending = _fail_pending_request(ca_ready, first)
    assert _apply(browser, pending) == 409
    assert _apply(other_browser, pending) == 409
    rejected = _fail_pending_request(ca_ready, first)
    with ca_ready.state.hoviyat.db.session() as db:
        assert store.decide(db, rejected, second, store.REJECTED, datetime.now(UTC))
    assert _apply(other_browser, rejected) == 409
    # Approved and left by a worker that died; an auditor, then the requester who lost
    # the CA operator's role, try to carry it out.
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    left = _fail_pending_request(ca_ready, first)
    with ca_ready.state.hoviyat.db.session() as db:
        assert store.decide(db, left, second, store.APPROVED, long_ago)
        assert store.claim_effect(db, left, long_ago, long_ago, decided={})
    grant(ca_ready, people[2].national_code, Role.AUDITOR)
    with TestClient(ca_ready, base_url=str(browser.base_url), follow_redirects=False) as auditor:
        signed_in(ca_ready, auditor, people[2].national_code)
        page = auditor.get(f"/console/approvals/{left}?lang=en")
        assert page.status_code == 403 and "minutes" not in page.text.lower()
        token = csrf_token(auditor.get("/console/approvals").text)
        listed = auditor.get("/console/approvals?lang=en")
        assert f"/console/approvals/{left}?" not in listed.text
        tried = auditor.post(f"/console/approvals/{left}/apply", data={"csrf_token": token})
        assert tried.status_code == 403
    with ca_ready.state.hoviyat.db.session() as db:
        assert store.revoke_role(db, first, Role.CA_OPERATOR.value)
    assert _apply(browser, left) == 403
    with ca_ready.state.hoviyat.db.session() as db:
        row = store.approval(db, left)
    assert row is not None and row.applied_at is None
    outcomes = [e.outcome for e in audit_events(ca_ready, "console_approval")]
    assert "resumed" not in outcomes and "applied" not in outcomes
    # The one who holds the role still may.
    assert _apply(other_browser, left) == 303


@pytest.mark.parametrize(
    "odd", ["%00", "-1", "0", "999999999", "9999999999", "%D9%A1%D9%A2", "1%20", "1.0", "x" * 500]
)
def test_attack_odd_approval_ids_are_refused_without_a_server_error(
    ca_ready: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
    odd: str,
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    token = _token(browser)
    page = browser.get(f"/console/approvals/{odd}")
    assert page.status_code in (400, 404, 409), page.status_code
    answer = browser.post(f"/console/approvals/{odd}/apply", data={"csrf_token": token})
    assert answer.status_code in (400, 404, 409), answer.status_code


def _hierarchy(app: FastAPI) -> Hierarchy:
    hoviyat = app.state.hoviyat
    pki = build_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    )
    assert isinstance(pki.hierarchy, Hierarchy)
    return pki.hierarchy


def _armoured(der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"


def test_attack_any_bytes_for_a_chain_are_a_clear_400_and_never_a_request(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    csr = _hierarchy(ca_ready).issuing_csr("persons")
    mallory = ec.generate_private_key(ec.SECP384R1())
    # The pending subject and key, self-signed by Mallory: it reaches the signature check.
    near = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(csr.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC))
        .not_valid_after(datetime.now(UTC) + timedelta(days=30))
        .sign(mallory, hashes.SHA384())
        .public_bytes(Encoding.DER)
    )
    token = csrf_token(browser.get(PAGE).text)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        flips=st.lists(st.tuples(st.integers(0, len(near) - 1), st.integers(0, 255)), max_size=4),
        cut=st.integers(0, len(near)),
        noise=st.binary(max_size=64),
        as_text=st.booleans(),
    )
    def attempt(flips: list[tuple[int, int]], cut: int, noise: bytes, as_text: bool) -> None:
        der = bytearray(near)
        for at, value in flips:
            der[at] = value
        chain = _armoured(bytes(der[:cut])) + noise
        if as_text:
            answer = browser.post(
                f"{PAGE}/install?lang=en",
                data={
                    "csrf_token": token,
                    "reason": "r",
                    "chain_text": chain.decode("latin-1"),
                },
            )
        else:
            answer = browser.post(
                f"{PAGE}/install?lang=en",
                data={"csrf_token": token, "reason": "r"},
                files={"chain_file": ("chain.pem", chain, "application/x-pem-file")},
            )
        assert answer.status_code == 400, answer.text

    attempt()
    assert audit_events(ca_ready, "console_approval") == []


def test_attack_markup_in_a_requests_reason_is_shown_as_text_on_every_approval_page(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    asked = browser.post(
        f"{PAGE}/fail-pending?lang=en",
        data={"csrf_token": csrf_token(browser.get(PAGE).text), "minutes": "60", "reason": evil},
    )
    assert asked.status_code == 303, asked.text
    approval_id = _requested_id(ca_ready, FAIL_PENDING)
    for path in (f"/console/approvals/{approval_id}?lang=en", "/console/approvals?lang=en", PAGE):
        for viewer in (browser, other_browser):
            page = viewer.get(path)
            assert page.status_code == 200, page.text
            assert evil not in page.text and "<script>alert" not in page.text
            assert 'onerror="alert' not in page.text
