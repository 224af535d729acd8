"""Signed request objects (RFC 9101, JAR), from the client's and the attacker's side.

joserfc builds the request objects as a client library would; the happy paths go
through login to the tokens over real HTTP, the attacks over the app's ASGI
transport. Everything runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from oidc_support import (
    REDIRECT_URI,
    RelyingParty,
    interaction_of,
    log_in,
    log_in_and_return,
    pkce_pair,
    query_of,
    register_rp,
)
from sqlalchemy import update
from sqlmodel import select

from idp.oidc.registration import RegistrationError, oidc_attributes
from idp.storage.models import Client
from idp.storage.oidc import OidcInteraction, OidcPushedRequest
from verifiers.registry.base import Person

JSON = {"Accept": "application/json"}
TYP = "oauth-authz-req+jwt"


class Signer:
    """A relying party with keys registered for its request objects."""

    def __init__(self, app: FastAPI, client_id: str, key: ECKey | RSAKey, alg: str) -> None:
        self.key = key
        self.alg = alg
        self.rp = register_rp(app, client_id, jwks={"keys": [key.as_dict(private=False)]})
        self.issuer: str = app.state.hoviyat.settings.issuer

    def claims(self, challenge: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.rp.client_id,
            "aud": self.issuer,
            "client_id": self.rp.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(16),
            "response_type": "code",
            "redirect_uri": self.rp.redirect_uri,
            "scope": "openid profile",
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        protected = {"alg": self.alg, "kid": self.key.kid, "typ": TYP, **header}
        return joserfc_jwt.encode(protected, claims, self.key, algorithms=[self.alg])


@pytest.fixture
def signer(hoviyat_app: FastAPI) -> Signer:
    return Signer(hoviyat_app, "rp-jar", ECKey.generate_key("P-256", auto_kid=True), "ES256")


@pytest.fixture
def browser(live_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as client:
        yield client


def front(rp: RelyingParty, request: str, **outer: str) -> str:
    return "/authorize?" + urlencode({"client_id": rp.client_id, "request": request, **outer})


def refused(response: httpx.Response, error: str | None = "invalid_request_object") -> None:
    """Shown, never redirected (there is no verified redirect URI to send it to)."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.json().get("error") == error


def push(browser: Any, rp: RelyingParty, **form: str) -> httpx.Response:
    assert rp.client_secret is not None
    answer: httpx.Response = browser.post("/par", data=form, auth=(rp.client_id, rp.client_secret))
    return answer


def exchange(browser: httpx.Client, rp: RelyingParty, back: str, verifier: str) -> dict[str, Any]:
    assert rp.client_secret is not None
    answer = browser.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(back)["code"],
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(rp.client_id, rp.client_secret),
    )
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def stored_request(app: FastAPI, response: httpx.Response) -> dict[str, Any]:
    """The authorization request the login pages will act on."""
    with app.state.hoviyat.db.read() as session:
        row = session.get(OidcInteraction, interaction_of(response))
        assert row is not None
        return dict(row.params)


def _require_signed(app: FastAPI, rp: RelyingParty) -> None:
    with app.state.hoviyat.db.session() as session:
        session.execute(
            update(Client)
            .where(Client.client_id == rp.client_id)  # type: ignore[arg-type]
            .values(require_signed_request_object=True)
        )
    app.state.hoviyat.client_directory.forget(rp.client_id)


# --- the client's side --------------------------------------------------------------------------


def test_discovery_advertises_request_objects_by_value_only(browser: httpx.Client) -> None:
    discovery = browser.get("/.well-known/openid-configuration").json()
    assert discovery["request_parameter_supported"] is True
    assert discovery["request_object_signing_alg_values_supported"] == ["PS256", "ES256"]
    assert discovery["request_uri_parameter_supported"] is False


def test_request_object_by_value_through_login_to_tokens(
    hoviyat_app: FastAPI, browser: httpx.Client, signer: Signer, citizen: Person
) -> None:
    verifier, challenge = pkce_pair()
    claims = signer.claims(challenge)
    # Only client_id and the object travel: every parameter is inside, signed.
    url = front(signer.rp, signer.sign(claims))
    back = log_in_and_return(
        hoviyat_app, browser, url, log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    )
    assert back.startswith(REDIRECT_URI + "?")
    assert query_of(back)["state"] == claims["state"]
    tokens = exchange(browser, signer.rp, back, verifier)
    assert tokens["id_token"].count(".") == 2
    nonce = joserfc_jwt.decode(tokens["id_token"].encode(), _issuer_keys(browser)).claims["nonce"]
    assert nonce == claims["nonce"]


def _issuer_keys(browser: httpx.Client) -> KeySet:
    return KeySet.import_key_set(browser.get("/jwks.json").json())


