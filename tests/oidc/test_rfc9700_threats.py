"""RFC 9700 (OAuth 2.0 Security BCP) threats, each answered as the BCP says.

Over the app's ASGI transport (the browser and the client are both httpx).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import (
    LOGOUT_URI,
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    interaction_of,
    log_in,
    pkce_pair,
    query_of,
    register_rp,
    session_cookie,
)
from sqlalchemy import update
from sqlmodel import col

from idp.storage.oidc import OidcRefreshToken
from verifiers.registry.base import Person


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def hs256_with_public_key(claims: dict[str, Any], public_jwk: dict[str, Any], typ: str) -> str:
    """The key-confusion attack: HMAC with the server's public key as the secret."""
    import hashlib
    import hmac

    header = b64(json.dumps({"alg": "HS256", "typ": typ, "kid": public_jwk["kid"]}).encode())
    payload = b64(json.dumps(claims).encode())
    secret = json.dumps(public_jwk, sort_keys=True).encode()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


# A program's request: /authorize shows browsers an HTML page in their language
# instead (tests/oidc/test_attacks_oidc.py).
ASKS_FOR_JSON = {"Accept": "application/problem+json"}


def is_problem_page(response: Any) -> bool:
    return (
        response.status_code == 400
        and "location" not in response.headers
        and response.headers["content-type"].startswith("application/problem+json")
    )


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://rp.example/callback/extra",
        "https://rp.example/callback?next=https://evil.example",
        "https://rp.example/callbackx",
        "https://rp.example/callback/../evil",
        "https://RP.example/callback",
        "https://evil.example/callback",
        "http://rp.example/callback",
    ],
)
def test_mismatched_or_extended_redirect_uri_is_shown_not_followed(
    asgi_browser: TestClient, rp: RelyingParty, redirect_uri: str
) -> None:
    _, challenge = pkce_pair()
    response = asgi_browser.get(
        "/authorize",
        params=authorization_params(rp, challenge, redirect_uri=redirect_uri),
        headers=ASKS_FOR_JSON,
    )
    assert is_problem_page(response), response.text
    assert "redirect_uri" in response.json()["detail"]


