"""Presence confirmed by the citizen with their own passkey on their own phone, in Chromium:
the clerk's console at 390 and 1280 px, the citizen's phone at 390 px, in Persian and
English (issue 15, Article 14).

A clerk signs in through the real login pages, starts a session and shows the QR
code; the clerk's page runs no script. The citizen's phone is a second browser
context whose virtual authenticator (DevTools protocol
``WebAuthn.addVirtualAuthenticator`` and ``WebAuthn.addCredential``, a CTAP2
platform authenticator that verifies its user) holds the citizen's credential,
its record stored as the citizen's own registration stores it. The phone opens
the confirmation URL, reads office and clerk, and confirms; the page's one script
(``/counter/static/confirm-passkey.js``) runs the ceremony under the login's
high-page Content-Security-Policy. The clerk's "Check" shows the presence, and
the citizen finds it in their access history. Every page is screenshotted and
checked with axe-core.

WebAuthn refuses IP addresses as RP IDs, so this app's issuer, and the address
the browser uses, is ``http://localhost`` (a secure context, as browsers define it).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.axe_support import screenshot_folder
from browser.chromium import needs_chromium
from browser.console_browser_support import (  # noqa: F401 (fixtures)
    WALKS,
    Walk,
    chromium,
    registry_people,
)
from counter_support import Scene, build_scene
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fixtures_app import LiveServer
from oidc.login_helpers import REDIRECT_URI, SUBSTANTIAL, make_client, new_interaction
from passkey_presence_support import SoftPasskey, b64url, register_passkey

from idp.settings import Settings
from idp.storage import counters, passkeys
from verifiers.registry.base import Person
from verifiers.registry.synthetic import SyntheticRegistry

pytestmark = needs_chromium

PAGES = [
    "session-awaiting-passkey",
    "session-link-shown",
    "citizen-phone-confirm",
    "citizen-phone-confirmed",
    "session-present-by-passkey",
    "citizen-history-passkey",
]
PHONE = {"width": 390, "height": 844}
HISTORY_WORDS = {"fa": "حضور با گذرکلید تأیید شد", "en": "Presence confirmed with a passkey"}


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
def live_server(hoviyat_app: FastAPI, server_port: int) -> Iterator[LiveServer]:
    """Served on loopback, visited at localhost (the issuer and RP ID)."""
    with LiveServer(hoviyat_app, server_port) as server:
        server.url = f"http://localhost:{server_port}"
        yield server


@pytest.fixture(scope="module")
def staff_and_citizens(synthetic_registry_path: Path) -> tuple[list[tuple[Person, str]], list[str]]:
    registry = SyntheticRegistry(synthetic_registry_path)
    try:
        people = [
            (person, mobiles[0])
            for person, mobiles in registry.iter_persons(400)
            if person.alive and mobiles
        ]
        entities = [e.national_id for e in registry.iter_entities(200) if e.status == "active"]
    finally:
        registry.close()
    assert len(people) >= 7 and len(entities) >= 2
    return people[:7], entities[:2]


@pytest.fixture(params=WALKS, ids=[f"{lang}-{width}" for lang, width in WALKS])
def walk(
    request: pytest.FixtureRequest,
    chromium: Any,  # noqa: F811
    live_server: LiveServer,
    hoviyat_app: FastAPI,
    tmp_path: Path,
) -> Iterator[Walk]:
    lang, width = request.param
    shots = screenshot_folder(tmp_path / "screenshots")
    walk = Walk(chromium, live_server, hoviyat_app, lang, width, shots)
    yield walk
    walk.close()


def _citizens_passkey(app: FastAPI, scene: Scene) -> tuple[SoftPasskey, str]:
    """The citizen's passkey: its record stored, its key for the authenticator (PKCS#8)."""
    authenticator = register_passkey(app, scene.citizen)
    pkcs8 = authenticator.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return authenticator, base64.b64encode(pkcs8).decode()


def _held_out(page: Any, context: Any, authenticator: SoftPasskey, private_key: str) -> Any:
    """A virtual authenticator on the citizen's phone holding the citizen's credential."""
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
    cdp.send(
        "WebAuthn.addCredential",
        {
            "authenticatorId": added["authenticatorId"],
            "credential": {
                "credentialId": base64.b64encode(authenticator.credential_id).decode(),
                "isResidentCredential": False,
                "rpId": authenticator.rp_id,
                "privateKey": private_key,
                "signCount": 0,
            },
        },
    )
    return cdp


