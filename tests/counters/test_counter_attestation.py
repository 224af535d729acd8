"""An attestation issued at a counter: for the session's citizen only, recorded with the
clerk and the office, and checkable by its verification code."""

from __future__ import annotations

import re

from counter_support import ATTEST, Scene, csrf_of, entries, key_of, open_session, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient


def _attest(browser: TestClient, session_id: str, national_code: str) -> object:
    return browser.post(
        f"/console/counter/sessions/{session_id}/act",
        data={
            "csrf_token": csrf_of(browser),
            "service": ATTEST,
            "national_code": national_code,
            "purpose": "ثبت‌نام در دانشگاه",
            "facts": ["given_name", "family_name", "alive"],
        },
    )


def test_a_clerk_issues_the_citizen_an_attestation_they_can_share(
    ca_ready: FastAPI, scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_b)
    session_id = open_session(scene, browser, scene.office_b, scene.citizen)
    answer = _attest(browser, session_id, scene.citizen.code)
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    found = re.search(r'data-verification-code="([^"]+)"', answer.text)  # type: ignore[attr-defined]
    assert found is not None
    acts = entries(scene.app, "counter_service", session_id=session_id)
    assert [a.outcome for a in acts] == ["requested", "issued"]
    assert {a.actor_id for a in acts} == {key_of(scene.app, scene.clerk_b)}
    assert {a.subject_hash for a in acts} == {key_of(scene.app, scene.citizen)}
    issued = entries(scene.app, "attestation.issued")
    assert len(issued) == 1 and issued[0].subject_hash == key_of(scene.app, scene.citizen)
    assert acts[1].detail["attestation_tracking_code"] == issued[0].tracking_code
    check = browser.get("/attestations/check", params={"code": found.group(1), "lang": "en"})
    assert check.status_code == 200 and scene.citizen.person.first_name in check.text


def test_an_office_without_attestations_on_its_policy_cannot_issue_one(
    ca_ready: FastAPI, scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    assert _attest(browser, session_id, scene.citizen.code).status_code == 403  # type: ignore[attr-defined]
    assert entries(scene.app, "attestation.issued") == []


def test_an_attestation_for_another_citizen_is_refused(
    ca_ready: FastAPI, scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_b)
    session_id = open_session(scene, browser, scene.office_b, scene.citizen)
    assert _attest(browser, session_id, scene.other.code).status_code == 403  # type: ignore[attr-defined]
    assert entries(scene.app, "attestation.issued") == []
    refused = [
        e for e in entries(scene.app, "counter_refused") if e.detail["reason"] == "other_citizen"
    ]
    assert refused[0].subject_hash == key_of(scene.app, scene.other)
