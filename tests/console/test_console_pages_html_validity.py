"""Every console page of the framework, roles and clients is valid HTML, in both languages.

html5lib in strict mode raises on any parse error a browser would repair.
"""

from __future__ import annotations

import html5lib
import pytest
from console_support import csrf_token, grant, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.console.roles import Role
from verifiers.registry.base import Person


def assert_valid(text: str, what: str) -> None:
    try:
        html5lib.HTMLParser(strict=True).parse(text)
    except html5lib.html5parser.ParseError as error:
        raise AssertionError(f"{what}: invalid HTML: {error}\n{text}") from None


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_console_pages_are_valid_html(
    hoviyat_app: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
    lang: str,
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    signed_in(hoviyat_app, other_browser, people[3].national_code)  # holds no role
    token = csrf_token(browser.get("/console").text)
    # A pending request, so the approvals tables are drawn too; and a form with an error.
    browser.post(
        "/console/roles/grant",
        data={"national_code": people[1].national_code, "role": "auditor", "csrf_token": token},
    )
    bad = browser.post(
        f"/console/roles/grant?lang={lang}",
        data={"national_code": "123", "role": "auditor", "csrf_token": token},
    )
    assert bad.status_code == 400
    assert_valid(bad.text, "roles page with an error")
    for path in (
        "/console",
        "/console/roles",
        "/console/approvals",
        "/console/clients",
        "/console/clients/demo-portal",
        "/console/clients/no-such",
        "/console/signed-out",
    ):
        answer = browser.get(f"{path}?lang={lang}")
        assert answer.status_code in (200, 404), (path, answer.status_code)
        assert_valid(answer.text, path)
    refused = other_browser.get(f"/console/roles?lang={lang}")
    assert refused.status_code == 403
    assert_valid(refused.text, "refusal page")