def test_request_object_pushed_to_par_with_ps256_through_login_to_tokens(
    hoviyat_app: FastAPI, browser: httpx.Client, citizen: Person
) -> None:
    signer = Signer(hoviyat_app, "rp-jar-rsa", RSAKey.generate_key(2048, auto_kid=True), "PS256")
    _require_signed(hoviyat_app, signer.rp)
    verifier, challenge = pkce_pair()
    claims = signer.claims(challenge, max_age=600)
    pushed = push(browser, signer.rp, client_id=signer.rp.client_id, request=signer.sign(claims))
    assert pushed.status_code == 201, pushed.text
    url = "/authorize?" + urlencode(
        {"client_id": signer.rp.client_id, "request_uri": pushed.json()["request_uri"]}
    )
    back = log_in_and_return(
        hoviyat_app, browser, url, log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    )
    assert query_of(back)["state"] == claims["state"]
    assert exchange(browser, signer.rp, back, verifier)["token_type"].lower() == "bearer"


def test_request_object_without_typ_is_accepted_for_interoperability(
    asgi_browser: TestClient, signer: Signer
) -> None:
    _verifier, challenge = pkce_pair()
    claims = signer.claims(challenge, aud=[signer.issuer])  # an array holding only the issuer
    token = jws.serialize_compact(
        {"alg": signer.alg, "kid": signer.key.kid}, json.dumps(claims).encode(), signer.key
    )
    assert "typ" not in jws.extract_compact(token.encode()).protected
    page = asgi_browser.get(front(signer.rp, token))
    assert page.status_code == 200, page.text


def test_a_client_registered_to_require_signed_request_objects(
    hoviyat_app: FastAPI, app_client: TestClient, admin_token: str
) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    created = app_client.post(
        "/v1/admin/clients",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "name": "Land registry",
            "service_code": "demo-tax-portal",
            "redirect_uris": [REDIRECT_URI],
            "jwks": {"keys": [key.as_dict(private=False)]},
            "require_signed_request_object": True,
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["require_signed_request_object"] is True
    rp = RelyingParty(created.json()["client_id"], created.json()["client_secret"], REDIRECT_URI)
    _verifier, challenge = pkce_pair()
    plain = app_client.get(
        "/authorize", params=_plain_params(rp, challenge), follow_redirects=False
    )
    assert plain.status_code == 302
    assert query_of(plain.headers["location"])["error"] == "invalid_request"


def _plain_params(rp: RelyingParty, challenge: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid",
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def test_requiring_signed_request_objects_needs_keys_and_the_code_flow() -> None:
    base: dict[str, Any] = {
        "redirect_uris": [REDIRECT_URI],
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code"],
        "auth_method": "client_secret_basic",
        "id_token_alg": "ES256",
        "sector_identifier": None,
        "require_signed_request_object": True,
    }
    with pytest.raises(RegistrationError, match="JWKS"):
        oidc_attributes(**base)
    with pytest.raises(RegistrationError, match="authorization_code"):
        oidc_attributes(**{**base, "redirect_uris": [], "grant_types": ["client_credentials"]})


# --- attacks ------------------------------------------------------------------------------------


def test_attack_alg_none_refused(asgi_browser: TestClient, signer: Signer) -> None:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    _verifier, challenge = pkce_pair()
    unsigned = f"{part({'alg': 'none', 'typ': TYP})}.{part(signer.claims(challenge))}."
    refused(asgi_browser.get(front(signer.rp, unsigned), headers=JSON))


def test_attack_hs256_signed_with_the_client_secret_refused(
    asgi_browser: TestClient, signer: Signer
) -> None:
    assert signer.rp.client_secret is not None
    secret = OctKey.import_key(signer.rp.client_secret.encode())
    _verifier, challenge = pkce_pair()
    forged = joserfc_jwt.encode(
        {"alg": "HS256", "typ": TYP}, signer.claims(challenge), secret, algorithms=["HS256"]
    )
    refused(asgi_browser.get(front(signer.rp, forged), headers=JSON))


def test_attack_signed_by_another_clients_key_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, signer: Signer
) -> None:
    other = Signer(hoviyat_app, "rp-other", ECKey.generate_key("P-256", auto_kid=True), "ES256")
    _verifier, challenge = pkce_pair()
    # The other client's object, claiming to be this client's; and with no kid at all.
    forged = other.sign(signer.claims(challenge))
    refused(asgi_browser.get(front(signer.rp, forged), headers=JSON))
    forged = other.sign(signer.claims(challenge), kid=signer.key.kid)
    refused(asgi_browser.get(front(signer.rp, forged), headers=JSON))


def test_attack_expired_request_object_refused(asgi_browser: TestClient, signer: Signer) -> None:
    _verifier, challenge = pkce_pair()
    now = int(time.time())
    expired = signer.sign(signer.claims(challenge, nbf=now - 600, iat=now - 600, exp=now - 120))
    refused(asgi_browser.get(front(signer.rp, expired), headers=JSON))
    no_exp = signer.sign(signer.claims(challenge, exp=None))
    refused(asgi_browser.get(front(signer.rp, no_exp), headers=JSON))


def test_attack_nbf_too_old_refused(asgi_browser: TestClient, signer: Signer) -> None:
    _verifier, challenge = pkce_pair()
    now = int(time.time())
    # FAPI 2.0 Message Signing §5.3.1: nbf at most 60 minutes old, exp at most 60 after it.
    stale = signer.sign(signer.claims(challenge, nbf=now - 3700, iat=now - 3700, exp=now + 60))
    refused(asgi_browser.get(front(signer.rp, stale), headers=JSON))
    long_lived = signer.sign(signer.claims(challenge, exp=now + 7200))
    refused(asgi_browser.get(front(signer.rp, long_lived), headers=JSON))
    future = signer.sign(signer.claims(challenge, nbf=now + 600, exp=now + 900))
    refused(asgi_browser.get(front(signer.rp, future), headers=JSON))
    no_nbf = signer.sign(signer.claims(challenge, nbf=None))
    refused(asgi_browser.get(front(signer.rp, no_nbf), headers=JSON))


@pytest.mark.parametrize(
    "audience",
    [
        "https://another-issuer.example",
        ["https://another-issuer.example"],
        "ISSUER/token",
        ["ISSUER", "https://another-issuer.example"],  # also for another server: replayable
        None,
    ],
)
def test_attack_aud_another_issuer_refused(
    asgi_browser: TestClient, signer: Signer, audience: Any
) -> None:
    if isinstance(audience, str):
        audience = audience.replace("ISSUER", signer.issuer)
    elif isinstance(audience, list):
        audience = [value.replace("ISSUER", signer.issuer) for value in audience]
    _verifier, challenge = pkce_pair()
    forged = signer.sign(signer.claims(challenge, aud=audience))
    refused(asgi_browser.get(front(signer.rp, forged), headers=JSON))


def test_attack_iss_or_client_id_mismatch_with_outer_client_id_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, signer: Signer
) -> None:
    other = register_rp(hoviyat_app, "rp-victim")
    _verifier, challenge = pkce_pair()
    # The object is for signer's client, sent in another client's name, and the reverse.
    own = signer.sign(signer.claims(challenge))
    refused(asgi_browser.get(front(other, own), headers=JSON), "invalid_request_object")
    for overrides in ({"iss": other.client_id}, {"client_id": other.client_id}, {"iss": None}):
        forged = signer.sign(signer.claims(challenge, **overrides))
        refused(asgi_browser.get(front(signer.rp, forged), headers=JSON))
    # Without an outer client_id there are no keys to verify with.
    refused(
        asgi_browser.get("/authorize?" + urlencode({"request": own}), headers=JSON),
        "invalid_request",
    )


