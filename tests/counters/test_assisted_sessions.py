"""Assisted sessions at a service counter, attacked over HTTP through the real app.

Clerks sign in to the console through the provider's own login; the citizen's
presence code is read from the development outbox, as the citizen would read
it off their phone. Every refusal must be a refusal page and an audit entry.
"""

from __future__ import annotations

import html
import threading
from datetime import timedelta

import pytest
from counter_support import (
    MOBILE,
    PERSON,
    Scene,
    csrf_of,
    entries,
    key_of,
    move_session_clock,
    open_session,
    present,
    session_id_of,
    signed_in,
    start,
    texted_code,
    verify_person,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.counters import assisted
from idp.counters.assisted import Clerk, CounterRefused
from idp.counters.config import CounterSettings
from idp.login.sessions import cookie_name, start_session
from idp.storage import counters
from idp.tracking import new_tracking_code
from policies import assurance


def _refusal(scene: Scene, reason: str) -> list:
    return [e for e in entries(scene.app, "counter_refused") if e.detail.get("reason") == reason]


def test_a_clerk_serves_a_present_citizen_and_every_act_names_clerk_citizen_and_office(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    answer = verify_person(browser, session_id, scene.citizen, csrf_of(browser))
    assert answer.status_code == 200, answer.text
    assert 'data-outcome="match"' in answer.text
    acts = entries(scene.app, "counter_service", session_id=session_id)
    assert len(acts) == 1
    act = acts[0]
    assert act.actor_type == "counter_clerk"
    assert act.actor_id == key_of(scene.app, scene.clerk_a)
    assert act.subject_hash == key_of(scene.app, scene.citizen)
    assert act.detail["office_id"] == scene.office_a and act.outcome == "match"
    # No national code in clear anywhere in the counter's entries.
    for entry in entries(scene.app, "counter_session") + acts:
        assert scene.citizen.code not in str(entry.detail)
        assert scene.clerk_a.code not in str(entry.detail)


def test_the_citizens_history_says_counter_office_and_clerk_in_persian_and_english(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    assert verify_person(browser, session_id, scene.citizen, csrf_of(browser)).status_code == 200
    hoviyat = scene.app.state.hoviyat
    with hoviyat.db.session() as db:
        office_row = counters.office(db, scene.office_a)
        assert office_row is not None
        office_name = office_row.name
        _, token = start_session(
            db,
            national_code=scene.citizen.code,
            acr=assurance.SUBSTANTIAL,
            amr=["kba", "sms"],
            tracking_code=new_tracking_code(),
            ttl_seconds=600,
        )
    clerk_name = entries(scene.app, "counter_service")[0].detail["clerk_name"]
    assert clerk_name
    other_browser.cookies.set(cookie_name(hoviyat.settings), token)
    persian = other_browser.get("/login/history")
    assert persian.status_code == 200, persian.text
    assert f"پیشخوان خدمت «{office_name}»، کارمند {clerk_name}" in html.unescape(persian.text)
    english = other_browser.get("/login/history", params={"lang": "en"})
    assert f"Service counter “{office_name}”, clerk {clerk_name}" in html.unescape(english.text)
    assert scene.clerk_a.code not in persian.text + english.text


def test_a_clerk_of_another_office_can_neither_use_the_session_nor_start_one_there(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    signed_in(scene.app, other_browser, scene.clerk_b)
    csrf = csrf_of(other_browser)
    answer = verify_person(other_browser, session_id, scene.citizen, csrf)
    assert answer.status_code == 403, answer.text
    assert other_browser.get(f"/console/counter/sessions/{session_id}").status_code == 403
    assert len(_refusal(scene, "not_your_session")) == 2
    there = start(other_browser, scene.office_a, scene.other)
    assert there.status_code == 403, there.text
    refused = _refusal(scene, "not_member_of_office")
    assert len(refused) == 1 and refused[0].actor_id == key_of(scene.app, scene.clerk_b)
    assert entries(scene.app, "counter_service") == []


def test_a_member_without_the_clerk_role_is_refused_and_audited(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.roleless)
    # The console refuses the page to one without counter_clerk or counter_supervisor.
    assert browser.get("/console/counter").status_code == 403
    console = [
        e for e in entries(scene.app, "console_refusal") if e.detail.get("reason") == "missing_role"
    ]
    assert len(console) == 1 and console[0].actor_id == key_of(scene.app, scene.roleless)


def test_a_supervisor_is_not_a_clerk(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.supervisor_a)
    csrf = csrf_of(browser)
    answer = browser.post(
        "/console/counter/sessions",
        data={
            "csrf_token": csrf,
            "office_id": scene.office_a,
            "national_code": scene.citizen.code,
            "mobile": scene.citizen.mobile,
        },
    )
    assert answer.status_code == 403, answer.text
    assert [
        e for e in entries(scene.app, "console_refusal") if e.detail.get("reason") == "missing_role"
    ]
    assert entries(scene.app, "counter_session") == []


def test_a_wrong_code_is_refused_then_the_right_one_works_once_and_replay_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    code = texted_code(scene.app, scene.citizen.mobile)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert present(browser, session_id, wrong).status_code == 400
    # Persian digits are what a Persian keyboard types.
    persian = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert present(browser, session_id, persian).status_code == 303
    replay = present(browser, session_id, code)
    assert replay.status_code == 400
    outcomes = [e.outcome for e in entries(scene.app, "counter_session", session_id=session_id)]
    assert outcomes == ["started", "otp_wrong", "otp_accepted", "otp_used"]


def test_an_expired_code_is_refused(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    code = texted_code(scene.app, scene.citizen.mobile)
    move_session_clock(scene.app, session_id, code_expires_at=timedelta(seconds=1))
    assert present(browser, session_id, code).status_code == 400
    last = entries(scene.app, "counter_session", session_id=session_id)[-1]
    assert last.outcome == "otp_expired"
    answer = verify_person(browser, session_id, scene.citizen, csrf_of(browser))
    assert answer.status_code == 403
    assert _refusal(scene, "presence_not_proven")


def test_attempts_run_out_and_then_even_the_right_code_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    code = texted_code(scene.app, scene.citizen.mobile)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(scene.app.state.hoviyat.login_settings.otp_max_attempts):
        assert present(browser, session_id, wrong).status_code == 400
    assert present(browser, session_id, code).status_code == 400
    last = entries(scene.app, "counter_session", session_id=session_id)[-1]
    assert last.outcome == "otp_exhausted"


def test_the_same_code_raced_by_two_requests_is_accepted_once(
    hoviyat_app: FastAPI, scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    code = texted_code(scene.app, scene.citizen.mobile)
    other_browser.cookies.update(browser.cookies)
    csrf = csrf_of(browser)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def race(client: TestClient) -> None:
        barrier.wait()
        answer = client.post(
            f"/console/counter/sessions/{session_id}/presence",
            data={"csrf_token": csrf, "code": code},
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=race, args=(c,)) for c in (browser, other_browser)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [303, 400]
    outcomes = sorted(
        e.outcome for e in entries(scene.app, "counter_session", session_id=session_id)
    )
    assert outcomes == ["otp_accepted", "otp_used", "started"]


def test_a_service_not_on_the_offices_policy_is_refused(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    csrf = csrf_of(browser)
    for service in (MOBILE, "issue_certificate"):
        answer = browser.post(
            f"/console/counter/sessions/{session_id}/act",
            data={
                "service": service,
                "csrf_token": csrf,
                "national_code": scene.citizen.code,
                "mobile": scene.citizen.mobile,
            },
        )
        assert answer.status_code == 403, answer.text
    refused = _refusal(scene, "service_not_in_policy")
    assert [e.detail["service"] for e in refused] == [MOBILE, "issue_certificate"]
    assert entries(scene.app, "counter_service") == []


def test_another_citizen_in_the_same_session_is_refused_and_told_in_their_history(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    answer = verify_person(browser, session_id, scene.other, csrf_of(browser))
    assert answer.status_code == 403, answer.text
    refused = _refusal(scene, "other_citizen")
    assert len(refused) == 1
    assert refused[0].subject_hash == key_of(scene.app, scene.other)
    assert entries(scene.app, "counter_service") == []


def test_an_expired_session_runs_nothing(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    move_session_clock(scene.app, session_id, expires_at=timedelta(seconds=1))
    answer = verify_person(browser, session_id, scene.citizen, csrf_of(browser))
    assert answer.status_code == 403, answer.text
    assert _refusal(scene, "session_expired")
    assert entries(scene.app, "counter_service") == []


def test_an_ended_session_runs_nothing(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = open_session(scene, browser, scene.office_a, scene.citizen)
    csrf = csrf_of(browser)
    ended = browser.post(f"/console/counter/sessions/{session_id}/end", data={"csrf_token": csrf})
    assert ended.status_code == 303
    answer = verify_person(browser, session_id, scene.citizen, csrf)
    assert answer.status_code == 403
    assert _refusal(scene, "session_ended")


def test_a_mobile_the_registry_does_not_bind_to_the_citizen_gets_no_code(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    answer = start(browser, scene.office_a, scene.citizen, mobile=scene.other.mobile)
    assert answer.status_code == 400, answer.text
    assert _refusal(scene, "mobile_not_owned")
    assert entries(scene.app, "counter_session") == []


def test_a_start_without_the_csrf_token_is_refused(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    answer = browser.post(
        "/console/counter/sessions",
        data={
            "office_id": scene.office_a,
            "national_code": scene.citizen.code,
            "mobile": scene.citizen.mobile,
        },
    )
    assert answer.status_code == 403
    assert entries(scene.app, "counter_session") == []


def test_pages_are_persian_first_and_english_on_request(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    persian = browser.get("/console/counter")
    assert persian.status_code == 200 and 'dir="rtl"' in persian.text
    assert "آغاز خدمت حضوری" in persian.text
    english = browser.get("/console/counter?lang=en")
    assert 'dir="ltr"' in english.text and "Start an assisted session" in english.text
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    page = browser.get(f"/console/counter/sessions/{session_id}?lang=en")
    assert page.status_code == 200 and "Presence code the citizen reads out" in page.text
    assert PERSON  # the policy's one service is offered after presence


def test_a_resent_code_replaces_the_last_and_sends_are_limited_per_session(
    scene: Scene, browser: TestClient
) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    first = texted_code(scene.app, scene.citizen.mobile)
    allowed = 3  # HOVIYAT_COUNTER_CODES_PER_SESSION's default: the start's code and two more
    codes = [first]
    for _ in range(allowed - 1):
        again = browser.post(
            f"/console/counter/sessions/{session_id}/resend",
            data={
                "csrf_token": csrf_of(browser),
                "national_code": scene.citizen.code,
                "mobile": scene.citizen.mobile,
            },
        )
        assert again.status_code == 303, again.text
        codes.append(texted_code(scene.app, scene.citizen.mobile))
    over = browser.post(
        f"/console/counter/sessions/{session_id}/resend",
        data={
            "csrf_token": csrf_of(browser),
            "national_code": scene.citizen.code,
            "mobile": scene.citizen.mobile,
        },
    )
    assert over.status_code == 429, over.text
    assert _refusal(scene, "too_many_codes")
    if first != codes[-1]:
        assert present(browser, session_id, first).status_code == 400
    assert present(browser, session_id, codes[-1]).status_code == 303


def test_a_resend_for_another_citizen_is_refused(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    answer = browser.post(
        f"/console/counter/sessions/{session_id}/resend",
        data={
            "csrf_token": csrf_of(browser),
            "national_code": scene.other.code,
            "mobile": scene.other.mobile,
        },
    )
    assert answer.status_code == 403, answer.text
    assert _refusal(scene, "other_citizen")


def test_a_clerk_signed_in_below_substantial_is_refused_and_audited(scene: Scene) -> None:
    # The console admits no sign-in below substantial; the counter checks again itself.
    hoviyat = scene.app.state.hoviyat
    clerk = Clerk(
        key_of(scene.app, scene.clerk_a),
        scene.clerk_a.name,
        assurance.LOW,
        frozenset({"counter_clerk"}),
    )
    with pytest.raises(CounterRefused) as refused:
        assisted.start(
            hoviyat,
            CounterSettings(),
            clerk,
            scene.office_a,
            scene.citizen.code,
            scene.citizen.mobile,
        )
    assert refused.value.reason.value == "level_too_low"
    assert _refusal(scene, "level_too_low")[0].tracking_code == refused.value.tracking_code
    assert entries(scene.app, "counter_session") == []


def test_a_session_lasts_the_configured_time(scene: Scene, browser: TestClient) -> None:
    signed_in(scene.app, browser, scene.clerk_a)
    session_id = session_id_of(start(browser, scene.office_a, scene.citizen))
    with scene.app.state.hoviyat.db.read() as db:
        row = counters.session_row(db, session_id)
    assert row is not None
    assert row.expires_at - row.created_at == timedelta(minutes=CounterSettings().session_minutes)
    assert CounterSettings().session_minutes == 20
