"""Chromium on the console (issue 15): people sign in through the real login pages.

A :class:`Desk` is one person's browser context at one width and language: it
signs in from ``/console`` the way a person does (the console sends the
browser to ``/authorize``, the login pages ask for the national code, birth
date, mobile and the texted code, and the callback opens a console session),
then visits pages. :meth:`Desk.check` screenshots each page and runs axe-core
on it as served, under its own Content-Security-Policy (see
:mod:`browser.axe_support`); findings are gathered, so one failing run names
every broken page at once.

Roles are written to storage directly (``console_support.grant``): they are the
state a walk starts from, not what it checks.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from browser.axe_support import audit, axe_script
from fastapi import FastAPI
from fixtures_app import LiveServer
from oidc.login_helpers import code_in, last_text, persons

# The console's and the counters' HTTP test support (sign-in helpers, roles, offices).
_TESTS = Path(__file__).resolve().parents[1]
for _folder in ("console", "counters"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(_TESTS / _folder))

WIDTHS = {390: 844, 1280: 800}
LANGUAGES = ("fa", "en")
WALKS = [(lang, width) for lang in LANGUAGES for width in WIDTHS]


@pytest.fixture(scope="module")
def chromium(chromium: Any) -> Any:
    """The conftest's browser, once axe-core is installed (else the module's tests skip,
    with the reason, before a page is opened)."""
    axe_script()
    return chromium


def registry_people(registry: Path) -> dict[str, dict[str, Any]]:
    """Living people with a mobile, by national code (the login pages' inputs)."""
    return {p["national_code"]: p for p in persons(registry) if p["alive"] and p["mobiles"]}


@dataclass
class Walk:
    """What every desk of one walk shares: the browser, the server, language, width."""

    chromium: Any
    server: LiveServer
    app: FastAPI
    lang: str
    width: int
    shots: Path
    findings: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    desks: list[Desk] = field(default_factory=list)

    def desk(self, person: dict[str, Any]) -> Desk:
        desk = Desk(self, person)
        self.desks.append(desk)
        return desk

    def close(self) -> None:
        for desk in self.desks:
            desk.context.close()

    def passed(self, prefix: str, expected: list[str]) -> None:
        """Every expected page was seen, in order, screenshotted, and had no finding."""
        assert self.seen == expected  # no page was skipped on the way
        for name in expected:
            shot = self.shots / f"{prefix}-{name}-{self.lang}-{self.width}.png"
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
        assert not self.findings, "serious or critical axe-core violations:\n" + "\n".join(
            self.findings
        )


class Desk:
    """One person's browser context in a :class:`Walk`."""

    def __init__(self, walk: Walk, person: dict[str, Any]) -> None:
        self.walk = walk
        self.person = person
        self.context = walk.chromium.new_context(
            viewport={"width": walk.width, "height": WIDTHS[walk.width]}
        )
        self.page = self.context.new_page()

    def url(self, path: str) -> str:
        joiner = "&" if "?" in path else "?"
        return f"{self.walk.server.url}{path}{joiner}lang={self.walk.lang}"

    def goto(self, path: str, status: int = 200) -> None:
        response = self.page.goto(self.url(path))
        assert response is not None and response.status == status, (path, response)

    def submit(self, action: str, name: str | None = None) -> None:
        """Click the submit button of the first form whose action contains ``action``
        (and, given ``name``, a field of that value: one of several alike forms)."""
        form = f'form[action*="{action}"]'
        if name is not None:
            form += f':has(input[value="{name}"])'
        selector = f"{form} button[type=submit]"
        with self.page.expect_navigation():
            self.page.locator(selector).first.click()

    def check(self, prefix: str, name: str) -> None:
        """Screenshot the page and gather its serious or critical findings."""
        walk = self.walk
        label = f"{prefix}-{name}-{walk.lang}-{walk.width}"
        assert self.page.evaluate("document.documentElement.lang") == walk.lang, label
        walk.findings += audit(self.page, label, walk.shots)
        walk.seen.append(name)

    def log_in(self, start: str, lands: str) -> None:
        """The login pages, from ``start`` (a page that sends the browser to them) until the
        browser is sent to ``lands`` (a URL glob: the client's redirect URI)."""
        person, page = self.person, self.page
        self.goto(start)
        page.wait_for_selector("#national_code")
        page.fill("#national_code", person["national_code"])
        page.fill("#birth_date", person["birth_date_jalali"])
        self.submit("/login/identify")
        page.fill("#mobile", person["mobiles"][0])
        self.submit("/login/mobile")
        page.fill("#otp", code_in(last_text(self.walk.app).body))
        self.submit("/login/otp")
        # Each desk is a fresh browser and person: the first sign-in to a client asks consent.
        # A demo client's redirect URI is not served here (and Playwright does not route a
        # redirect), so the request leaving for it is what is waited for, not its page.
        with page.expect_request(lands):
            page.locator('button[name="decision"][value="allow"]').click()

    def sign_in_to_console(self) -> None:
        self.log_in("/console", f"{self.walk.server.url}/console/callback**")
        self.page.wait_for_url(f"{self.walk.server.url}/console**")
        self.page.wait_for_load_state()
        assert self.page.locator('form[action^="/console/logout"]').count() == 1, self.page.url
