"""Attacks on the citizen's confirmation of presence on their own phone, over HTTP.

The threat that moved the ceremony off the clerk's machine: a dishonest clerk
swapping a login challenge into the citizen's authenticator. Here the clerk's
browser has no ceremony to run, a login's challenge is refused at the confirm
page and the confirm page's at the login, the clerk cannot confirm with any
passkey but the citizen's, and the link is single use, per session and short
lived. Each attack is a refusal (audited where a session is known), never a
500 and never presence.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from counter_support import (
    Scene,
    entries,
    key_of,
    move_session_clock,
    present,
    session_id_of,
    signed_in,
    start,
    texted_code,
)
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passkey_presence_support import (
    UP,
    ask_link,
    b64url,
    confirm_options,
    link_for,
    not_me,
    options_on_phone,
    phone,
    post_confirm,
    register_passkey,
)
from sqlalchemy import update

from idp.counters import remote_presence
from idp.storage import counters, passkeys
from idp.storage.passkeys import CHALLENGES


def _awaiting(scene: Scene, browser: TestClient) -> str:
    signed_in(scene.app, browser, scene.clerk_a)
    return session_id_of(start(browser, scene.office_a, scene.citizen))


def _is_present(scene: Scene, session_id: str) -> bool:
    with scene.app.state.hoviyat.db.read() as db:
        row = counters.session_row(db, session_id)
    assert row is not None
    return row.present_at is not None


def _refusals(scene: Scene, session_id: str) -> list[str]:
    return [
        e.detail["reason"]
        for e in entries(scene.app, "counter_session", session_id=session_id)
        if e.outcome == "passkey_refused"
    ]


def test_attack_token_replay_after_confirmation_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    with phone(scene.app) as citizen_phone:
        options = options_on_phone(citizen_phone, token)
        assertion = authenticator.get(options)
        assert post_confirm(citizen_phone, token, assertion).status_code == 200
        # The link is spent: the page, new options, the same or a new assertion, "not me".
        assert citizen_phone.get(f"/counter/confirm/{token}").status_code == 404
        assert confirm_options(citizen_phone, token).status_code == 404
        again = post_confirm(citizen_phone, token, assertion)
        assert again.status_code == 404 and again.json()["detail"] == "link_unknown"
        assert not_me(citizen_phone, token).status_code == 404
    row_ended = _row_ended(scene, session_id)
    assert _is_present(scene, session_id) and not row_ended
    # The same assertion replayed through a new link for a new session of the citizen.
    second = session_id_of(start(browser, scene.office_a, scene.citizen))
    other_token = link_for(browser, second)
    with phone(scene.app) as citizen_phone:
        options_on_phone(citizen_phone, other_token)
        there = post_confirm(citizen_phone, other_token, assertion)
        assert there.status_code == 400 and there.json()["detail"] == "challenge_unknown"
    assert not _is_present(scene, second)
    assert _refusals(scene, second) == ["challenge_unknown"]


def _row_ended(scene: Scene, session_id: str) -> bool:
    with scene.app.state.hoviyat.db.read() as db:
        row = counters.session_row(db, session_id)
    return row is not None and row.ended_at is not None


def test_attack_token_of_another_session_confirms_only_that_session_and_only_its_citizen(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    register_passkey(scene.app, scene.other)
    mine = _awaiting(scene, browser)
    my_token = link_for(browser, mine)
    signed_in(scene.app, other_browser, scene.clerk_b)
    theirs = session_id_of(start(other_browser, scene.office_b, scene.other))
    their_token = link_for(other_browser, theirs)
    with phone(scene.app) as citizen_phone:
        # The other session's link offers only the other citizen's passkey...
        foreign = options_on_phone(citizen_phone, their_token)
        assert b64url(authenticator.credential_id) not in json.dumps(foreign)
        # ...and this citizen's passkey signing its challenge is not theirs.
        answer = post_confirm(citizen_phone, their_token, authenticator.get(foreign))
        assert answer.status_code == 400 and answer.json()["detail"] == "not_yours"
        # A challenge of my session's link posted with the other session's token.
        options = options_on_phone(citizen_phone, my_token)
        crossed = post_confirm(citizen_phone, their_token, authenticator.get(options))
        assert crossed.status_code == 400 and crossed.json()["detail"] == "challenge_unknown"
        # A stale challenge of my own link, replaced by a newer one, is refused too.
        newer = options_on_phone(citizen_phone, my_token)
        stale = post_confirm(citizen_phone, my_token, authenticator.get(options))
        assert stale.status_code == 400 and stale.json()["detail"] == "challenge_unknown"
        assert post_confirm(citizen_phone, my_token, authenticator.get(newer)).status_code == 200
    assert not _is_present(scene, theirs) and _is_present(scene, mine)
    (refused,) = [
        e
        for e in entries(scene.app, "counter_session", session_id=theirs)
        if e.outcome == "passkey_refused" and e.detail["reason"] == "not_yours"
    ]
    assert refused.actor_id == key_of(scene.app, scene.clerk_b)
    assert refused.subject_hash == key_of(scene.app, scene.other)
    assert refused.detail["office_id"] == scene.office_b
    # Nor may one clerk make a link for another clerk's session.
    assert ask_link(other_browser, mine).status_code == 403
    assert [
        e
        for e in entries(scene.app, "counter_refused")
        if e.detail.get("reason") == "not_your_session"
        and e.operation == remote_presence.LINK_OPERATION
    ]


def test_attack_an_expired_replaced_or_orphaned_link_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    old = link_for(browser, session_id)
    token = link_for(browser, session_id)
    with phone(scene.app) as citizen_phone:
        assert citizen_phone.get(f"/counter/confirm/{old}").status_code == 404
        options = options_on_phone(citizen_phone, token)
        # Minutes pass: the link's own time runs out before the session's.
        with scene.app.state.hoviyat.db.session() as db:
            db.execute(
                update(CHALLENGES)
                .where(CHALLENGES.c.purpose == remote_presence.LINK_PURPOSE)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert citizen_phone.get(f"/counter/confirm/{token}").status_code == 404
        late = post_confirm(citizen_phone, token, authenticator.get(options))
        assert late.status_code == 404
        # A fresh link lives no longer than its session.
        fresh = link_for(browser, session_id)
        move_session_clock(scene.app, session_id, expires_at=timedelta(seconds=1))
        assert citizen_phone.get(f"/counter/confirm/{fresh}").status_code == 404
        assert confirm_options(citizen_phone, fresh).status_code == 404
    assert ask_link(browser, session_id).status_code == 403
    assert not _is_present(scene, session_id)


def test_attack_a_link_after_presence_by_code_or_after_the_end_is_refused(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    with phone(scene.app) as citizen_phone:
        options = options_on_phone(citizen_phone, token)
        assert (
            present(browser, session_id, texted_code(scene.app, scene.citizen.mobile)).status_code
            == 303
        )
        # Present already: the link is dead, and "not me" cannot end a proven session.
        assert post_confirm(citizen_phone, token, authenticator.get(options)).status_code == 404
        assert not_me(citizen_phone, token).status_code == 404
    assert not _row_ended(scene, session_id)
    refused = ask_link(browser, session_id)
    assert refused.status_code == 403
    assert [
        e
        for e in entries(scene.app, "counter_refused")
        if e.detail.get("reason") == "presence_proven_already"
    ]


def test_attack_the_clerks_own_browser_cannot_confirm_without_the_citizens_passkey(
    scene: Scene, browser: TestClient
) -> None:
    """The clerk opens the link themselves (the console cookie and all) and answers with
    a passkey they hold (their own, another citizen's) or one that skips verification."""
    citizens = register_passkey(scene.app, scene.citizen)
    clerks_own = register_passkey(scene.app, scene.clerk_a)
    someone_elses = register_passkey(scene.app, scene.other)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    options = options_on_phone(browser, token)
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(citizens.credential_id)]
    for authenticator in (clerks_own, someone_elses):
        answer = post_confirm(browser, token, authenticator.get(options_on_phone(browser, token)))
        assert answer.status_code == 400 and answer.json()["detail"] == "not_yours"
    # The citizen's credential id with a key that is not the citizen's.
    forged = json.loads(clerks_own.get(options_on_phone(browser, token)))
    forged["id"] = forged["rawId"] = b64url(citizens.credential_id)
    answer = post_confirm(browser, token, json.dumps(forged))
    assert answer.status_code == 400 and answer.json()["detail"] == "invalid"
    # The citizen's authenticator touched but not verifying its user (no PIN, no finger).
    unverified = citizens.get(options_on_phone(browser, token), flags=UP)
    answer = post_confirm(browser, token, unverified)
    assert answer.status_code == 400 and answer.json()["detail"] == "invalid"
    assert not _is_present(scene, session_id)
    assert _refusals(scene, session_id) == ["not_yours", "not_yours", "invalid", "invalid"]


