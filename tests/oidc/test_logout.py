"""RP-initiated logout: with a hint it acts at once; without one the user confirms."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import Forms
from oidc_support import (
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    log_in,
    pkce_pair,
    query_of,
    session_cookie,
)
from sqlmodel import select

from idp.storage.login import LoginSession
from idp.storage.models import AuditEntry
from verifiers.registry.base import Person


def test_logout_without_hint_asks_then_ends_the_browser_session(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    login = log_in(db, citizen.national_code)
    cookies = session_cookie(hoviyat_app, login)
    verifier, challenge = pkce_pair()
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    tokens = exchange(asgi_browser, rp, code, verifier).json()

    asked = asgi_browser.get("/logout", cookies=cookies)
    assert asked.status_code == 200
    assert 'method="post"' in asked.text and 'name="confirm"' in asked.text
    with db.read() as session:
        assert session.get(LoginSession, login.session_id).ended_at is None  # type: ignore[union-attr]

    # The confirmation form, with its CSRF token (and the cookie it is bound to).
    form = Forms(asked.text).form("/logout")
    assert form["confirm"] == "yes" and form["csrf_token"]
    done = asgi_browser.post("/logout", data=form, cookies=cookies)
    assert done.status_code == 200
    with db.read() as session:
        assert session.get(LoginSession, login.session_id).ended_at is not None  # type: ignore[union-attr]
        logouts = session.exec(select(AuditEntry).where(AuditEntry.event_type == "logout")).all()
    assert [entry.tracking_code for entry in logouts] == ["LOGIN-TEST"]
    # The grant issued under the session died with it; prompt=none now needs a login.
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 401
    silent = asgi_browser.get(
        "/authorize", params=authorization_params(rp, challenge, prompt="none"), cookies=cookies
    )
    assert query_of(silent.headers["location"])["error"] == "login_required"


def test_expired_id_token_is_still_a_good_hint(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    """RP-Initiated Logout §2: the OP should accept a hint whose exp has passed."""
    hoviyat = hoviyat_app.state.hoviyat
    login = log_in(hoviyat.db, citizen.national_code)
    hint = hoviyat.keyring.sign(
        {"iss": hoviyat.settings.issuer, "aud": rp.client_id, "sub": "x",
         "sid": login.session_id, "iat": 1, "exp": 2_000},
        typ="JWT",
    )  # fmt: skip
    response = asgi_browser.get(
        "/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example/logged-out"},
    )
    # Long expired (1970): older than any published key may be, so it is refused.
    assert response.status_code == 400
    now = int(time.time())
    hint = hoviyat.keyring.sign(
        {"iss": hoviyat.settings.issuer, "aud": rp.client_id, "sub": "x",
         "sid": login.session_id, "iat": now - 900, "exp": now - 600},
        typ="JWT",
    )  # fmt: skip
    response = asgi_browser.get(
        "/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example/logged-out"},
    )
    assert response.status_code == 302
    with hoviyat.db.read() as session:
        assert session.get(LoginSession, login.session_id).ended_at is not None  # type: ignore[union-attr]
