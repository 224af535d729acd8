"""The citizen confirms presence at a service counter with their own passkey, on their own phone.

The clerk's page shows a QR code and the URL as text; the citizen's phone (another
client, no console cookie) opens ``/counter/confirm/<token>``, reads who asks and for
what, and confirms with a passkey (a software authenticator, ``passkey_presence_support``)
or says it is not them. Everything over HTTP through the real app; every step is an
audit entry naming clerk, citizen and office.
"""

from __future__ import annotations

import json
import logging
import re
import threading

import pytest
from counter_support import (
    Scene,
    entries,
    key_of,
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
    ask_link,
    b64url,
    confirm_options,
    csrf_on,
    link_for,
    not_me,
    options_on_phone,
    phone,
    post_confirm,
    register_passkey,
    token_on,
    url_on,
)

from idp.audit.history import history_item
from idp.counters import remote_presence
from idp.storage import counters, passkeys


def _steps(scene: Scene, session_id: str) -> list:
    return [
        e
        for e in entries(scene.app, "counter_session", session_id=session_id)
        if e.outcome in ("link_issued", "passkey_accepted", "passkey_refused", "refused_by_citizen")
    ]


def _row(scene: Scene, session_id: str) -> counters.AssistedSession:
    with scene.app.state.hoviyat.db.read() as db:
        row = counters.session_row(db, session_id)
    assert row is not None
    return row


def _is_present(scene: Scene, session_id: str) -> bool:
    return _row(scene, session_id).present_at is not None


def _awaiting(scene: Scene, browser: TestClient) -> str:
    signed_in(scene.app, browser, scene.clerk_a)
    return session_id_of(start(browser, scene.office_a, scene.citizen))


