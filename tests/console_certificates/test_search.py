"""Searching certificates: by subject, serial, profile and status, in keyset pages that
neither repeat nor skip a certificate; a forged page link is a clear page."""

from __future__ import annotations

import re

import pytest
from certs_support import issue, serial_of
from console_support import csrf_token, grant, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pki_helpers import make_csr

from idp.console import certificates_query
from idp.console.roles import Role
from verifiers.registry.base import Person


def _serials(page: str) -> list[str]:
    return re.findall(r"/console/certs/one\?serial=([0-9a-f]+)", page)


def _issue_three(app: FastAPI, browser: TestClient, people: list[Person]) -> list[str]:
    grant(app, people[0].national_code, Role.CA_OPERATOR)
    signed_in(app, browser, people[0].national_code)
    serials = []
    for holder in (people[1], people[2], people[3]):
        answer = issue(
            browser, make_csr()[0], "person-authentication", national_code=holder.national_code
        )
        assert answer.status_code == 303, answer.text
        serials.append(serial_of(answer.headers["location"]))
    return serials


def test_keyset_pages_cover_every_certificate_once(
    ca_ready: FastAPI, browser: TestClient, people: list[Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    serials = _issue_three(ca_ready, browser, people)
    monkeypatch.setattr(certificates_query, "PAGE_SIZE", 2)
    first = browser.get("/console/certs?lang=en&profile=person-authentication")
    assert first.status_code == 200
    on_first = _serials(first.text)
    assert len(on_first) == 2
    next_link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_link is not None
    second = browser.get(next_link.group(1).replace("&amp;", "&"))
    on_second = _serials(second.text)
    assert len(on_second) == 1
    assert 'rel="next"' not in second.text
    assert sorted(on_first + on_second) == sorted(serials)


def test_each_filter_narrows_the_search(
    ca_ready: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    serials = _issue_three(ca_ready, browser, people)
    by_serial = browser.get(f"/console/certs?serial={serials[1].upper()}")
    assert _serials(by_serial.text) == [serials[1]]
    by_subject = browser.get("/console/certs", params={"subject": people[2].national_code})
    assert _serials(by_subject.text) == [serials[1]]
    wildcard = browser.get("/console/certs", params={"subject": "%"})
    assert _serials(wildcard.text) == [], "% is a character to find, not a wildcard"
    assert len(_serials(browser.get("/console/certs?status=issued").text)) == 3
    assert _serials(browser.get("/console/certs?status=revoked").text) == []
    assert _serials(browser.get("/console/certs?profile=tls-server").text) == []

    token = csrf_token(browser.get(f"/console/certs/one?serial={serials[0]}").text)
    revoked = browser.post(
        "/console/certs/revoke",
        data={"serial": serials[0], "reason": "superseded", "csrf_token": token},
    )
    assert revoked.status_code == 303
    assert _serials(browser.get("/console/certs?status=revoked").text) == [serials[0]]


@pytest.mark.parametrize(
    "query",
    ["after=garbage", "after=2026-01-01T00:00:00~zz", "after=2026-01-01T00:00:00~01", "serial=xyz"],
)
def test_a_forged_page_link_or_bad_serial_is_a_clear_message(
    ca_ready: FastAPI, browser: TestClient, people: list[Person], query: str
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    answer = browser.get(f"/console/certs?{query}&lang=en")
    assert answer.status_code == 200
    assert 'class="error" role="alert"' in answer.text
