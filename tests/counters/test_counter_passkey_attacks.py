"""More attacks on presence by passkey at a service counter, over HTTP through the real app.

Purpose confusion (a challenge the login issued, signed by the citizen's own
passkey, posted at the counter), odd bytes in the session path, and a fuzzed
assertion carrying a live challenge: each is a refusal (audited), never a 500
and never presence.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from counter_support import Scene, session_id_of, signed_in, start
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from passkey_presence_support import (
    ask_options,
    b64url,
    csrf_on,
    options_for,
    post_assertion,
    register_passkey,
)

from idp.storage import counters, passkeys


def _awaiting(scene: Scene, browser: TestClient) -> str:
    signed_in(scene.app, browser, scene.clerk_a)
    return session_id_of(start(browser, scene.office_a, scene.citizen))


def _is_present(scene: Scene, session_id: str) -> bool:
    with scene.app.state.hoviyat.db.read() as db:
        row = counters.session_row(db, session_id)
    assert row is not None
    return row.present_at is not None


def test_attack_a_login_challenge_signed_by_the_citizen_is_refused_at_the_counter(
    scene: Scene, browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    csrf = csrf_on(browser, session_id)
    now = datetime.now(UTC)
    # The login's ceremonies store their challenges under their own purposes; one is filed
    # here under this very session's id (the strongest case: only the purpose differs).
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
        answer = post_assertion(
            browser, session_id, authenticator.get({"challenge": challenge}), csrf
        )
        assert answer.status_code == 400 and answer.json()["detail"] == "challenge_unknown"
    assert not _is_present(scene, session_id)


def test_attack_a_counter_challenge_is_not_spendable_by_the_login(
    scene: Scene, browser: TestClient
) -> None:
    """The counter's challenge is filed under its own purpose: the login's spend finds none."""
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    challenge = options_for(browser, session_id)["challenge"]
    with scene.app.state.hoviyat.db.session() as db:
        for purpose in (passkeys.AUTHENTICATE, passkeys.REGISTER):
            assert (
                passkeys.spend(
                    db,
                    challenge=challenge,
                    session_id=session_id,
                    purpose=purpose,
                    now=datetime.now(UTC),
                )
                is None
            )


def test_attack_odd_bytes_in_the_session_path_are_refused_not_a_server_error(
    scene: Scene, browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    csrf = csrf_on(browser, session_id)
    for odd in ("%00", "a%00b", "%ff%fe", "x" * 5000, "%E2%80%AE", "..%2f..%2fetc"):
        options = browser.post(
            f"/console/counter/sessions/{odd}/passkey/options", data={"csrf_token": csrf}
        )
        assert options.status_code in (400, 403, 404), (odd, options.status_code, options.text)
        posted = browser.post(
            f"/console/counter/sessions/{odd}/passkey",
            data={"csrf_token": csrf, "credential": "{}"},
        )
        assert posted.status_code in (400, 403, 404), (odd, posted.status_code, posted.text)
    assert not _is_present(scene, session_id)


def test_attack_json_body_huge_or_non_utf8_credential_is_refused_not_a_server_error(
    scene: Scene, browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    csrf = csrf_on(browser, session_id)
    url = f"/console/counter/sessions/{session_id}/passkey"
    as_json = browser.post(url, json={"csrf_token": csrf, "credential": "{}"})
    assert as_json.status_code == 403  # no form, no CSRF token
    huge = browser.post(url, data={"csrf_token": csrf, "credential": "{" * 100_000})
    assert huge.status_code == 400 and huge.json()["detail"] == "malformed"
    raw = f"csrf_token={csrf}&credential=%ff%fe%00%c3".encode()
    odd = browser.post(
        url, content=raw, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert odd.status_code == 400, odd.text
    missing = browser.post(url, data={"csrf_token": csrf})
    assert missing.status_code == 400 and missing.json()["detail"] == "malformed"
    assert not _is_present(scene, session_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


_SIGNED = ["clientDataJSON", "authenticatorData", "signature"]


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_attack_fuzzed_assertion_with_a_live_challenge_is_refused_never_a_server_error(
    scene: Scene, browser: TestClient
) -> None:
    """The citizen's own genuine assertion over a live challenge, then bent: a part of it
    replaced by JSON or bytes of any shape, or a byte of what the key signed flipped."""
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)

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
        genuine = json.loads(authenticator.get(options_for(browser, session_id)))
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
        answer = post_assertion(browser, session_id, json.dumps(body))
        assert answer.status_code in (400, 403), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")

    attempt()
    assert not _is_present(scene, session_id)


def test_attack_options_for_a_session_of_another_office_are_refused(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    register_passkey(scene.app, scene.citizen)
    theirs = _awaiting(scene, browser)
    signed_in(scene.app, other_browser, scene.clerk_b)
    csrf = csrf_on(other_browser, session_id_of(start(other_browser, scene.office_b, scene.other)))
    refused = ask_options(other_browser, theirs, csrf)
    assert refused.status_code == 403
    # Nothing for the attacker to learn: no challenge, no credential ids.
    assert "allowCredentials" not in refused.text and "challenge" not in refused.text


def test_attack_options_without_or_with_another_sessions_csrf_token_are_refused(
    scene: Scene, browser: TestClient, other_browser: TestClient
) -> None:
    authenticator = register_passkey(scene.app, scene.citizen)
    session_id = _awaiting(scene, browser)
    live = options_for(browser, session_id)
    signed_in(scene.app, other_browser, scene.clerk_b)
    foreign_token = csrf_on(
        other_browser, session_id_of(start(other_browser, scene.office_b, scene.other))
    )
    for token in ("", foreign_token, "x" * 64):
        refused = ask_options(browser, session_id, token)
        assert refused.status_code == 403 and "challenge" not in refused.text
        posted = post_assertion(browser, session_id, authenticator.get(live), token)
        assert posted.status_code == 403
    # Neither refusal replaced nor spent the live challenge: it still proves presence once.
    assert post_assertion(browser, session_id, authenticator.get(live)).status_code == 200
    assert _is_present(scene, session_id)
