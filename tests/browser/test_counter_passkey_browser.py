"""Presence proven with the citizen's passkey at a service counter, in Chromium, at 390 and
1280 px, in Persian and English (issue 15, Article 14).

The citizen's passkey is a credential put on the clerk's browser's virtual
authenticator (DevTools protocol ``WebAuthn.addVirtualAuthenticator`` and
``WebAuthn.addCredential``), a CTAP2 platform authenticator that verifies its
user, as a phone held out at the counter would; its record is stored as the
citizen's own registration stores it. A clerk signs in through the real login
pages, starts a session, and the session page's one script
(``/console/counter/static/presence-passkey.js``) runs the ceremony under the
page's own Content-Security-Policy. The citizen then finds the presence in
their access history. Every page is screenshotted and checked with axe-core.

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

PAGES = ["session-awaiting-passkey", "session-present-by-passkey", "citizen-history-passkey"]
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
    """A virtual authenticator on the clerk's browser holding the citizen's credential."""
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
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    _held_out(page, clerk.context, authenticator, private_key)
    clerk.sign_in_to_console()
    clerk.goto("/console/counter")
    page.select_option("#office_id", scene.office_a)
    page.fill("#national_code", citizen.code)
    page.fill("#mobile", citizen.mobile)
    clerk.submit("/console/counter/sessions")
    # The script found WebAuthn and showed the passkey beside the code.
    page.locator("#passkey-presence").wait_for(state="visible")
    assert page.locator("#code").is_visible()
    assert page.locator("#passkey-error").is_hidden()
    clerk.check("counter", "session-awaiting-passkey")

    clerk.submit("/passkey")
    assert page.locator("#person_verification_national_code").count() == 1, page.url
    assert "notice=present" in page.url
    assert page.locator("#passkey-presence").count() == 0
    clerk.check("counter", "session-present-by-passkey")
    # The page's policy let its script load and call the server (axe's own inline
    # injection is refused by it, by design: see browser.axe_support).
    assert not [p for p in problems if "Refused to" in p], problems
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
