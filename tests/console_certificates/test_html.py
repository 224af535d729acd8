"""Every certificates page is valid HTML in Persian and English, with a pending request,
a refusal and a revoked certificate drawn."""

from __future__ import annotations

import html5lib
import pytest
from certs_support import issue, serial_of
from console_support import csrf_token, grant, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pki_helpers import make_csr

from idp.console.roles import Role
from verifiers.registry.base import Person


def assert_valid(text: str, what: str) -> None:
    try:
        html5lib.HTMLParser(strict=True).parse(text)
    except html5lib.html5parser.ParseError as error:
        raise AssertionError(f"{what}: invalid HTML: {error}\n{text}") from None


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_certificates_pages_are_valid_html_without_inline_script(
    ca_ready: FastAPI, browser: TestClient, people: list[Person], lang: str
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    signed_in(ca_ready, browser, people[0].national_code)
    issued = issue(
        browser, make_csr()[0], "person-authentication", national_code=people[3].national_code
    )
    serial = serial_of(issued.headers["location"])
    assert (
        issue(browser, make_csr()[0], "service-signing", service_name="signer").status_code == 303
    )
    refused = issue(
        browser, b"garbage", "person-authentication", national_code=people[3].national_code
    )
    assert refused.status_code == 400
    assert_valid(refused.text, "issue page with a refusal")
    token = csrf_token(browser.get("/console/certs").text)
    browser.post(
        "/console/certs/revoke",
        data={"serial": serial, "reason": "superseded", "csrf_token": token},
    )
    suffix = "?lang=en" if lang == "en" else ""
    joiner = "&" if suffix else "?"
    for path in (
        f"/console/certs{suffix}",
        f"/console/certs{suffix}{joiner}status=revoked",
        f"/console/certs/one?serial={serial}" + ("&lang=en" if lang == "en" else ""),
        f"/console/certs/issue{suffix}",
        f"/console/certs/health{suffix}",
        "/console/certs/one?serial=zz" + ("&lang=en" if lang == "en" else ""),
    ):
        answer = browser.get(path)
        assert answer.status_code in (200, 400), path
        assert_valid(answer.text, path)
        assert "<script" not in answer.text
        assert f'lang="{lang}"' in answer.text
        assert "script-src" not in answer.headers["content-security-policy"]
        assert "default-src 'none'" in answer.headers["content-security-policy"]