def test_attack_outer_parameters_overriding_inner_scope_and_redirect_uri_ignored(
    hoviyat_app: FastAPI, asgi_browser: TestClient, signer: Signer
) -> None:
    _verifier, challenge = pkce_pair()
    claims = signer.claims(challenge, scope="openid", state="inner-state")
    outer = {
        "scope": "openid profile national_id legal_entity",
        "redirect_uri": "https://attacker.example/callback",
        "state": "outer-state",
        "code_challenge": pkce_pair()[1],
        "prompt": "none",
    }
    page = asgi_browser.get(front(signer.rp, signer.sign(claims), **outer))
    assert page.status_code == 200, page.text  # the login form, not prompt=none's redirect
    stored = stored_request(hoviyat_app, page)
    assert stored["scope"] == ["openid"]
    assert stored["redirect_uri"] == REDIRECT_URI
    assert stored["state"] == "inner-state"
    assert stored["code_challenge"] == challenge
    assert stored["prompt"] == []
    # OIDC Core §6.1: a response_type sent outside too must be the object's.
    token = signer.sign(signer.claims(challenge))
    refused(asgi_browser.get(front(signer.rp, token, response_type="token"), headers=JSON))


def test_attack_replayed_jti_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, signer: Signer
) -> None:
    _verifier, challenge = pkce_pair()
    token = signer.sign(signer.claims(challenge))
    assert asgi_browser.get(front(signer.rp, token)).status_code == 200
    refused(asgi_browser.get(front(signer.rp, token), headers=JSON))
    # Used at /authorize, it cannot be pushed either.
    pushed = push(asgi_browser, signer.rp, client_id=signer.rp.client_id, request=token)
    assert pushed.status_code == 400, pushed.text
    assert pushed.json()["error"] == "invalid_request_object"
    # A client assertion with the same jti value is another JWT: not spent by it.
    with hoviyat_app.state.hoviyat.db.read() as session:
        assert len(session.exec(select(OidcPushedRequest)).all()) == 0


