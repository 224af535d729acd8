"""Issuing from a CSR in the console: the registration authority's checks, a clear page
for every refusal (never a 500), nothing written when refused."""

from __future__ import annotations

import pytest
from certs_support import certificate_count, issue, issue_form_token, record, serial_of
from console_support import grant, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pki_helpers import make_csr

from idp.console.roles import Role
from verifiers.registry.base import Person

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


@pytest.fixture
def operator(ca_ready: FastAPI, browser: TestClient, people: list[Person]) -> TestClient:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    return browser


@pytest.mark.parametrize("as_file", [True, False], ids=["file", "pasted"])
def test_an_operator_issues_from_a_csr_and_sees_the_certificate(
    ca_ready: FastAPI, operator: TestClient, people: list[Person], as_file: bool
) -> None:
    holder = people[3]
    answer = issue(
        operator,
        make_csr()[0],
        "person-authentication",
        as_file=as_file,
        national_code=holder.national_code.translate(PERSIAN_DIGITS),  # typed on a Persian keyboard
        reason="citizen asked at the counter",
    )
    assert answer.status_code == 303, answer.text
    serial = serial_of(answer.headers["location"])
    row = record(ca_ready, serial)
    assert row.status == "issued" and row.profile == "person-authentication"
    assert row.issuer_ca == "persons"
    page = operator.get(f"/console/certs/one?serial={serial}&lang=en")
    assert page.status_code == 200
    for shown in (
        serial,
        row.subject,
        "persons",
        "person-authentication",
        "Issued",
        "BEGIN CERTIFICATE",
    ):
        assert shown in page.text
    assert holder.national_code in row.subject  # the registry's subject, not the CSR's
    persian = operator.get(f"/console/certs/one?serial={serial}")
    assert 'lang="fa"' in persian.text and "گواهی" in persian.text


@pytest.mark.parametrize(
    ("csr", "slug"),
    [
        (b"garbage, not a certificate request", "csr-malformed"),
        (
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "csr-malformed",
        ),
        (b"\x30\x82\x01\x00" + b"\x00" * 300, "csr-malformed"),
    ],
    ids=["text", "broken-pem", "broken-der"],
)
def test_a_garbage_csr_gets_a_clear_page_and_writes_nothing(
    ca_ready: FastAPI, operator: TestClient, people: list[Person], csr: bytes, slug: str
) -> None:
    answer = issue(operator, csr, "person-authentication", national_code=people[3].national_code)
    assert answer.status_code == 400
    assert "text/html" in answer.headers["content-type"]
    assert slug in answer.text and 'role="alert"' in answer.text
    assert certificate_count(ca_ready) == 0


def test_an_oversized_upload_is_refused_before_it_is_read(
    ca_ready: FastAPI, operator: TestClient, people: list[Person]
) -> None:
    huge = b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"A" * (600 * 1024)
    answer = issue(operator, huge, "person-authentication", national_code=people[3].national_code)
    assert answer.status_code == 413
    assert "KiB" not in answer.text  # Persian page by default
    assert certificate_count(ca_ready) == 0


def test_a_csr_just_over_the_csr_limit_is_refused_by_the_registration_authority(
    ca_ready: FastAPI, operator: TestClient, people: list[Person]
) -> None:
    big = b"-----BEGIN CERTIFICATE REQUEST-----\n" + b"A" * (70 * 1024)
    answer = issue(operator, big, "person-authentication", national_code=people[3].national_code)
    assert answer.status_code == 400
    assert "csr-malformed" in answer.text
    assert certificate_count(ca_ready) == 0


def test_a_broken_multipart_body_gets_a_page_not_a_500(
    ca_ready: FastAPI, operator: TestClient
) -> None:
    answer = operator.post(
        "/console/certs/issue",
        content=b'--xyz\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert answer.status_code in (400, 403)
    assert "text/html" in answer.headers["content-type"]
    assert certificate_count(ca_ready) == 0


def test_a_csr_naming_what_the_profile_forbids_is_refused(
    ca_ready: FastAPI, operator: TestClient, people: list[Person]
) -> None:
    # A person's login certificate names the person from the civil registry only;
    # a CSR asking for a DNS name in it is refused, not silently dropped.
    csr = make_csr(dns=("bank.example",))[0]
    answer = issue(operator, csr, "person-authentication", national_code=people[3].national_code)
    assert answer.status_code == 400
    assert "csr-san-refused" in answer.text
    assert certificate_count(ca_ready) == 0


def test_a_dns_name_outside_what_the_profile_allows_is_refused(
    ca_ready: FastAPI, operator: TestClient
) -> None:
    answer = issue(operator, make_csr()[0], "tls-server", dns_names="*.*.example\nnot a name")
    assert answer.status_code == 400
    assert certificate_count(ca_ready) == 0


def test_an_unknown_profile_or_a_missing_csr_is_a_clear_page(
    ca_ready: FastAPI, operator: TestClient, people: list[Person]
) -> None:
    unknown = issue(operator, make_csr()[0], "root-ca", national_code=people[3].national_code)
    assert unknown.status_code == 400
    token = issue_form_token(operator)
    empty = operator.post(
        "/console/certs/issue?lang=en",
        data={"profile": "person-authentication", "csrf_token": token},
    )
    assert empty.status_code == 400
    assert "Send a CSR" in empty.text
    assert certificate_count(ca_ready) == 0


def test_a_person_the_registry_does_not_know_is_refused(
    ca_ready: FastAPI, operator: TestClient
) -> None:
    answer = issue(operator, make_csr()[0], "person-authentication", national_code="0000000000")
    assert answer.status_code in (400, 409)
    assert certificate_count(ca_ready) == 0
