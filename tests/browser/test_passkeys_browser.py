"""Passkeys in a real browser: Chromium's virtual authenticator (DevTools protocol
``WebAuthn.addVirtualAuthenticator``) registers a passkey and signs in at level high.

The page's script (``/login/static/passkeys.js``) runs under the high page's
CSP; the authenticator is a CTAP2 platform authenticator with user
verification, so the ceremony is the one a phone or laptop runs. WebAuthn
refuses IP addresses as RP IDs, so this app's issuer is ``http://localhost``
(a secure context, as browsers define it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.chromium import needs_chromium
from fastapi import FastAPI
from fixtures_app import LiveServer
from oidc.login_helpers import code_in, last_text, living_with_mobile, make_client, new_interaction
from sqlmodel import select

from idp.settings import Settings
from idp.storage.login import LoginSession
from idp.storage.passkeys import Passkey
from policies import assurance

pytestmark = needs_chromium


@pytest.fixture
def hoviyat_settings(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path, server_port: int
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="synthetic",
        registry_path=synthetic_registry_path,
        issuer=f"http://localhost:{server_port}",
    )


@pytest.fixture
def passkey_page(chromium: Any, live_server: LiveServer) -> Iterator[tuple[Any, Any]]:
    """A page with a virtual CTAP2 platform authenticator that verifies its user."""
    context = chromium.new_context()
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    page.console_messages = messages
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.authenticator = (cdp, added["authenticatorId"])
    yield page, cdp
    context.close()


def _session(app: FastAPI) -> LoginSession:
    with app.state.hoviyat.db.session() as db:
        rows = db.exec(select(LoginSession)).all()
    (live,) = [row for row in rows if row.ended_at is None]
    return live


def _to_high_page(page: Any, app: FastAPI, url: str, person: dict[str, Any], lang: str) -> None:
    interaction = new_interaction(app, make_client(app), acr_values=[assurance.HIGH])
    page.goto(f"{url}/login?interaction={interaction}&lang={lang}")
    page.fill("#national_code", person["national_code"])
    page.fill("#birth_date", person["birth_date_jalali"])
    page.locator('form[action="/login/identify"] button[type=submit]').click()
    page.fill("#mobile", person["mobiles"][0])
    page.locator('form[action="/login/mobile"] button[type=submit]').first.click()
    page.wait_for_selector("#otp")
    page.fill("#otp", code_in(last_text(app).body))
    page.locator('form[action="/login/otp"] button[type=submit]').click()
    page.wait_for_selector("#passkey-form button[type=submit]")


@pytest.mark.parametrize(
    ("lang", "register", "sign_in", "consent"),
    [
        ("fa", "ثبت گذرکلید و ورود", "ورود با گذرکلید", "اجازه"),
        ("en", "Register a passkey and sign in", "Sign in with a passkey", "Permission"),
    ],
)
def test_register_a_passkey_then_sign_in_at_high_with_chromium(
    hoviyat_app: FastAPI,
    live_server: LiveServer,
    passkey_page: tuple[Any, Any],
    synthetic_registry_path: Path,
    tmp_path: Path,
    lang: str,
    register: str,
    sign_in: str,
    consent: str,
) -> None:
    page, cdp = passkey_page
    person = living_with_mobile(synthetic_registry_path)
    origin = hoviyat_app.state.hoviyat.settings.issuer  # localhost, not the server's 127.0.0.1
    _to_high_page(page, hoviyat_app, origin, person, lang)
    assert page.evaluate("document.documentElement.dir") == ("rtl" if lang == "fa" else "ltr")
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        shot = tmp_path / f"high-{lang}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width

    # No passkey yet: the page offers to register one and signs in with it at once.
    page.get_by_role("button", name=register).click()
    page.get_by_role("heading", name=consent).wait_for()
    assert page.evaluate("document.getElementById('passkey-error')") is None
    session = _session(hoviyat_app)
    assert session.acr == assurance.HIGH
    assert {"hwk", "user"} <= set(session.amr)
    authenticator_id = page.authenticator[1]
    (held,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})[
        "credentials"
    ]
    with hoviyat_app.state.hoviyat.db.session() as db:
        (stored,) = db.exec(select(Passkey)).all()
    assert stored.sign_count == held["signCount"] >= 1

    # A later login that needs high: the same browser signs in with the passkey alone.
    again = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[assurance.HIGH])
    with hoviyat_app.state.hoviyat.db.session() as db:
        row = db.get(LoginSession, session.id)
        assert row is not None
        row.acr = assurance.SUBSTANTIAL  # as a session that stepped up to substantial only
        db.add(row)
    page.goto(f"{origin}/login?interaction={again}&lang={lang}")
    page.get_by_role("button", name=sign_in).click()
    page.get_by_role("heading", name=consent).wait_for()
    assert _session(hoviyat_app).acr == assurance.HIGH
    assert not [m for m in page.console_messages if "Content Security Policy" in m]
