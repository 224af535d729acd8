"""The supervisor's queue and flags: only an office's supervisor flags, auditors find flags."""

from __future__ import annotations

from counter_support import Scene, csrf_of, entries, key_of, open_session, signed_in
from fastapi.testclient import TestClient


def _queue(scene: Scene, office: str) -> str:
    return f"/console/counter/offices/{office}/review"


def test_a_supervisor_flags_a_session_and_auditors_find_it_by_event_type(
    scene: Scene,
    browser: TestClient,
    other_browser: TestClient,
    app_client: TestClient,
    admin_token: str,
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    signed_in(scene.app, other_browser, scene.supervisor_a)
    queue = other_browser.get(_queue(scene, scene.office_a))
    assert queue.status_code == 200 and session_id in queue.text
    csrf = csrf_of(other_browser, _queue(scene, scene.office_a))
    flagged = other_browser.post(
        f"/console/counter/offices/{scene.office_a}/flag",
        data={
            "csrf_token": csrf,
            "session_id": session_id,
            "reason": "کد ملی را از روی کارت دیگری خواند",
        },
    )
    assert flagged.status_code == 200, flagged.text
    found = app_client.get(
        "/v1/audit/entries",
        params={"event_type": "counter_flagged"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert found.status_code == 200, found.text
    flags = found.json()["entries"]
    assert len(flags) == 1
    assert flags[0]["actor_id"] == key_of(scene.app, scene.supervisor_a)


def test_a_clerk_cannot_flag_or_see_the_queue(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    csrf = csrf_of(browser)
    assert browser.get(_queue(scene, scene.office_a)).status_code == 403
    answer = browser.post(
        f"/console/counter/offices/{scene.office_a}/flag",
        data={"csrf_token": csrf, "session_id": session_id, "reason": "covering my tracks"},
    )
    assert answer.status_code == 403, answer.text
    refused = [
        e for e in entries(scene.app, "console_refusal") if e.detail.get("reason") == "missing_role"
    ]
    assert len(refused) == 2
    assert entries(scene.app, "counter_flagged") == []


def test_another_offices_supervisor_cannot_flag(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    signed_in(scene.app, other_browser, scene.supervisor_b)
    assert other_browser.get(_queue(scene, scene.office_a)).status_code == 403
    # Through their own office's path, the session is not theirs either.
    csrf = csrf_of(other_browser, _queue(scene, scene.office_b))
    answer = other_browser.post(
        f"/console/counter/offices/{scene.office_b}/flag",
        data={"csrf_token": csrf, "session_id": session_id, "reason": "not mine to judge"},
    )
    assert answer.status_code == 403
    reasons = [e.detail["reason"] for e in entries(scene.app, "counter_refused")]
    assert reasons == ["not_member_of_office", "no_such_session"]
    assert {e.actor_type for e in entries(scene.app, "counter_refused")} == {"counter_supervisor"}
    assert entries(scene.app, "counter_flagged") == []