def test_unknown_client_and_missing_redirect_uri_never_redirect(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    for overrides in ({"client_id": "nobody"}, {"redirect_uri": None}, {"client_id": None}):
        response = asgi_browser.get(
            "/authorize",
            params=authorization_params(rp, challenge, **overrides),
            headers=ASKS_FOR_JSON,
        )
        assert is_problem_page(response), overrides


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"acr_values": "urn:example:loa:4"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"claims": "{not json"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
def test_bad_requests_with_a_known_redirect_uri_go_back_with_an_error(
    asgi_browser: TestClient, rp: RelyingParty, overrides: dict[str, str | None], error: str
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(rp, challenge, **overrides)
    response = asgi_browser.get("/authorize", params=params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(rp.redirect_uri + "?")
    answer = query_of(location)
    assert answer["error"] == error, answer
    assert answer["state"] == params["state"]
    assert answer["iss"] == str(asgi_browser.base_url).rstrip("/")


def test_plain_pkce_verifier_at_token_endpoint_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    # The challenge itself as verifier (what "plain" would accept) and no verifier at all.
    for wrong in (challenge, None, verifier[:-1] + ("A" if verifier[-1] != "A" else "B")):
        response = exchange(asgi_browser, rp, code, wrong)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
    # Failed attempts do not burn the code for the rightful holder of the verifier.
    assert exchange(asgi_browser, rp, code, verifier).status_code == 200


def test_code_replay_is_refused_and_revokes_what_the_code_issued(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    first = exchange(asgi_browser, rp, code, verifier)
    assert first.status_code == 200
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 200
    replay = exchange(asgi_browser, rp, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 401
    refreshed = asgi_browser.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
        auth=(rp.client_id, rp.client_secret or ""),
    )
    assert refreshed.json()["error"] == "invalid_grant"


def test_code_of_another_client_is_refused_without_burning_it(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    other = register_rp(hoviyat_app, "rp-other")
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    stolen = exchange(asgi_browser, other, code, verifier)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert exchange(asgi_browser, rp, code, verifier).status_code == 200


def test_redirect_uri_at_token_endpoint_must_match_the_authorization_request(
    hoviyat_app: FastAPI, asgi_browser: TestClient, citizen: Person
) -> None:
    rp = register_rp(
        hoviyat_app, "rp-two-uris", redirect_uris=["https://rp.example/a", "https://rp.example/b"]
    )
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    response = exchange(asgi_browser, rp, code, verifier, redirect_uri="https://rp.example/b")
    assert response.json()["error"] == "invalid_grant"


def test_unsigned_and_key_confused_tokens_are_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    issued = exchange(asgi_browser, rp, code, verifier).json()
    genuine = json.loads(base64.urlsafe_b64decode(issued["access_token"].split(".")[1] + "=="))
    forged_claims = {**genuine, "exp": genuine["exp"] + 3600}
    jwks = asgi_browser.get("/jwks.json").json()["keys"]
    forgeries = [unsigned_jwt(forged_claims)] + [
        hs256_with_public_key(forged_claims, key, "at+jwt") for key in jwks
    ]
    for forged in forgeries:
        response = asgi_browser.get("/userinfo", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, forged
        introspected = asgi_browser.post(
            "/introspect", data={"token": forged}, auth=(rp.client_id, rp.client_secret or "")
        )
        assert introspected.json() == {"active": False}
    # An ID token hint forged the same way is refused at logout, with no redirect.
    id_claims = json.loads(base64.urlsafe_b64decode(issued["id_token"].split(".")[1] + "=="))
    for hint in [unsigned_jwt(id_claims)] + [
        hs256_with_public_key(id_claims, key, "JWT") for key in jwks
    ]:
        response = asgi_browser.get(
            "/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI}
        )
        assert is_problem_page(response)


def test_state_is_echoed_exactly_and_nonce_is_bound_to_its_own_code(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    state = "a b&c=d/é"
    verifier_a, challenge_a = pkce_pair()
    verifier_b, challenge_b = pkce_pair()
    params_a = authorization_params(rp, challenge_a, state=state, nonce="nonce-A")
    params_b = authorization_params(rp, challenge_b, nonce="nonce-B")
    response = asgi_browser.get("/authorize", params=params_a)
    interaction_a = interaction_of(response)
    from oidc_support import complete, finish_interaction

    finish_interaction(hoviyat_app.state.hoviyat.db, interaction_a, login)
    back = query_of(complete(asgi_browser, interaction_a).headers["location"])
    assert back["state"] == state
    code_b = code_for(hoviyat_app, asgi_browser, params_b, login)
    token_a = exchange(asgi_browser, rp, back["code"], verifier_a).json()
    token_b = exchange(asgi_browser, rp, code_b, verifier_b).json()

    def nonce_of(token: dict[str, Any]) -> str:
        return json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[1] + "=="))["nonce"]

    # Each ID token carries the nonce of its own request: an injected code shows up.
    assert nonce_of(token_a) == "nonce-A"
    assert nonce_of(token_b) == "nonce-B"
    # The interaction is single use: a second completion is refused, not a second code.
    again = complete(asgi_browser, interaction_a)
    assert is_problem_page(again)


def test_refresh_reuse_after_the_grace_window_revokes_the_grant(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    verifier, challenge = pkce_pair()
    code = code_for(
        hoviyat_app,
        asgi_browser,
        authorization_params(rp, challenge),
        log_in(db, citizen.national_code),
    )
    issued = exchange(asgi_browser, rp, code, verifier).json()
    auth = (rp.client_id, rp.client_secret or "")

    def refresh(token: str) -> Any:
        return asgi_browser.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": token}, auth=auth
        )

    second = refresh(issued["refresh_token"])
    assert second.status_code == 200
    # A retry inside the grace window gets no second successor (no fork), and
    # revokes nothing: the first successor keeps working...
    retry = refresh(issued["refresh_token"])
    assert retry.status_code == 400
    assert retry.json()["error"] == "invalid_grant"
    alive = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=alive).status_code == 200
    # ...but once the window has passed, the old token is a stolen one.
    from idp.oidc.grants import digest

    with db.session() as session:
        session.execute(
            update(OidcRefreshToken)
            .where(col(OidcRefreshToken.token_hash) == digest(issued["refresh_token"]))
            .values(rotated_at=datetime.now(UTC) - timedelta(seconds=11))
        )
    reuse = refresh(issued["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # The whole grant is gone: the newest refresh and access tokens too.
    assert refresh(second.json()["refresh_token"]).json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {second.json()['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 401


def test_logout_never_redirects_to_an_unregistered_uri(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    verifier, challenge = pkce_pair()
    login = log_in(db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    issued = exchange(asgi_browser, rp, code, verifier).json()
    hint = issued["id_token"]
    for target in ("https://evil.example/", LOGOUT_URI + "/x", "https://rp.example/callback"):
        response = asgi_browser.get(
            "/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": target}
        )
        assert is_problem_page(response), target
    # Without an id_token_hint no client is known, so no redirect is possible.
    response = asgi_browser.get(
        "/logout", params={"post_logout_redirect_uri": LOGOUT_URI, "client_id": rp.client_id}
    )
    assert is_problem_page(response)
    # Nothing was ended by the refusals.
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 200
    # The registered URI works, ends the session and the grants issued under it.
    response = asgi_browser.get(
        "/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI, "state": "s1"},
        cookies=session_cookie(hoviyat_app, login),
    )
    assert response.status_code == 302
    assert response.headers["location"] == LOGOUT_URI + "?state=s1"
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 401
    prompt_none = asgi_browser.get(
        "/authorize",
        params=authorization_params(rp, challenge, prompt="none"),
        cookies=session_cookie(hoviyat_app, login),
    )
    assert query_of(prompt_none.headers["location"])["error"] == "login_required"
