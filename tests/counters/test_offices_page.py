"""The administrators' counter offices page: only an admin registers offices and their people."""

from __future__ import annotations

import html

from console_support import grant
from counter_support import PERSON, Scene, csrf_of, entries, signed_in
from fastapi.testclient import TestClient

from idp.console.roles import Role
from idp.storage import counters
from verifiers.registry.synthetic import SyntheticRegistry

PAGE = "/console/counter/offices"


def _third_entity(scene: Scene) -> str:
    registry = SyntheticRegistry(scene.app.state.hoviyat.settings.registry_path)
    try:
        taken = {scene.office_a, scene.office_b}
        return next(
            e.national_id
            for e in registry.iter_entities(200)
            if e.status == "active" and e.national_id not in taken
        )
    finally:
        registry.close()


def test_an_admin_registers_an_office_and_a_clerk_named_by_the_civil_registry(
    scene: Scene, browser: TestClient
) -> None:
    grant(scene.app, scene.other.code, Role.ADMIN)
    signed_in(scene.app, browser, scene.other)
    office = _third_entity(scene)
    csrf = csrf_of(browser, PAGE)
    made = browser.post(
        PAGE, data={"csrf_token": csrf, "national_id": office, "services": [PERSON]}
    )
    assert made.status_code == 303, made.text
    added = browser.post(
        f"{PAGE}/{office}/members",
        data={"csrf_token": csrf, "national_code": scene.citizen.code, "role": "clerk"},
    )
    assert added.status_code == 303, added.text
    page = html.unescape(browser.get(PAGE + "?lang=en").text)
    assert scene.citizen.name in page and office in page
    with scene.app.state.hoviyat.db.read() as db:
        registered = counters.office(db, office)
    assert registered is not None
    assert registered.services == [PERSON]
    assert [e.outcome for e in entries(scene.app, "counter_office", office_id=office)] == [
        "registered",
        "created",
    ]


def test_an_unknown_service_or_a_second_registration_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    grant(scene.app, scene.other.code, Role.ADMIN)
    signed_in(scene.app, browser, scene.other)
    csrf = csrf_of(browser, PAGE)
    unknown = browser.post(
        PAGE,
        data={
            "csrf_token": csrf,
            "national_id": _third_entity(scene),
            "services": ["issue_certificate"],
        },
    )
    assert unknown.status_code == 400
    again = browser.post(
        PAGE, data={"csrf_token": csrf, "national_id": scene.office_a, "services": [PERSON]}
    )
    assert again.status_code == 400


def test_a_clerk_or_supervisor_cannot_register_offices_or_people(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.supervisor_a)
    assert browser.get(PAGE).status_code == 403
    csrf = csrf_of(browser)
    answer = browser.post(
        f"{PAGE}/{scene.office_a}/members",
        data={"csrf_token": csrf, "national_code": scene.supervisor_a.code, "role": "clerk"},
    )
    assert answer.status_code == 403
    refused = [
        e for e in entries(scene.app, "console_refusal") if e.detail.get("reason") == "missing_role"
    ]
    assert len(refused) == 2
    with scene.app.state.hoviyat.db.read() as db:
        roles = counters.member_roles(db, scene.office_a, refused[0].actor_id)
    assert roles == {"supervisor"}