def test_attack_unsigned_par_refused_for_a_client_requiring_signed_objects(
    hoviyat_app: FastAPI, asgi_browser: TestClient, signer: Signer
) -> None:
    _require_signed(hoviyat_app, signer.rp)
    _verifier, challenge = pkce_pair()
    plain = {k: str(v) for k, v in signer.claims(challenge).items() if k in _PLAIN}
    unsigned = push(asgi_browser, signer.rp, **plain)
    assert unsigned.status_code == 400, unsigned.text
    assert unsigned.json()["error"] == "invalid_request"
    # The plain front-channel request is refused too, at the registered redirect URI.
    refusal = asgi_browser.get("/authorize", params=plain)
    assert refusal.status_code == 302
    assert query_of(refusal.headers["location"])["error"] == "invalid_request"
    # The same parameters, signed, pushed: accepted, and the login form follows.
    signed = push(
        asgi_browser,
        signer.rp,
        client_id=signer.rp.client_id,
        request=signer.sign(signer.claims(challenge)),
    )
    assert signed.status_code == 201, signed.text
    page = asgi_browser.get(
        "/authorize?"
        + urlencode({"client_id": signer.rp.client_id, "request_uri": signed.json()["request_uri"]})
    )
    assert page.status_code == 200, page.text


_PLAIN = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def test_attack_tampered_payload_refused(asgi_browser: TestClient, signer: Signer) -> None:
    _verifier, challenge = pkce_pair()
    header, payload, signature = signer.sign(signer.claims(challenge)).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["redirect_uri"] = "https://attacker.example/callback"
    claims["scope"] = "openid national_id"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(asgi_browser.get(front(signer.rp, f"{header}.{forged}.{signature}"), headers=JSON))


@pytest.mark.parametrize(
    "header",
    [{"typ": "JWT"}, {"typ": "at+jwt"}, {"crit": ["exp"]}, {"kid": 7}],
)
def test_attack_other_jwt_types_or_critical_headers_refused(
    asgi_browser: TestClient, signer: Signer, header: dict[str, Any]
) -> None:
    _verifier, challenge = pkce_pair()
    forged = _signed_by_hand(signer, header, signer.claims(challenge))
    refused(asgi_browser.get(front(signer.rp, forged), headers=JSON))


def _signed_by_hand(signer: Signer, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A valid ES256 signature over a header joserfc itself would refuse to build."""
    assert isinstance(signer.key, ECKey)
    protected = {"alg": "ES256", "kid": signer.key.kid, **header}
    signing_input = f"{_b64(json.dumps(protected).encode())}.{_b64(json.dumps(claims).encode())}"
    private = signer.key.private_key
    assert private is not None
    der = private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("nested", ["request", "request_uri"])
def test_attack_nested_request_or_request_uri_refused(
    asgi_browser: TestClient, signer: Signer, nested: str
) -> None:
    _verifier, challenge = pkce_pair()
    inner = signer.sign(signer.claims(challenge))
    forged = signer.sign(signer.claims(challenge, **{nested: inner}))
    refused(asgi_browser.get(front(signer.rp, forged), headers=JSON))


@pytest.mark.parametrize(
    "request_object",
    ["", "not-a-jws", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.", "x" * 20_000, "a.b.c.d.e"],
)
def test_attack_garbage_request_objects_refused_without_a_server_error(
    asgi_browser: TestClient, signer: Signer, request_object: str
) -> None:
    answer = asgi_browser.get(front(signer.rp, request_object), headers=JSON)
    assert answer.status_code == 400, answer.text
    assert "location" not in answer.headers
    # A browser is shown the error page, not sent anywhere.
    page = asgi_browser.get(front(signer.rp, request_object))
    assert page.status_code == 400
    assert "text/html" in page.headers["content-type"]


def test_attack_inner_errors_after_verification_go_to_the_registered_redirect_uri(
    asgi_browser: TestClient, signer: Signer
) -> None:
    """A verified object names a registered redirect URI: its other errors are redirected."""
    _verifier, challenge = pkce_pair()
    token = signer.sign(signer.claims(challenge, scope="profile", state="s2"))
    answer = asgi_browser.get(front(signer.rp, token))
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(REDIRECT_URI + "?")
    assert query_of(answer.headers["location"]) | {"error_description": ""} == {
        "error": "invalid_scope",
        "error_description": "",
        "state": "s2",
        "iss": signer.issuer,
    }
    attacker = signer.sign(signer.claims(challenge, redirect_uri="https://attacker.example/cb"))
    refused(asgi_browser.get(front(signer.rp, attacker), headers=JSON), None)