def test_attack_a_login_challenge_is_refused_at_the_confirm_page(
    scene: Scene, browser: TestClient
) -> None:
    """The clerk starts a login for the citizen in another tab and hands its challenge to
    the citizen's authenticator: filed under the login's purposes (here even under this
    session's own id, the strongest case), it is not this page's."""
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    now = datetime.now(UTC)
    with phone(scene.app) as citizen_phone:
        options_on_phone(citizen_phone, token)
        for purpose in (passkeys.AUTHENTICATE, passkeys.REGISTER):
            challenge = b64url(secrets.token_bytes(32))
            with scene.app.state.hoviyat.db.session() as db:
                passkeys.issue_challenge(
                    db,
                    challenge=challenge,
                    session_id=session_id,
                    purpose=purpose,
                    interaction_id=None,
                    expires_at=now + timedelta(minutes=2),
                    now=now,
                )
            signed = authenticator.get({"challenge": challenge})
            answer = post_confirm(citizen_phone, token, signed)
            assert answer.status_code == 400 and answer.json()["detail"] == "challenge_unknown"
            # The login's challenge is still there for the login: this page did not spend it.
            with scene.app.state.hoviyat.db.session() as db:
                assert passkeys.spend(
                    db, challenge=challenge, session_id=session_id, purpose=purpose, now=now
                )
    assert not _is_present(scene, session_id)


