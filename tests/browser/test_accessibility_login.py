"""Every login page passes axe-core with no serious or critical violation (issue 15).

Chromium walks the pages a citizen meets, in Persian and in English, on a
phone (390 px) and a desktop (1280 px) window: the first page and its errors,
the mobile and one-time-code steps, the choice of a legal entity, consent,
the high-level page (passkey or certificate), the citizen's consents, access
history and passkeys, logout, and the message pages (unknown interaction, not
signed in, a bad logout request, signed out, no client certificate). Each page
is screenshotted (into $HOVIYAT_SCREENSHOTS when set, else the test's tmp dir)
and checked with axe-core as served, under its own Content-Security-Policy,
and for sideways scrolling (reflow, which axe does not test); a failure lists
every page's findings at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.axe_support import assert_accessible, audit, axe_script, screenshot_folder
from browser.chromium import needs_chromium
from fastapi import FastAPI
from fixtures_app import LiveServer
from oidc.login_helpers import (
    REDIRECT_URI,
    SUBSTANTIAL,
    code_in,
    last_text,
    living_with_mobile,
    make_client,
    new_interaction,
)

from policies import assurance

pytestmark = needs_chromium

WIDTHS = {390: 844, 1280: 800}
LANGUAGES = ("fa", "en")


@pytest.fixture(scope="module")
def chromium(chromium: Any) -> Any:
    """The conftest's browser, once axe-core is installed (else the module's tests skip,
    with the reason, before a page is opened)."""
    axe_script()
    return chromium


class Walk:
    """One browser context at one width and language; gathers every page's findings."""

    def __init__(self, chromium: Any, server: LiveServer, lang: str, width: int, shots: Path):
        self.context = chromium.new_context(viewport={"width": width, "height": WIDTHS[width]})
        # The consent's answer redirects to the client; it is not ours to check.
        self.context.route(f"{REDIRECT_URI}**", lambda route: route.fulfill(body="client"))
        self.page = self.context.new_page()
        self.url = server.url
        self.lang = lang
        self.width = width
        self.shots = shots
        self.findings: list[str] = []
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        label = f"login-{name}-{self.lang}-{self.width}"
        assert self.page.evaluate("document.documentElement.lang") == self.lang, label
        self.findings += audit(self.page, label, self.shots)
        self.seen.append(name)

    def goto(self, path: str, status: int) -> None:
        response = self.page.goto(f"{self.url}{path}")
        assert response is not None and response.status == status, (path, response)

    def submit(self, action: str) -> None:
        self.page.locator(f'form[action="{action}"] button[type=submit]').first.click()
        self.page.wait_for_load_state()

    def identify(self, app: FastAPI, person: dict[str, Any], **interaction: Any) -> None:
        interaction_id = new_interaction(app, make_client(app), **interaction)
        self.goto(f"/login?interaction={interaction_id}&lang={self.lang}", 200)
        if self.page.locator("#national_code").count() == 0:
            return  # this browser's session already knows who the citizen is
        self.page.fill("#national_code", person["national_code"])
        self.page.fill("#birth_date", person["birth_date_jalali"])
        self.submit("/login/identify")

    def one_time_code(self, app: FastAPI, person: dict[str, Any], check: bool) -> None:
        self.page.fill("#mobile", person["mobiles"][0])
        self.submit("/login/mobile")
        self.page.wait_for_selector("#otp")
        if check:
            self.check("otp")
            self.page.fill("#otp", "000000" if code_in(last_text(app).body) != "000000" else "1")
            self.submit("/login/otp")
            self.check("otp-wrong-code")
        self.page.fill("#otp", code_in(last_text(app).body))
        self.submit("/login/otp")


@pytest.fixture(params=[(lang, width) for lang in LANGUAGES for width in WIDTHS])
def walk(
    request: pytest.FixtureRequest, chromium: Any, live_server: LiveServer, tmp_path: Path
) -> Iterator[Walk]:
    lang, width = request.param
    walk = Walk(chromium, live_server, lang, width, screenshot_folder(tmp_path / "screenshots"))
    yield walk
    walk.context.close()


def _passed(walk: Walk, expected: list[str]) -> None:
    assert walk.seen == expected  # no page was skipped on the way
    for name in expected:
        shot = walk.shots / f"login-{name}-{walk.lang}-{walk.width}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
    assert not walk.findings, "serious or critical axe-core violations:\n" + "\n".join(
        walk.findings
    )


