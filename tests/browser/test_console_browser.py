"""Every console page in Chromium, at 390 px and 1280 px, in Persian and English (issue 15).

An administrator who is also an auditor and a CA operator signs in through the real login pages
and walks the console: home, roles (asking for a role grant through the
form), approvals (the request as its requester sees it, then as a second
administrator sees and approves it), the clients list, one client, the
registration form and a new client's secret shown once, the certificates
search, issuance form and CA health, the
audit search, its results, one entry with its proof, the charts, and the
counter offices page (registering an office and adding a clerk to it through
its forms); then a counter clerk is refused the roles page, and the
administrator signs out. Each page is screenshotted (into $HOVIYAT_SCREENSHOTS
when set, else the test's tmp dir), checked with axe-core as served (no
serious or critical violation) and for sideways scrolling; a failure names
every page's findings at once.
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
    Walk,
    chromium,
    registry_people,
)
from console_support import grant
from fastapi import FastAPI
from fixtures_app import LiveServer

from idp.console.roles import Role
from idp.storage import clients as client_store
from verifiers.registry.synthetic import SyntheticRegistry

pytestmark = needs_chromium

PAGES = [
    "home",
    "roles",
    "roles-requested",
    "approvals",
    "approvals-to-decide",
    "approvals-approved",
    "approval",
    "clients",
    "client",
    "client-new",
    "client-secret",
    "certs-search",
    "certs-issue",
    "certs-health",
    "certs-lifecycle",
    "audit-search",
    "audit-results",
    "audit-entry",
    "audit-charts",
    "counter-offices",
    "counter-office-registered",
    "counter-office-member",
    "refused",
    "signed-out",
]


def service_of(app: FastAPI, client_id: str) -> str:
    with app.state.hoviyat.db.read() as db:
        client = client_store.get_client(db, client_id)
        assert client is not None
        return client.service_code


def active_entity(registry: Path) -> str:
    """A legal entity the deeds registry lists as active: one that may become an office."""
    found = SyntheticRegistry(registry)
    try:
        return next(e.national_id for e in found.iter_entities(200) if e.status == "active")
    finally:
        found.close()


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


def test_every_console_page_has_no_serious_accessibility_violation(
    hoviyat_app: FastAPI, walk: Walk, synthetic_registry_path: Path
) -> None:
    people = list(registry_people(synthetic_registry_path).values())
    admin, candidate, second, stranger = people[:4]
    grant(hoviyat_app, admin["national_code"], Role.ADMIN, Role.AUDITOR, Role.CA_OPERATOR)
    grant(hoviyat_app, second["national_code"], Role.ADMIN)
    grant(hoviyat_app, stranger["national_code"], Role.COUNTER_CLERK)
    desk = walk.desk(admin)
    page = desk.page
    desk.sign_in_to_console()
    desk.goto("/console")
    desk.check("console", "home")

    desk.goto("/console/roles")
    desk.check("console", "roles")
    page.fill("#national_code", candidate["national_code"])
    page.select_option("#role", Role.AUDITOR.value)
    desk.submit("/console/roles/grant")
    assert page.locator("td code").count() >= 1
    desk.check("console", "roles-requested")

    desk.goto("/console/approvals")
    assert page.locator("tbody tr").count() == 1  # the request, waiting for another admin
    desk.check("console", "approvals")
    other = walk.desk(second)
    other.sign_in_to_console()
    other.goto("/console/approvals")
    assert other.page.locator('form[action*="/approve"]').count() == 1
    other.check("console", "approvals-to-decide")
    other.submit("/approve")
    assert other.page.locator('[role="status"]').count() == 1
    other.check("console", "approvals-approved")
    other.goto("/console/approvals/1")  # the grant, decided and carried out
    other.check("console", "approval")

    desk.goto("/console/clients")
    desk.check("console", "clients")
    with page.expect_navigation():
        page.locator('a[href^="/console/clients/demo-bank"]').click()
    desk.check("console", "client")
    desk.goto("/console/new-client")
    assert page.locator('form[action^="/console/new-client"]').count() == 1
    desk.check("console", "client-new")
    page.fill("#name", "Back office")
    page.select_option("#service_code", service_of(hoviyat_app, "demo-bank"))
    page.locator('input[name="grant_types"][value="client_credentials"]').check()
    page.select_option("#auth_method", "client_secret_basic")
    desk.submit("/console/new-client")
    assert page.locator("#form_error").count() == 0  # registered: its secret, shown once
    desk.check("console", "client-secret")

    desk.goto("/console/certs")
    desk.check("console", "certs-search")
    desk.goto("/console/certs/issue")
    assert page.locator('input[type="file"]').count() >= 1
    desk.check("console", "certs-issue")
    desk.goto("/console/certs/health")
    desk.check("console", "certs-health")
    desk.goto("/console/certs/lifecycle")
    assert page.locator('form[action^="/console/certs/lifecycle/rollover"]').count() == 1
    desk.check("console", "certs-lifecycle")

    desk.goto("/console/audit")
    desk.check("console", "audit-search")
    desk.submit("/console/audit")
    assert page.locator("#results").count() == 1
    assert page.locator('a[href^="/console/audit/entries/"]').count() >= 1
    desk.check("console", "audit-results")
    with page.expect_navigation():
        page.locator('a[href^="/console/audit/entries/"]').first.click()
    desk.check("console", "audit-entry")

    desk.goto("/console/audit/charts")
    assert page.locator("svg").count() >= 1
    desk.check("console", "audit-charts")

    desk.goto("/console/counter/offices")
    desk.check("console", "counter-offices")
    page.fill("#national_id", active_entity(synthetic_registry_path))
    page.locator('input[name="services"][value="person_verification"]').check()
    desk.submit("/console/counter/offices")
    assert page.locator("#member-code-1").count() == 1  # the office, with its people's form
    desk.check("console", "counter-office-registered")
    page.fill("#member-code-1", candidate["national_code"])
    desk.submit("/members")
    assert page.locator("section.office li").count() == 1
    desk.check("console", "counter-office-member")

    clerk = walk.desk(stranger)  # a counter clerk, not an administrator
    clerk.sign_in_to_console()
    clerk.goto("/console/roles", status=403)
    clerk.check("console", "refused")

    desk.submit("/console/logout")
    assert desk.page.locator('form[action^="/console/logout"]').count() == 0
    desk.check("console", "signed-out")
    walk.passed("console", PAGES)
