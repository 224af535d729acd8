"""Presence proven with the citizen's own passkey at a service counter, attacked over HTTP.

Clerks sign in to the console through the provider's own login; the citizen's
passkey is a software authenticator (``passkey_presence_support``) whose
record is stored as the citizen's registration stores it. Every answer is
checked by the real WebAuthn code and every refusal leaves an audit entry
naming clerk, citizen and office.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from counter_support import (
    Scene,
    csrf_of,
    entries,
    key_of,
    move_session_clock,
    present,
    session_id_of,
    signed_in,
    start,
    texted_code,
    verify_person,
)
from fastapi.testclient import TestClient
from passkey_presence_support import (
    UP,
    ask_options,
    b64url,
    csrf_on,
    offers_passkey,
    options_for,
    post_assertion,
    register_passkey,
)

from idp.audit.history import history_item
from idp.storage import counters, passkeys


def _presence(scene: Scene, session_id: str) -> list:
    return [
        e
        for e in entries(scene.app, "counter_session", session_id=session_id)
        if e.detail.get("method") == "passkey"
    ]


def _is_present(scene: Scene, session_id: str) -> bool:
    with scene.app.state.hoviyat.db.read() as db:
        row = counters.session_row(db, session_id)
    assert row is not None
    return row.present_at is not None


def _awaiting(scene: Scene, browser: TestClient) -> str:
    signed_in(scene.app, browser, scene.clerk_a)
    return session_id_of(start(browser, scene.office_a, scene.citizen))


def test_the_citizens_passkey_proves_presence_once_and_names_clerk_citizen_and_office(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    page = browser.get(f"/console/counter/sessions/{session_id}")
    # Offered beside the code (hidden until the script finds WebAuthn), under a policy
    # that lets this origin's one script run and call its endpoints, and nothing inline.
    assert offers_passkey(page.text) and 'name="code"' in page.text
    assert '<script src="/console/counter/static/presence-passkey.js" defer></script>' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    script = browser.get("/console/counter/static/presence-passkey.js")
    assert script.status_code == 200 and "navigator.credentials.get" in script.text

    options = options_for(browser, session_id)
    assert options["userVerification"] == "required"
    assert options["rpId"] == authenticator.rp_id
    assert [c["id"] for c in options["allowCredentials"]] == [
        json.loads(authenticator.get(options))["id"]
    ]
    answer = post_assertion(browser, session_id, authenticator.get(options))
    assert answer.status_code == 200, answer.text
    assert answer.json()["next"] == f"/console/counter/sessions/{session_id}?notice=present"
    assert _is_present(scene, session_id)
    # A proven session runs services, exactly as after the texted code.
    csrf = csrf_on(browser, session_id)
    assert 'data-outcome="match"' in verify_person(browser, session_id, scene.citizen, csrf).text

    (accepted,) = _presence(scene, session_id)
    assert accepted.outcome == "passkey_accepted"
    assert accepted.actor_type == "counter_clerk"
    assert accepted.actor_id == key_of(scene.app, scene.clerk_a)
    assert accepted.subject_hash == key_of(scene.app, scene.citizen)
    assert accepted.detail["office_id"] == scene.office_a
    assert scene.citizen.code not in str(accepted.detail)
    # The citizen's history says which office and clerk, and in words.
    item = history_item(accepted, {}, {})
    assert item["agency"]["clerk"] == scene.clerk_a.name
    assert item["outcome"]["en"] == "Presence confirmed with a passkey"
    with scene.app.state.hoviyat.db.read() as db:
        stored = passkeys.by_credential_id(db, b64url(authenticator.credential_id))
    assert stored is not None and stored.sign_count == authenticator.sign_count


def test_a_citizen_without_a_passkey_gets_the_code_only_and_a_no_script_page(
    scene: Scene, browser: TestClient
) -> None:
    session_id = _awaiting(scene, browser)
    page = browser.get(f"/console/counter/sessions/{session_id}")
    assert 'name="code"' in page.text and "passkey-presence" not in page.text
    assert (
        "<script" not in page.text and "script-src" not in page.headers["content-security-policy"]
    )
    assert ask_options(browser, session_id).status_code == 409


def test_without_javascript_the_code_still_proves_presence_when_a_passkey_is_offered(
    scene: Scene, browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    assert offers_passkey(browser.get(f"/console/counter/sessions/{session_id}").text)
    answer = present(browser, session_id, texted_code(scene.app, scene.citizen.mobile))
    assert answer.status_code == 303, answer.text
    assert _is_present(scene, session_id)
    # Present: the passkey is no longer offered, nor are its options given.
    page = browser.get(f"/console/counter/sessions/{session_id}")
    assert "passkey-presence" not in page.text
    refused = ask_options(browser, session_id)
    assert refused.status_code == 403 and refused.json()["detail"] == "presence_proven_already"
    (entry,) = [
        e
        for e in entries(scene.app, "counter_refused")
        if e.detail.get("reason") == "presence_proven_already"
    ]
    assert entry.subject_hash == key_of(scene.app, scene.citizen)


def test_another_citizens_passkey_is_refused(scene: Scene, browser: TestClient) -> None:
    register_passkey(scene.app, scene.citizen)
    someone_else = register_passkey(scene.app, scene.other)
    session_id = _awaiting(scene, browser)
    options = options_for(browser, session_id)
    # The other person's authenticator signs this session's challenge: a valid assertion
    # by a real passkey, but not the citizen's.
    answer = post_assertion(browser, session_id, someone_else.get(options))
    assert answer.status_code == 400 and answer.json()["detail"] == "not_yours"
    assert not _is_present(scene, session_id)
    (refused,) = _presence(scene, session_id)
    assert refused.outcome == "passkey_refused" and refused.detail["reason"] == "not_yours"
    assert refused.actor_id == key_of(scene.app, scene.clerk_a)
    assert refused.subject_hash == key_of(scene.app, scene.citizen)
    assert refused.detail["office_id"] == scene.office_a


def test_a_replayed_assertion_is_refused(scene: Scene, browser: TestClient) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    assertion = authenticator.get(options_for(browser, session_id))
    assert post_assertion(browser, session_id, assertion).status_code == 200
    again = post_assertion(browser, session_id, assertion)
    assert again.status_code == 400 and again.json()["detail"] == "challenge_unknown"
    # Replayed into a new session of the same citizen (whose challenge is another): refused.
    second = session_id_of(start(browser, scene.office_a, scene.citizen))
    options_for(browser, second)
    there = post_assertion(browser, second, assertion)
    assert there.status_code == 400 and there.json()["detail"] == "challenge_unknown"
    assert not _is_present(scene, second)
    assert [e.outcome for e in _presence(scene, session_id)] == [
        "passkey_accepted",
        "passkey_refused",
    ]


def test_a_challenge_from_another_session_is_refused(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    register_passkey(scene.app, scene.other)
    mine = _awaiting(scene, browser)
    # Another clerk's session (at another office, for another citizen) asks for options;
    # its challenge, signed by this citizen's passkey, is posted to this session.
    signed_in(scene.app, other_browser, scene.clerk_b)
    theirs = session_id_of(start(other_browser, scene.office_b, scene.other))
    foreign = options_for(other_browser, theirs)
    answer = post_assertion(browser, mine, authenticator.get(foreign))
    assert answer.status_code == 400 and answer.json()["detail"] == "challenge_unknown"
    # The clerk's own earlier challenge, replaced by a newer one, is refused too.
    older = options_for(browser, mine)
    options_for(browser, mine)
    stale = post_assertion(browser, mine, authenticator.get(older))
    assert stale.status_code == 400 and stale.json()["detail"] == "challenge_unknown"
    assert not _is_present(scene, mine)
    # Nor may the other clerk ask for options or post to a session not theirs.
    assert ask_options(other_browser, mine).status_code == 403
    assert post_assertion(other_browser, mine, authenticator.get(older)).status_code == 403
    not_theirs = [
        e
        for e in entries(scene.app, "counter_refused")
        if e.detail.get("reason") == "not_your_session"
    ]
    assert len(not_theirs) >= 2
    assert all(e.actor_id == key_of(scene.app, scene.clerk_b) for e in not_theirs)


def test_an_assertion_for_a_session_already_present_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    options = options_for(browser, session_id)
    # The code is read out meanwhile: the session is present, the passkey comes late.
    code = texted_code(scene.app, scene.citizen.mobile)
    assert present(browser, session_id, code).status_code == 303
    answer = post_assertion(browser, session_id, authenticator.get(options))
    assert answer.status_code == 400 and answer.json()["detail"] == "not_awaiting"
    (refused,) = _presence(scene, session_id)
    assert refused.outcome == "passkey_refused" and refused.detail["reason"] == "not_awaiting"


def test_an_assertion_for_an_expired_or_ended_session_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    options = options_for(browser, session_id)
    move_session_clock(scene.app, session_id, expires_at=timedelta(seconds=1))
    answer = post_assertion(browser, session_id, authenticator.get(options))
    assert answer.status_code == 403 and answer.json()["detail"] == "session_expired"
    assert ask_options(browser, session_id).status_code == 403
    assert not _is_present(scene, session_id)

    ended = session_id_of(start(browser, scene.office_a, scene.citizen))
    options = options_for(browser, ended)
    csrf = csrf_on(browser, ended)
    closed = browser.post(f"/console/counter/sessions/{ended}/end", data={"csrf_token": csrf})
    assert closed.status_code == 303
    answer = post_assertion(browser, ended, authenticator.get(options))
    assert answer.status_code == 403 and answer.json()["detail"] == "session_ended"
    reasons = [e.detail.get("reason") for e in entries(scene.app, "counter_refused")]
    assert reasons.count("session_expired") == 2 and reasons.count("session_ended") == 1


def test_a_clerk_without_the_role_is_refused_and_audited(scene: Scene, browser: TestClient) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    options = options_for(browser, session_id)
    issuer = scene.app.state.hoviyat.settings.issuer
    for someone in (scene.roleless, scene.supervisor_a):
        with TestClient(scene.app, base_url=issuer, follow_redirects=False) as theirs:
            signed_in(scene.app, theirs, someone)
            csrf = csrf_of(theirs, "/console")
            asked = ask_options(theirs, session_id, csrf)
            assert asked.status_code == 403, asked.text
            posted = post_assertion(theirs, session_id, authenticator.get(options), csrf)
            assert posted.status_code == 403, posted.text
        missing = [
            e
            for e in entries(scene.app, "console_refusal")
            if e.detail.get("reason") == "missing_role"
            and e.actor_id == key_of(scene.app, someone)
            and "/passkey" in e.detail.get("path", "")
        ]
        assert len(missing) == 2
    assert not _is_present(scene, session_id)
    # The challenge was never reached: the clerk's own assertion still works.
    assert post_assertion(browser, session_id, authenticator.get(options)).status_code == 200


def test_a_post_without_the_csrf_token_is_refused(scene: Scene, browser: TestClient) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    options = options_for(browser, session_id)
    answer = post_assertion(browser, session_id, authenticator.get(options), csrf="")
    assert answer.status_code == 403
    assert not _is_present(scene, session_id)
    assert [
        e for e in entries(scene.app, "console_refusal") if e.detail["reason"] == "csrf_missing"
    ]


def test_an_assertion_without_user_verification_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    unverified = authenticator.get(options_for(browser, session_id), flags=UP)
    answer = post_assertion(browser, session_id, unverified)
    assert answer.status_code == 400 and answer.json()["detail"] == "invalid"
    assert not _is_present(scene, session_id)


def test_a_cloned_passkey_with_an_old_counter_is_refused(scene: Scene, browser: TestClient) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    first = _awaiting(scene, browser)
    signed = authenticator.get(options_for(browser, first), count=7)
    assert post_assertion(browser, first, signed).status_code == 200
    second = session_id_of(start(browser, scene.office_a, scene.citizen))
    cloned = authenticator.get(options_for(browser, second), count=3)
    answer = post_assertion(browser, second, cloned)
    assert answer.status_code == 403 and answer.json()["detail"] == "sign_count_regressed"
    assert not _is_present(scene, second)
    (refused,) = _presence(scene, second)
    assert refused.detail["reason"] == "sign_count_regressed"


def test_garbage_for_an_assertion_is_refused_and_audited(scene: Scene, browser: TestClient) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    options_for(browser, session_id)
    for junk in ("", "{}", "not json", "x" * 40_000):
        answer = post_assertion(browser, session_id, junk)
        assert answer.status_code == 400 and answer.json()["detail"] == "malformed", junk[:10]
    assert not _is_present(scene, session_id)
    assert {e.detail["reason"] for e in _presence(scene, session_id)} == {"malformed"}


def test_the_same_assertion_raced_by_two_requests_is_accepted_once(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    assertion = authenticator.get(options_for(browser, session_id))
    other_browser.cookies.update(browser.cookies)
    csrf = csrf_on(browser, session_id)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def race(client: TestClient) -> None:
        barrier.wait()
        statuses.append(post_assertion(client, session_id, assertion, csrf).status_code)

    threads = [threading.Thread(target=race, args=(c,)) for c in (browser, other_browser)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 400]
    outcomes = sorted(e.outcome for e in _presence(scene, session_id))
    assert outcomes == ["passkey_accepted", "passkey_refused"]


def test_a_passkey_and_the_code_raced_prove_presence_once(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    code = texted_code(scene.app, scene.citizen.mobile)
    assertion = authenticator.get(options_for(browser, session_id))
    other_browser.cookies.update(browser.cookies)
    csrf = csrf_on(browser, session_id)
    barrier = threading.Barrier(2)
    accepted: list[bool] = []

    def by_passkey() -> None:
        barrier.wait()
        accepted.append(post_assertion(browser, session_id, assertion, csrf).status_code == 200)

    def by_code() -> None:
        barrier.wait()
        answer = other_browser.post(
            f"/console/counter/sessions/{session_id}/presence",
            data={"csrf_token": csrf, "code": code},
        )
        accepted.append(answer.status_code == 303)

    threads = [threading.Thread(target=by_passkey), threading.Thread(target=by_code)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(accepted) == [False, True]
    outcomes = {e.outcome for e in entries(scene.app, "counter_session", session_id=session_id)}
    assert len(outcomes & {"passkey_accepted", "otp_accepted"}) == 1