def test_attack_a_confirm_challenge_is_not_spendable_by_the_login(
    scene: Scene, browser: TestClient
) -> None:
    """The other way round: the phone's challenge, signed, taken to a login. The login
    spends only its own purposes, so it finds none; nor does the link's digest pass."""
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    with phone(scene.app) as citizen_phone:
        challenge = options_on_phone(citizen_phone, token)["challenge"]
    with scene.app.state.hoviyat.db.session() as db:
        for purpose in (passkeys.AUTHENTICATE, passkeys.REGISTER):
            for value in (challenge, remote_presence.digest(token)):
                assert (
                    passkeys.spend(
                        db,
                        challenge=value,
                        session_id=session_id,
                        purpose=purpose,
                        now=datetime.now(UTC),
                    )
                    is None
                )


def test_attack_odd_bytes_in_the_token_are_refused_not_a_server_error(
    scene: Scene, browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    link_for(browser, session_id)
    with phone(scene.app) as citizen_phone:
        for odd in ("%00", "a%00b", "%ff%fe", "x" * 5000, "%E2%80%AE", "..%2f..%2fetc", "A" * 26):
            assert citizen_phone.get(f"/counter/confirm/{odd}").status_code == 404
            assert confirm_options(citizen_phone, odd).status_code == 404
            posted = post_confirm(citizen_phone, odd, "{}")
            assert posted.status_code == 404, (odd, posted.text)
            assert not_me(citizen_phone, odd).status_code == 404
    assert not _is_present(scene, session_id) and not _row_ended(scene, session_id)


def test_attack_garbage_huge_or_non_utf8_assertions_are_refused_and_audited(
    scene: Scene, browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    url = f"/counter/confirm/{token}/passkey"
    with phone(scene.app) as citizen_phone:
        options_on_phone(citizen_phone, token)
        for junk in ("", "{}", "not json", "x" * 40_000, "{" * 100_000):
            answer = post_confirm(citizen_phone, token, junk)
            assert answer.status_code == 400 and answer.json()["detail"] == "malformed", junk[:9]
        raw = b"credential=%ff%fe%00%c3"
        odd = citizen_phone.post(
            url, content=raw, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert odd.status_code == 400, odd.text
        as_json = citizen_phone.post(url, json={"credential": "{}"})
        assert as_json.status_code in (400, 422), as_json.text
    assert not _is_present(scene, session_id)
    assert set(_refusals(scene, session_id)) == {"malformed"}


def test_a_cloned_passkey_with_an_old_counter_is_refused(scene: Scene, browser: TestClient) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    first = _awaiting(scene, browser)
    with phone(scene.app) as citizen_phone:
        token = link_for(browser, first)
        signed = authenticator.get(options_on_phone(citizen_phone, token), count=7)
        assert post_confirm(citizen_phone, token, signed).status_code == 200
        second = session_id_of(start(browser, scene.office_a, scene.citizen))
        token = link_for(browser, second)
        cloned = authenticator.get(options_on_phone(citizen_phone, token), count=3)
        answer = post_confirm(citizen_phone, token, cloned)
        assert answer.status_code == 403 and answer.json()["detail"] == "sign_count_regressed"
    assert not _is_present(scene, second)
    assert _refusals(scene, second) == ["sign_count_regressed"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_SIGNED = ["clientDataJSON", "authenticatorData", "signature"]


def test_attack_fuzzed_assertion_with_a_live_challenge_is_refused_never_a_server_error(
    scene: Scene, browser: TestClient
) -> None:
    """The citizen's own genuine assertion over a live challenge, then bent: a part of it
    replaced by JSON or bytes of any shape, or a byte of what the key signed flipped."""
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    token = link_for(browser, session_id)
    citizen_phone = phone(scene.app)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        replace=st.dictionaries(
            st.sampled_from(["id", "rawId", "type", *_SIGNED]),
            _JSONISH | st.binary(max_size=64).map(_b64),
            max_size=3,
        ),
        flip=st.tuples(st.sampled_from(_SIGNED), st.integers(0, 4096), st.integers(1, 255)),
    )
    def attempt(replace: dict[str, Any], flip: tuple[str, int, int]) -> None:
        genuine = json.loads(authenticator.get(options_on_phone(citizen_phone, token)))
        body = json.loads(json.dumps(genuine))
        field, at, mask = flip
        signed = bytearray(_unb64(body["response"][field]))
        signed[at % len(signed)] ^= mask
        body["response"][field] = _b64(bytes(signed))
        for name, value in replace.items():
            if name in ("id", "rawId", "type"):
                body[name] = value
            else:
                body["response"][name] = value
        answer = post_confirm(citizen_phone, token, json.dumps(body))
        assert answer.status_code in (400, 403), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")

    attempt()
    citizen_phone.close()
    assert not _is_present(scene, session_id)