def test_the_citizen_confirms_on_their_own_phone_once_and_every_step_names_clerk_citizen_and_office(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    page = browser.get(f"/console/counter/sessions/{session_id}")
    assert 'id="remote-presence"' in page.text and 'name="code"' in page.text
    # The clerk's page runs nothing: no script, and the console's policy allows none.
    assert "<script" not in page.text
    assert "script-src" not in page.headers["content-security-policy"]

    # The QR code is there at once; a reload ("Check") shows the open link's state
    # without replacing it (the citizen may be reading it), and still runs nothing.
    shown = page
    assert "<svg" in shown.text and 'role="img"' in shown.text
    reloaded = browser.get(f"/console/counter/sessions/{session_id}")
    assert "<svg" not in reloaded.text and 'id="check-presence"' in reloaded.text
    assert "<script" not in reloaded.text
    codes = [re.search(r'id="check-code">([^<]+)<', p.text) for p in (shown, reloaded)]
    assert codes[0] is not None and codes[1] is not None
    assert codes[0].group(1) == codes[1].group(1)
    url = url_on(shown.text)
    assert url.startswith(f"{scene.app.state.hoviyat.settings.issuer}/counter/confirm/")
    token = token_on(shown.text)
    assert len(token) == 26  # 128 random bits
    # Stored only as a digest: the token itself is in no table.
    with scene.app.state.hoviyat.db.read() as db:
        assert (
            counters.link_session(db, token, remote_presence.LINK_PURPOSE, remote_presence.now())
            is None
        )
    # Typed by hand, with the dashes the page shows, it works too.
    with phone(scene.app) as citizen_phone:
        typed = citizen_phone.get(f"/counter/confirm/{url.rsplit('/', 1)[1]}")
        assert typed.status_code == 200
        confirm_page = citizen_phone.get(f"/counter/confirm/{token}")
        assert confirm_page.status_code == 200
        csp = confirm_page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        assert '<script src="/counter/static/confirm-passkey.js" defer></script>' in (
            confirm_page.text
        )
        script = citizen_phone.get("/counter/static/confirm-passkey.js")
        assert script.status_code == 200 and "navigator.credentials.get" in script.text

        options = options_on_phone(citizen_phone, token)
        assert options["userVerification"] == "required"
        assert options["rpId"] == authenticator.rp_id
        assert [c["id"] for c in options["allowCredentials"]] == [
            b64url(authenticator.credential_id)
        ]
        answer = post_confirm(citizen_phone, token, authenticator.get(options))
        assert answer.status_code == 200, answer.text
        assert answer.json()["next"] == "/counter/confirmed?lang=fa"
        done = citizen_phone.get("/counter/confirmed?lang=en")
        assert "Confirmed; you may return to the clerk." in done.text
    assert _is_present(scene, session_id)
    # The clerk sees it on reload, and a proven session runs services as after the code.
    after = browser.get(f"/console/counter/sessions/{session_id}")
    assert 'id="remote-presence"' not in after.text and 'name="code"' not in after.text
    csrf = csrf_on(browser, session_id)
    assert 'data-outcome="match"' in verify_person(browser, session_id, scene.citizen, csrf).text

    issued, accepted = _steps(scene, session_id)
    assert issued.outcome == "link_issued" and accepted.outcome == "passkey_accepted"
    for entry in (issued, accepted):
        assert entry.actor_type == "counter_clerk"
        assert entry.actor_id == key_of(scene.app, scene.clerk_a)
        assert entry.subject_hash == key_of(scene.app, scene.citizen)
        assert entry.detail["office_id"] == scene.office_a
        assert scene.citizen.code not in str(entry.detail) and token not in str(entry.detail)
    assert accepted.detail["method"] == "passkey_remote" and accepted.detail["by"] == "citizen"
    item = history_item(accepted, {}, {})
    assert item["agency"]["clerk"] == scene.clerk_a.name
    assert item["outcome"]["en"] == "Presence confirmed with a passkey"
    with scene.app.state.hoviyat.db.read() as db:
        stored = passkeys.by_credential_id(db, b64url(authenticator.credential_id))
    assert stored is not None and stored.sign_count == authenticator.sign_count


def test_the_same_device_ceremony_is_gone_from_the_clerks_console(
    scene: Scene, browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    csrf = csrf_on(browser, session_id)
    assert browser.get("/console/counter/static/presence-passkey.js").status_code == 404
    for path in ("/passkey/options", "/passkey"):
        answer = browser.post(
            f"/console/counter/sessions/{session_id}{path}", data={"csrf_token": csrf}
        )
        assert answer.status_code in (404, 405), answer.text
        assert "challenge" not in answer.text
    shown = ask_link(browser, session_id)
    assert "navigator" not in shown.text and "<script" not in shown.text
    assert "script-src" not in shown.headers["content-security-policy"]


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_confirm_page_names_the_office_the_clerk_and_the_services_as_the_citizens_defence(
    scene: Scene, browser: TestClient, lang: str
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    shown = ask_link(browser, session_id)
    token = token_on(shown.text)
    clerk_code = re.search(r'id="check-code">[^<]*?([0-9۰-۹]{4})', shown.text)
    assert clerk_code is not None
    with phone(scene.app) as citizen_phone:
        page = citizen_phone.get(f"/counter/confirm/{token}?lang={lang}").text
    with scene.app.state.hoviyat.db.read() as db:
        office = counters.office(db, scene.office_a)
    assert office is not None
    assert office.name in page and scene.clerk_a.name in page
    if lang == "en":
        assert f"Counter office “{office.name}”, clerk “{scene.clerk_a.name}” asks" in page
        assert "Identity verification" in page
        assert "Confirm only if you are at this counter now." in page
        assert (
            "never on the clerk's computer" in page or "never on the clerk&#39;s computer" in page
        )
        assert 'lang="en" dir="ltr"' in page
    else:
        assert "فقط اگر همین حالا در این پیشخوان هستید تأیید کنید." in page
        assert "استعلام هویت" in page and 'lang="fa" dir="rtl"' in page
    digits = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")
    phone_code = re.search(r'id="check-code">([^<]+)<', page)
    assert phone_code is not None
    assert phone_code.group(1).translate(digits) == clerk_code.group(1).translate(digits)
    assert "This is not me" in page or "این من نیستم" in page


def test_a_citizen_without_a_passkey_is_offered_the_code_only(
    scene: Scene, browser: TestClient
) -> None:
    session_id = _awaiting(scene, browser)
    page = browser.get(f"/console/counter/sessions/{session_id}")
    assert 'name="code"' in page.text and 'id="remote-presence"' not in page.text
    shown = ask_link(browser, session_id)
    assert shown.status_code == 200 and "confirm-url" not in shown.text
    assert not [e for e in _steps(scene, session_id) if e.outcome == "link_issued"]


def test_not_me_ends_the_waiting_session_and_the_supervisor_sees_it(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    with phone(scene.app) as citizen_phone:
        refused = not_me(citizen_phone, token, "en")
        assert refused.status_code == 200
        assert "The request is refused and the session has ended." in refused.text
        # The link is spent: neither a second refusal nor a confirmation finds it.
        assert citizen_phone.get(f"/counter/confirm/{token}").status_code == 404
        assert confirm_options(citizen_phone, token).status_code == 404
        assert not_me(citizen_phone, token).status_code == 404
    row = _row(scene, session_id)
    assert row.ended_at is not None and row.present_at is None
    # The texted code no longer proves anything, and the clerk's page says it ended.
    late = present(browser, session_id, texted_code(scene.app, scene.citizen.mobile))
    assert late.status_code == 400
    assert not _is_present(scene, session_id)
    page = browser.get(f"/console/counter/sessions/{session_id}").text
    assert 'id="remote-presence"' not in page and 'name="code"' not in page
    (entry,) = [e for e in _steps(scene, session_id) if e.outcome == "refused_by_citizen"]
    assert entry.actor_id == key_of(scene.app, scene.clerk_a)
    assert entry.subject_hash == key_of(scene.app, scene.citizen)
    assert entry.detail["office_id"] == scene.office_a and entry.detail["by"] == "citizen"
    assert history_item(entry, {}, {})["outcome"]["en"].startswith("Refused by the citizen")
    # The supervisor's queue lists the session as ended.
    signed_in(scene.app, other_browser, scene.supervisor_a)
    queue = other_browser.get(f"/console/counter/offices/{scene.office_a}/review")
    assert queue.status_code == 200 and row.tracking_code in queue.text
    assert "The citizen said on their phone: not me" in queue.text
    (flagged,) = entries(scene.app, "counter_flagged", session_id=session_id)
    assert flagged.actor_type == "person" and flagged.detail["by"] == "citizen"
    assert flagged.subject_hash == key_of(scene.app, scene.citizen)
    assert flagged.detail["office_id"] == scene.office_a


def test_no_national_code_or_token_appears_in_the_logs(
    scene: Scene, browser: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    first = link_for(browser, session_id)
    token = link_for(browser, session_id)  # the first stops working
    with phone(scene.app) as citizen_phone:
        assert citizen_phone.get(f"/counter/confirm/{first}").status_code == 404
        options = options_on_phone(citizen_phone, token)
        assert post_confirm(citizen_phone, token, "not json").status_code == 400
        unverified = authenticator.get(options, flags=UP)
        assert post_confirm(citizen_phone, token, unverified).status_code == 400
        options = options_on_phone(citizen_phone, token)
        assert post_confirm(citizen_phone, token, authenticator.get(options)).status_code == 200
        assert post_confirm(citizen_phone, token, authenticator.get(options)).status_code == 404
    # The app's own records (the test client's httpx logs the URLs it asks for).
    mine = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "".join(f"{r.getMessage()} {r.__dict__}" for r in mine)
    for secret in (scene.citizen.code, scene.citizen.mobile, token, first):
        assert secret not in logged
    for entry in _steps(scene, session_id):
        assert token not in json.dumps(entry.detail) and first not in json.dumps(entry.detail)


def test_a_passkey_on_the_phone_and_the_code_at_the_counter_raced_prove_presence_once(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    code = texted_code(scene.app, scene.citizen.mobile)
    token = link_for(browser, session_id)
    citizen_phone = phone(scene.app)
    assertion = authenticator.get(options_on_phone(citizen_phone, token))
    csrf = csrf_on(browser, session_id)
    barrier = threading.Barrier(2)
    accepted: list[bool] = []

    def by_passkey() -> None:
        barrier.wait()
        accepted.append(post_confirm(citizen_phone, token, assertion).status_code == 200)

    def by_code() -> None:
        barrier.wait()
        answer = browser.post(
            f"/console/counter/sessions/{session_id}/presence",
            data={"csrf_token": csrf, "code": code},
        )
        accepted.append(answer.status_code == 303)

    threads = [threading.Thread(target=by_passkey), threading.Thread(target=by_code)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    citizen_phone.close()
    assert sorted(accepted) == [False, True]
    outcomes = [e.outcome for e in entries(scene.app, "counter_session", session_id=session_id)]
    assert len([o for o in outcomes if o in ("passkey_accepted", "otp_accepted")]) == 1


def test_the_same_assertion_raced_from_two_phones_is_accepted_once(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    phones = [phone(scene.app), phone(scene.app)]
    assertion = authenticator.get(options_on_phone(phones[0], token))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def race(client: TestClient) -> None:
        barrier.wait()
        statuses.append(post_confirm(client, token, assertion).status_code)

    threads = [threading.Thread(target=race, args=(c,)) for c in phones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in phones:
        client.close()
    assert sorted(statuses) in ([200, 400], [200, 404])
    assert [e.outcome for e in _steps(scene, session_id)].count("passkey_accepted") == 1