def test_the_citizens_passkey_proves_presence_in_chromium(
    hoviyat_app: FastAPI,
    walk: Walk,
    synthetic_registry_path: Path,
    staff_and_citizens: tuple[list[tuple[Person, str]], list[str]],
) -> None:
    scene: Scene = build_scene(hoviyat_app, *staff_and_citizens)
    logins = registry_people(synthetic_registry_path)
    authenticator, private_key = _citizens_passkey(hoviyat_app, scene)
    with hoviyat_app.state.hoviyat.db.read() as db:
        office = counters.office(db, scene.office_a)
    assert office is not None
    citizen = scene.citizen

    clerk = walk.desk(logins[scene.clerk_a.code])
    page = clerk.page
    problems: list[str] = []
    clerk.sign_in_to_console()
    clerk.goto("/console/counter")
    page.select_option("#office_id", scene.office_a)
    page.fill("#national_code", citizen.code)
    page.fill("#mobile", citizen.mobile)
    clerk.submit("/console/counter/sessions")
    assert page.locator("#remote-presence").is_visible() and page.locator("#code").is_visible()
    # The QR code is shown at once; "New QR code" replaces it (the first stops working).
    assert page.locator("#remote-presence svg").is_visible()
    first = page.inner_text("#confirm-url").strip()
    clerk.check("counter", "session-awaiting-passkey")
    clerk.submit("/link")
    # The clerk's page: a QR code drawn in SVG, the URL as text, and no script at all.
    assert page.locator("#remote-presence svg").is_visible()
    assert page.locator("script").count() == 0
    url = page.inner_text("#confirm-url").strip()
    assert url.startswith(f"{walk.server.url}/counter/confirm/") and url != first, url
    clerk.check("counter", "session-link-shown")

    # The citizen's own phone: another browser context, 390 px, the passkey on it.
    citizen_phone = walk.desk(logins[citizen.code])
    citizen_phone.context.close()
    citizen_phone.context = walk.chromium.new_context(viewport=PHONE)
    citizen_phone.page = phone_page = citizen_phone.context.new_page()
    phone_page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    _held_out(phone_page, citizen_phone.context, authenticator, private_key)
    citizen_phone.goto(url.removeprefix(walk.server.url))
    phone_page.locator("#confirm-form").wait_for(state="visible")
    asks = phone_page.inner_text("#who-asks")
    assert office.name in asks and scene.clerk_a.name in asks, asks
    assert phone_page.inner_text("#check-code") in page.inner_text("#check-code")
    citizen_phone.check("counter", "citizen-phone-confirm")
    with phone_page.expect_navigation():
        phone_page.locator("#confirm-form button[type=submit]").click()
    assert "/counter/confirmed" in phone_page.url, phone_page.url
    assert phone_page.locator("#confirm-form").count() == 0
    citizen_phone.check("counter", "citizen-phone-confirmed")
    # The page's policy let its script load and call the server (axe's own inline
    # injection is refused by it, by design: see browser.axe_support).
    assert not [p for p in problems if "Refused to" in p], problems

    with page.expect_navigation():
        page.locator("#check-presence").click()
    assert page.locator("#person_verification_national_code").count() == 1, page.url
    assert page.locator("#remote-presence").count() == 0
    clerk.check("counter", "session-present-by-passkey")
    with hoviyat_app.state.hoviyat.db.read() as db:
        stored = passkeys.by_credential_id(db, b64url(authenticator.credential_id))
        (row,) = counters.review_queue(db, scene.office_a, 5)
    assert stored is not None and stored.sign_count >= 1 and stored.last_used_at is not None
    assert row.present_at is not None

    visitor = walk.desk(logins[citizen.code])
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[SUBSTANTIAL])
    visitor.log_in(f"/login?interaction={interaction}", f"{REDIRECT_URI}**")
    visitor.page = visitor.context.new_page()
    visitor.goto("/login/history")
    text = visitor.page.inner_text("main")
    assert office.name in text and scene.clerk_a.name in text, text
    assert HISTORY_WORDS[walk.lang] in text, text
    visitor.check("counter", "citizen-history-passkey")
    walk.passed("counter", PAGES)
