"""The whole service counter journey in Chromium, at 390 and 1280 px, in Persian and English.

Article 14 (issue 15): a clerk signs in through the real login pages,
mistypes the citizen's national code, starts an assisted session for the
citizen at the counter, types first a wrong code and then the one texted to
the citizen's registered mobile, runs the one service the office lists
(identity verification), and ends the session. The office's supervisor signs
in, sees the session in the queue and flags it. The citizen signs in to a
service and finds "service counter X, clerk Y" in the access history. Every
page on the way is screenshotted and checked with axe-core as served (no
serious or critical violation) and for sideways scrolling.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.axe_support import screenshot_folder
from browser.chromium import needs_chromium
from browser.console_browser_support import (  # noqa: F401 (fixtures)
    WALKS,
    Desk,
    Walk,
    chromium,
    registry_people,
)
from counter_support import Scene, build_scene, texted_code
from fastapi import FastAPI
from fixtures_app import LiveServer
from oidc.login_helpers import REDIRECT_URI, SUBSTANTIAL, make_client, new_interaction

from idp.storage import counters
from verifiers.registry.base import Person
from verifiers.registry.synthetic import SyntheticRegistry

pytestmark = needs_chromium

PAGES = [
    "clerk-home",
    "clerk-home-error",
    "session-awaiting",
    "session-wrong-code",
    "session-present",
    "session-result",
    "session-ended",
    "supervisor-home",
    "review",
    "review-flagged",
    "citizen-history",
]


@pytest.fixture(scope="module")
def staff_and_citizens(synthetic_registry_path: Path) -> tuple[list[tuple[Person, str]], list[str]]:
    """People with a registered mobile and two active legal entities (the offices)."""
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


def _desk(walk: Walk, logins: dict[str, dict[str, Any]], national_code: str) -> Desk:
    return walk.desk(logins[national_code])


def test_counter_journey_pages_have_no_serious_accessibility_violation(
    hoviyat_app: FastAPI,
    walk: Walk,
    synthetic_registry_path: Path,
    staff_and_citizens: tuple[list[tuple[Person, str]], list[str]],
) -> None:
    scene: Scene = build_scene(hoviyat_app, *staff_and_citizens)
    logins = registry_people(synthetic_registry_path)
    with hoviyat_app.state.hoviyat.db.read() as db:
        office = counters.office(db, scene.office_a)
    assert office is not None
    citizen = scene.citizen

    clerk = _desk(walk, logins, scene.clerk_a.code)
    page = clerk.page
    clerk.sign_in_to_console()
    clerk.goto("/console/counter")
    clerk.check("counter", "clerk-home")
    page.fill("#national_code", "123")
    page.fill("#mobile", citizen.mobile)
    clerk.submit("/console/counter/sessions")
    assert page.locator("#start-error").count() == 1
    clerk.check("counter", "clerk-home-error")
    page.select_option("#office_id", scene.office_a)
    page.fill("#national_code", citizen.code)
    page.fill("#mobile", citizen.mobile)
    clerk.submit("/console/counter/sessions")
    assert page.locator("#code").count() == 1, page.url
    clerk.check("counter", "session-awaiting")
    code = texted_code(hoviyat_app, citizen.mobile)
    page.fill("#code", "000000" if code != "000000" else "111111")
    clerk.submit("/presence")
    assert page.locator("#session-error").count() == 1
    clerk.check("counter", "session-wrong-code")
    page.fill("#code", code)
    clerk.submit("/presence")
    assert page.locator("#person_verification_national_code").count() == 1, page.url
    clerk.check("counter", "session-present")
    person = citizen.person
    page.fill("#person_verification_national_code", citizen.code)
    page.fill("#person_verification_first_name", person.first_name)
    page.fill("#person_verification_last_name", person.last_name)
    page.fill("#person_verification_birth_date", person.birth_date.isoformat())
    clerk.submit("/act", name="person_verification")
    assert page.locator("[data-outcome]").count() == 1
    clerk.check("counter", "session-result")
    clerk.submit("/end")
    assert page.locator('form[action*="/act"]').count() == 0
    clerk.check("counter", "session-ended")

    supervisor = _desk(walk, logins, scene.supervisor_a.code)
    page = supervisor.page
    supervisor.sign_in_to_console()
    supervisor.goto("/console/counter")
    supervisor.check("counter", "supervisor-home")
    with page.expect_navigation():
        page.locator(f'a[href^="/console/counter/offices/{scene.office_a}/review"]').click()
    assert page.locator("li[data-session]").count() == 1
    supervisor.check("counter", "review")
    page.fill("#reason-1", "checking an identity verification")
    supervisor.submit("/flag")
    assert page.locator('form[action*="/flag"]').count() == 0  # flagged: no form left
    supervisor.check("counter", "review-flagged")

    visitor = _desk(walk, logins, citizen.code)
    page = visitor.page
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[SUBSTANTIAL])
    visitor.log_in(f"/login?interaction={interaction}", f"{REDIRECT_URI}**")
    # That tab is left at the demo client's address (not served); the session is the
    # browser's, so the history opens in another tab.
    page = visitor.page = visitor.context.new_page()
    visitor.goto("/login/history")
    text = page.inner_text("main")
    assert office.name in text and scene.clerk_a.name in text, text
    visitor.check("counter", "citizen-history")
    walk.passed("counter", PAGES)
