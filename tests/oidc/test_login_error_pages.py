"""Refusals a citizen's browser lands on after /authorize: an error page in their language.

``/authorize/complete`` and ``/logout`` are reached by following a link or a
redirect, so a browser (``Accept: text/html``) sees the same page ``/authorize``
shows for its own refusals, Persian first; a program keeps RFC 9457 problem JSON.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import Forms
from oidc_support import (
    LOGOUT_URI,
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    log_in,
    pkce_pair,
    start,
)

from verifiers.registry.base import Person

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PROGRAM = {"Accept": "application/problem+json"}


def _is_error_page(response: object, lang: str) -> bool:
    page = Forms(response.text)  # type: ignore[attr-defined]
    return (
        response.status_code == 400  # type: ignore[attr-defined]
        and "location" not in response.headers  # type: ignore[attr-defined]
        and response.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
        and page.html_attrs["lang"] == lang
    )


def test_citizen_who_returns_before_finishing_the_login_sees_a_persian_page(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    interaction = start(asgi_browser, "/authorize?" + _query(authorization_params(rp, challenge)))
    shown = asgi_browser.get(
        "/authorize/complete", params={"interaction": interaction}, headers=BROWSER
    )
    assert _is_error_page(shown, "fa")
    assert "ورود هنوز تمام نشده است" in shown.text  # "the login is not finished yet"


def test_citizen_following_a_stale_link_sees_that_the_login_was_not_found(
    asgi_browser: TestClient,
) -> None:
    for params in ({"interaction": "no-such-login"}, {}):
        shown = asgi_browser.get("/authorize/complete", params=params, headers=BROWSER)
        assert _is_error_page(shown, "fa")
        assert "این ورود پیدا نشد" in shown.text  # "this login was not found"


def test_citizen_who_prefers_english_reads_the_page_in_english(asgi_browser: TestClient) -> None:
    shown = asgi_browser.get(
        "/authorize/complete",
        params={"interaction": "no-such-login"},
        headers={**BROWSER, "Accept-Language": "en-GB,en;q=0.9"},
    )
    assert _is_error_page(shown, "en")
    assert "This login was not found" in shown.text


def test_a_program_still_gets_problem_json_from_authorize_complete(
    asgi_browser: TestClient,
) -> None:
    for headers in (PROGRAM, {}):
        answer = asgi_browser.get(
            "/authorize/complete", params={"interaction": "no-such-login"}, headers=headers
        )
        assert answer.status_code == 400
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"].endswith("/interaction-unknown")


def test_citizen_sent_to_an_unregistered_logout_address_sees_a_page_and_stays_logged_in(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    verifier, challenge = pkce_pair()
    login = log_in(db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    issued = exchange(asgi_browser, rp, code, verifier).json()
    for params in (
        {"id_token_hint": issued["id_token"], "post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": LOGOUT_URI, "client_id": rp.client_id},
    ):
        shown = asgi_browser.get("/logout", params=params, headers=BROWSER)
        assert _is_error_page(shown, "fa")
        assert "خارج نشدید" in shown.text  # "you are still logged in"
        assert "evil.example" not in shown.text
        # A program asking the same gets the problem document.
        answer = asgi_browser.get("/logout", params=params, headers=PROGRAM)
        assert answer.status_code == 400
        assert answer.json()["type"].endswith("/logout-request-invalid")
    # Nothing was ended by the refusals.
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 200


def _query(params: dict[str, str | None]) -> str:
    return urlencode({key: value for key, value in params.items() if value is not None})
