"""The whole browser leg through the real pages: /authorize → /login → /authorize/complete → /token.

The protocol tests fill the interaction row directly; these drive the forms
a citizen sees, so the contract between the two sides is exercised for real.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import (
    SUBSTANTIAL,
    Forms,
    code_in,
    follow,
    in_force,
    last_text,
    living_with_mobile,
    person_by_code,
    representations,
    submit,
)
from oidc_support import (
    authorization_params,
    exchange,
    login_page,
    pkce_pair,
    query_of,
    register_rp,
)


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


def _claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _to_login(browser: TestClient, params: dict[str, str]) -> Any:
    return login_page(browser, browser.get("/authorize", params=params))


def _back_to_client(browser: TestClient, response: Any, state: str) -> str:
    """Follow our own redirects until the one that leaves for the client; return its code."""
    while response.headers["location"].startswith("/"):
        response = (
            follow(browser, response)
            if response.status_code == 303
            else browser.get(response.headers["location"])
        )
    answer = query_of(response.headers["location"])
    assert answer.get("state") == state, answer
    assert "code" in answer, answer
    return answer["code"]


def test_low_then_step_up_to_substantial_then_prompt_none(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    rp = register_rp(hoviyat_app, "rp-pages")
    person = living_with_mobile(synthetic_registry_path)

    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, ui_locales="en")
    page = browser.get("/authorize", params=params)
    # No session yet: /authorize answers with the identify form itself, whose
    # language switch leads to the same step at /login.
    assert page.status_code == 200 and 'lang="en"' in page.text
    interaction = Forms(page.text).form("/login/identify")["interaction"]
    assert f'href="/login?interaction={interaction}&amp;lang=fa"' in page.text
    assert browser.cookies.get("hoviyat_csrf")
    consent = follow(browser, submit(browser, page, "/login/identify",
                                     national_code=person["national_code"],
                                     birth_date=person["birth_date"]))  # fmt: skip
    allowed = submit(browser, consent, "/login/consent", decision="allow")
    code = _back_to_client(browser, allowed, params["state"])
    tokens = exchange(browser, rp, code, verifier)
    assert tokens.status_code == 200, tokens.text
    claims = _claims(tokens.json()["id_token"])
    assert claims["acr"] == "http://eidas.europa.eu/LoA/low"
    assert claims["amr"] == ["kba"]
    assert claims["nonce"] == params["nonce"]

    # Step-up: the same browser, an app asking for substantial; only the mobile step is asked.
    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, acr_values=SUBSTANTIAL)
    page = _to_login(browser, params)
    assert "/login/mobile" in page.text and "/login/identify" not in page.text
    otp_page = follow(browser, submit(browser, page, "/login/mobile", mobile=person["mobiles"][0]))
    entered = submit(browser, otp_page, "/login/otp", otp=code_in(last_text(hoviyat_app).body))
    code = _back_to_client(browser, entered, params["state"])  # consent remembered
    claims = _claims(exchange(browser, rp, code, verifier).json()["id_token"])
    assert claims["acr"] == SUBSTANTIAL
    assert set(claims["amr"]) == {"kba", "sms", "otp"}

    # prompt=none now answers from the session without any page.
    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, prompt="none")
    silent = browser.get("/authorize", params=params)
    assert silent.status_code == 302
    assert "code" in query_of(silent.headers["location"])


def test_entity_representative_gets_tokens_naming_the_entity(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    rp = register_rp(hoviyat_app, "rp-entity")
    entity, person = next(
        (e, person_by_code(synthetic_registry_path, r["national_code"]))
        for e, r in representations(synthetic_registry_path)
        if e["status"] == "active"
        and in_force(r)
        and person_by_code(synthetic_registry_path, r["national_code"])["alive"]
    )
    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, scope="openid profile legal_entity")
    page = _to_login(browser, params)
    entity_page = follow(browser, submit(browser, page, "/login/identify",
                                         national_code=person["national_code"],
                                         birth_date=person["birth_date"]))  # fmt: skip
    consent = follow(
        browser,
        submit(browser, entity_page, "/login/entity", entity_national_id=entity["national_id"]),
    )
    allowed = submit(browser, consent, "/login/consent", decision="allow")
    code = _back_to_client(browser, allowed, params["state"])
    tokens = exchange(browser, rp, code, verifier)
    assert tokens.status_code == 200, tokens.text
    userinfo = browser.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    ).json()
    assert userinfo["legal_entity"]["national_id"] == entity["national_id"]
    assert userinfo["legal_entity"]["name"] == entity["name"]
    assert userinfo["legal_entity"]["role"]


def test_cancel_sends_access_denied_to_the_client(
    hoviyat_app: FastAPI, browser: TestClient
) -> None:
    rp = register_rp(hoviyat_app, "rp-cancel")
    _verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge)
    page = _to_login(browser, params)
    cancelled = submit(browser, page, "/login/cancel")
    back = browser.get(cancelled.headers["location"])
    answer = query_of(back.headers["location"])
    assert answer["error"] == "access_denied"
    assert answer["state"] == params["state"]
