"""Every page a citizen sees (login, consent, logout, errors) is valid HTML.

html5lib implements the WHATWG parsing algorithm; in strict mode any parse
error (a stray end tag, a missing doctype, an unclosed element that the
browser would have to guess about) raises instead of being repaired.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import html5lib
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from oidc.login_helpers import (
    SUBSTANTIAL,
    follow,
    living_with_mobile,
    make_client,
    new_interaction,
    person_by_code,
    representations,
    submit,
)
from oidc_support import authorization_params, pkce_pair, register_rp


def assert_valid_html(response: Response, what: str) -> None:
    assert response.headers["content-type"].startswith("text/html"), (what, response.text[:200])
    parser = html5lib.HTMLParser(strict=True)
    try:
        parser.parse(response.text)
    except html5lib.html5parser.ParseError as exc:
        raise AssertionError(f"{what}: invalid HTML: {exc}\n{response.text}") from None


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


def _identify(browser: TestClient, app: FastAPI, person: dict[str, Any], **kw: Any) -> Response:
    interaction = new_interaction(app, make_client(app), **kw)
    page = browser.get(f"/login?interaction={interaction}")
    return submit(browser, page, "/login/identify", national_code=person["national_code"],
                  birth_date=person["birth_date"])  # fmt: skip


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_login_consent_and_error_pages_are_valid_html(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path, lang: str
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    client = make_client(hoviyat_app)
    seen: dict[str, Response] = {}

    interaction = new_interaction(hoviyat_app, client, ui_locales=[lang])
    identify = browser.get(f"/login?interaction={interaction}")
    seen["identify"] = identify
    seen["identify with errors"] = submit(
        browser, identify, "/login/identify", national_code="123", birth_date="nonsense"
    )
    seen["forged form (CSRF)"] = browser.post(
        "/login/identify", data={"interaction": interaction, "lang": lang}
    )
    seen["unknown interaction"] = browser.get("/login?interaction=nope&lang=" + lang)
    consent = follow(browser, submit(browser, identify, "/login/identify",
                                     national_code=person["national_code"],
                                     birth_date=person["birth_date"]))  # fmt: skip
    seen["consent"] = consent

    # Logged in at low: a substantial request goes straight to the mobile step.
    step_up = new_interaction(hoviyat_app, client, acr_values=[SUBSTANTIAL], ui_locales=[lang])
    mobile = browser.get(f"/login?interaction={step_up}")
    seen["mobile"] = mobile
    otp = follow(browser, submit(browser, mobile, "/login/mobile", mobile=person["mobiles"][0]))
    seen["one-time code"] = otp
    seen["one-time code, wrong"] = submit(browser, otp, "/login/otp", otp="000000")

    browser.cookies.clear()  # a new visitor: a representative of an entity
    for entity, representative in representations(synthetic_registry_path):
        someone = person_by_code(synthetic_registry_path, representative["national_code"])
        if entity["status"] == "active" and someone["alive"]:
            answer = _identify(browser, hoviyat_app, someone, ui_locales=[lang],
                               scope=["openid", "profile", "legal_entity"],
                               requested_claims=["given_name", "legal_entity"])  # fmt: skip
            seen["entity"] = follow(browser, answer)
            break

    seen["consents"] = browser.get(f"/login/consents?lang={lang}")
    seen["access history"] = browser.get(f"/login/history?lang={lang}")
    for what, response in seen.items():
        assert response.status_code < 500, what
        assert_valid_html(response, f"{what} ({lang})")


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_logout_and_authorize_error_pages_are_valid_html(
    hoviyat_app: FastAPI, asgi_browser: TestClient, lang: str
) -> None:
    rp = register_rp(hoviyat_app, "rp-html")
    _, challenge = pkce_pair()
    accept = {"Accept-Language": lang}
    asked = asgi_browser.get("/logout", params={"ui_locales": lang})
    assert asked.status_code == 200
    pages = {
        "logout confirmation": asked,
        "logout refused (CSRF)": asgi_browser.post(
            "/logout", data={"confirm": "yes", "lang": lang}
        ),
        "logged out": asgi_browser.post(
            "/logout", data={**_form_of(asked), "confirm": "yes"}, headers=accept
        ),
        "authorize: unknown client": asgi_browser.get(
            "/authorize",
            params=authorization_params(rp, challenge, client_id="nobody"),
            headers=accept,
        ),
        "authorize: unregistered redirect_uri": asgi_browser.get(
            "/authorize",
            params=authorization_params(rp, challenge, redirect_uri="https://evil.example/"),
            headers=accept,
        ),
        "authorize: no redirect_uri": asgi_browser.get(
            "/authorize",
            params=authorization_params(rp, challenge, redirect_uri=None),
            headers=accept,
        ),
    }
    for what, response in pages.items():
        assert response.status_code < 500, what
        assert_valid_html(response, f"{what} ({lang})")
        assert f'lang="{lang}"' in response.text, what


def _form_of(page: Response) -> dict[str, str]:
    from oidc.login_helpers import Forms

    return Forms(page.text).form("/logout")