def test_citizen_journey_pages_have_no_serious_accessibility_violation(
    hoviyat_app: FastAPI, walk: Walk, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    lang = walk.lang
    walk.goto(f"/login?interaction=unknown&lang={lang}", 400)
    walk.check("message-unknown-interaction")
    walk.goto(f"/login/consents?lang={lang}", 401)
    walk.check("message-not-signed-in")
    walk.goto(f"/logout?post_logout_redirect_uri=https://evil.example/&lang={lang}", 400)
    walk.check("message-bad-logout")

    interaction_id = new_interaction(
        hoviyat_app, make_client(hoviyat_app), acr_values=[SUBSTANTIAL]
    )
    walk.goto(f"/login?interaction={interaction_id}&lang={lang}", 200)
    walk.check("identify")
    walk.page.fill("#national_code", "123")
    walk.page.fill("#birth_date", "not a date")
    walk.submit("/login/identify")
    walk.page.wait_for_selector("#birth_date-error")
    walk.check("identify-errors")
    walk.page.fill("#national_code", person["national_code"])
    walk.page.fill("#birth_date", person["birth_date_jalali"])
    walk.submit("/login/identify")
    walk.page.wait_for_selector("#mobile")
    walk.check("mobile")
    walk.page.fill("#mobile", "12")
    walk.submit("/login/mobile")
    walk.page.wait_for_selector("#mobile-error")
    walk.check("mobile-error")
    walk.one_time_code(hoviyat_app, person, check=True)
    walk.page.wait_for_selector('form[action="/login/consent"]')
    walk.check("consent")
    walk.page.locator('button[name="decision"][value="allow"]').click()
    walk.page.wait_for_url(f"{REDIRECT_URI}**")

    walk.goto(f"/login/consents?lang={lang}", 200)
    walk.check("consents")
    walk.goto(f"/login/history?lang={lang}", 200)
    walk.check("history")
    walk.goto(f"/login/passkeys?lang={lang}", 200)
    walk.page.wait_for_load_state("networkidle")  # passkeys.js has shown or left its form
    walk.check("passkeys")
    walk.goto(f"/login/consents?lang={lang}", 200)
    walk.submit("/login/logout")
    walk.check("message-logged-out")
    walk.goto(f"/logout?lang={lang}", 200)
    walk.check("logout")
    walk.submit("/logout")
    walk.check("logout-done")
    _passed(
        walk,
        [
            "message-unknown-interaction",
            "message-not-signed-in",
            "message-bad-logout",
            "identify",
            "identify-errors",
            "mobile",
            "mobile-error",
            "otp",
            "otp-wrong-code",
            "consent",
            "consents",
            "history",
            "passkeys",
            "message-logged-out",
            "logout",
            "logout-done",
        ],
    )


def test_entity_and_high_level_pages_have_no_serious_accessibility_violation(
    hoviyat_app: FastAPI, walk: Walk, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path, skip=1)
    walk.identify(
        hoviyat_app,
        person,
        scope=["openid", "profile", "legal_entity"],
        requested_claims=["given_name", "legal_entity"],
    )
    walk.page.wait_for_selector("#entity_national_id")
    walk.check("entity")
    walk.page.fill("#entity_national_id", "1")
    walk.page.locator("#entity_national_id").press("Enter")
    walk.page.wait_for_selector("#entity_national_id-error")
    walk.check("entity-error")

    walk.identify(hoviyat_app, person, acr_values=[assurance.HIGH])
    walk.one_time_code(hoviyat_app, person, check=False)
    walk.page.wait_for_selector('form[action="/login/certificate"]')
    walk.page.wait_for_load_state("networkidle")
    walk.check("high")
    walk.submit("/login/certificate")  # no client certificate came with the request
    walk.page.wait_for_selector("a.button")
    walk.check("message-no-certificate")
    _passed(walk, ["entity", "entity-error", "high", "message-no-certificate"])


def test_check_fails_on_an_unlabelled_field_and_a_page_that_scrolls_sideways(
    hoviyat_app: FastAPI, chromium: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    """The check can fail: the first page, broken on purpose in the browser, is refused."""
    walk = Walk(chromium, live_server, "fa", 390, tmp_path)
    try:
        interaction_id = new_interaction(hoviyat_app, make_client(hoviyat_app))
        walk.goto(f"/login?interaction={interaction_id}&lang=fa", 200)
        assert audit(walk.page, "fine") == []
        walk.page.evaluate("document.querySelector('label[for=national_code]').remove()")
        walk.page.evaluate(
            "document.querySelector('main').insertAdjacentHTML('beforeend',"
            " '<pre id=wide>' + 'x'.repeat(200) + '</pre>')"
        )
        found = audit(walk.page, "broken")
        assert any("label (critical)" in line for line in found), found
        assert any("reflow" in line and "pre#wide" in line for line in found), found
        with pytest.raises(AssertionError, match="label"):
            assert_accessible(walk.page, "broken")
    finally:
        walk.context.close()
