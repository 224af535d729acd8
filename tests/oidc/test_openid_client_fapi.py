"""openid-client v6 (Node, OpenID-certified) drives FAPI 2.0 flows and attacks (issue 14).

An independent relying party, not written here, speaks to a served Hoviyat
over real HTTP: signed requests (RFC 9101) by value and through PAR (RFC
9126), JARM, DPoP-bound codes, refresh and client-credentials tokens (RFC
9449, with and without server nonces), userinfo, the verification API,
introspection plain and signed (RFC 7662, RFC 9701) and revocation (RFC 7009).
The attacks are made with openid-client's own hooks: ``modifyAssertion``
changes what it signs, ``customFetch`` changes what goes on the wire after it
made its DPoP proof. Each asserts the OAuth error code the client library
reports, and each has its control: the same request, untampered, is served.

One node process serves the whole module (tests/oidc/node/fapi.mjs through
openid_client_driver.py); each test has its own app, server and clients.
Skipped with the reason when node or its package cannot be had. For mutual
TLS (RFC 8705) the TLS itself ends at the reverse proxy, which forwards the
client certificate as X-Client-Certificate; openid-client's wire plays that
proxy here, so the handshake is not exercised, what Hoviyat does with the
certificate is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from mtls_support import self_signed
from node_support import node_with
from oidc_support import REDIRECT_URI, SERVICE, complete, finish_interaction, log_in, start
from openid_client_driver import NODE_DIR, NodeRp

from idp.clients import create_client
from idp.oidc import rfc7591
from idp.oidc.registration import oidc_attributes
from idp.settings import Settings
from verifiers.registry.base import LegalEntity, Person

FAPI_CLIENT = "rp-openid-client-fapi2"
JAR_CLIENT = "rp-openid-client-jar"


@pytest.fixture(scope="module")
def node_rp() -> Iterator[NodeRp]:
    driver = NodeRp(node_with(NODE_DIR, "openid-client"))
    yield driver
    driver.close()


@dataclass(frozen=True)
class Rp:
    """A registered client and what the node side needs to act as it."""

    settings: dict[str, Any]
    dpop_key: ECKey

    @property
    def issuer(self) -> str:
        return str(self.settings["issuer"])

    def with_jarm(self) -> dict[str, Any]:
        return {**self.settings, "jarm": True}


def _register(app: FastAPI, client_id: str, *, profile: str | None) -> Rp:
    hoviyat = app.state.hoviyat
    client_key = ECKey.generate_key("P-256", auto_kid=True)
    attributes = oidc_attributes(
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        auth_method="private_key_jwt",
        id_token_alg="ES256",
        sector_identifier=None,
        jwks={"keys": [client_key.as_dict(private=False)]},
        # Without the profile: each requirement the profile implies, but PAR.
        require_signed_request_object=profile is None,
        dpop_bound_access_tokens=profile is None,
        profile=profile,
    )
    with hoviyat.db.session() as session:
        create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name=client_id,
            service_code=SERVICE,
            client_id=client_id,
            with_secret=False,
            **attributes,
        )
    dpop_key = ECKey.generate_key("P-256")
    settings = {
        "issuer": hoviyat.settings.issuer,
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "client_key": client_key.as_dict(private=True),
        "dpop_key": dpop_key.as_dict(private=True),
        "other_dpop_key": ECKey.generate_key("P-256").as_dict(private=True),
        "jarm": False,
    }
    return Rp(settings, dpop_key)


@pytest.fixture
def hoviyat_settings(hoviyat_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """As conftest's; parametrized indirectly with "dpop-nonce" the server wants DPoP nonces,
    with "behind-proxy" it believes the client certificate the loopback proxy forwards."""
    wanted = getattr(request, "param", None)
    if wanted == "dpop-nonce":
        return hoviyat_settings.model_copy(update={"dpop_require_nonce": True})
    if wanted == "behind-proxy":
        # RFC 8705 through the reverse proxy: the loopback peer is the trusted proxy.
        return hoviyat_settings.model_copy(update={"trusted_proxies": ["127.0.0.1"]})
    return hoviyat_settings


@pytest.fixture
def fapi_rp(hoviyat_app: FastAPI) -> Rp:
    return _register(hoviyat_app, FAPI_CLIENT, profile="fapi2")


@pytest.fixture
def jar_rp(hoviyat_app: FastAPI) -> Rp:
    return _register(hoviyat_app, JAR_CLIENT, profile=None)


def _browser_leg(app: FastAPI, server_url: str, citizen: Person, url: str) -> str:
    """The citizen's browser: /authorize, the login, back to the client (its Location)."""
    hoviyat = app.state.hoviyat
    with httpx.Client(base_url=server_url, follow_redirects=False) as browser:
        interaction = start(browser, url)
        finish_interaction(hoviyat.db, interaction, log_in(hoviyat.db, citizen.national_code))
        back = complete(browser, interaction)
    assert back.status_code == 302, back.text
    return str(back.headers["location"])


def _log_in(
    node_rp: NodeRp,
    app: FastAPI,
    server_url: str,
    citizen: Person,
    rp: dict[str, Any],
    how: str,
) -> dict[str, Any]:
    """openid-client's authorization request, the login, and the code redeemed with DPoP."""
    request = node_rp.ok("authorize", rp, how=how)
    callback = _browser_leg(app, server_url, citizen, request["url"])
    tokens: dict[str, Any] = node_rp.ok(
        "code",
        rp,
        callback=callback,
        verifier=request["verifier"],
        state=request["state"],
        nonce=request["nonce"],
    )
    assert tokens["token_type"].lower() == "dpop"
    return tokens


# --- the flows ----------------------------------------------------------------------------------


def test_openid_client_signed_request_through_par_with_jarm(
    node_rp: NodeRp, hoviyat_app: FastAPI, live_server: Any, citizen: Person, fapi_rp: Rp
) -> None:
    rp = fapi_rp.with_jarm()
    request = node_rp.ok("authorize", rp, how="jar+par")
    assert "request_uri=" in request["url"] and "request=" not in request["url"]  # pushed
    callback = _browser_leg(hoviyat_app, live_server.url, citizen, request["url"])
    assert "response=" in callback and "code=" not in callback  # JARM (response_mode=jwt)
    tokens = node_rp.ok(
        "code",
        rp,
        callback=callback,
        verifier=request["verifier"],
        state=request["state"],
        nonce=request["nonce"],
    )
    assert tokens["token_type"].lower() == "dpop"
    userinfo = node_rp.ok("userinfo", rp, access_token=tokens["access_token"], sub=tokens["sub"])
    assert userinfo["given_name"] == citizen.first_name


def test_openid_client_signed_request_by_value(
    node_rp: NodeRp, hoviyat_app: FastAPI, live_server: Any, citizen: Person, jar_rp: Rp
) -> None:
    rp = jar_rp.settings
    request = node_rp.ok("authorize", rp, how="jar")
    assert "request=" in request["url"] and "scope=" not in request["url"]  # RFC 9101 §5.1
    callback = _browser_leg(hoviyat_app, live_server.url, citizen, request["url"])
    tokens = node_rp.ok(
        "code",
        rp,
        callback=callback,
        verifier=request["verifier"],
        state=request["state"],
        nonce=request["nonce"],
    )
    userinfo = node_rp.ok("userinfo", rp, access_token=tokens["access_token"], sub=tokens["sub"])
    assert userinfo["sub"] == tokens["sub"]


def test_openid_client_refreshes_with_dpop_and_introspects(
    node_rp: NodeRp, hoviyat_app: FastAPI, live_server: Any, citizen: Person, fapi_rp: Rp
) -> None:
    rp = fapi_rp.settings
    tokens = _log_in(node_rp, hoviyat_app, live_server.url, citizen, rp, "par")
    assert tokens["refresh_token"]
    refreshed = node_rp.ok("refresh", rp, refresh_token=tokens["refresh_token"])
    assert refreshed["token_type"].lower() == "dpop"
    assert refreshed["access_token"] != tokens["access_token"]
    userinfo = node_rp.ok("userinfo", rp, access_token=refreshed["access_token"], sub=tokens["sub"])
    assert userinfo["sub"] == tokens["sub"]

    # RFC 7662 with RFC 9449 §6.2: active, DPoP, bound to the key openid-client proved.
    answer = node_rp.ok("introspect", rp, token=refreshed["access_token"])
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": fapi_rp.dpop_key.thumbprint()}
    assert answer["client_id"] == FAPI_CLIENT
    # The refresh token rotated (RFC 9700 §4.14.2): the first one is spent.
    assert node_rp.ok("introspect", rp, token=tokens["refresh_token"]) == {"active": False}
    spent = node_rp.error("refresh", rp, refresh_token=tokens["refresh_token"])
    assert (spent["status"], spent["error"]) == (400, "invalid_grant")


def test_openid_client_client_credentials_with_dpop_at_the_verification_api(
    node_rp: NodeRp, fapi_rp: Rp, live_server: Any, citizen: Person
) -> None:
    rp = fapi_rp.settings
    tokens = node_rp.ok("client_credentials", rp, scope="persons.verify")
    assert tokens["token_type"].lower() == "dpop"
    answer = node_rp.ok(
        "resource",
        rp,
        access_token=tokens["access_token"],
        url=fapi_rp.issuer + "/v1/persons/verify",
        method="POST",
        body={"national_code": citizen.national_code},
    )
    assert answer["status"] == 200, answer
    introspected = node_rp.ok("introspect", rp, token=tokens["access_token"])
    assert introspected["cnf"] == {"jkt": fapi_rp.dpop_key.thumbprint()}


def test_openid_client_verifies_signed_introspection_and_revokes(
    node_rp: NodeRp, hoviyat_app: FastAPI, live_server: Any, citizen: Person, fapi_rp: Rp
) -> None:
    """RFC 9701: openid-client asks for the answer as a JWT and verifies it against the
    published keys (iss, aud, typ) before handing it over; RFC 7009: revocation."""
    rp = {**fapi_rp.settings, "signed_introspection": True}
    tokens = _log_in(node_rp, hoviyat_app, live_server.url, citizen, rp, "par")
    answer = node_rp.ok("introspect", rp, token=tokens["access_token"])
    # openid-client would take plain JSON too: the wire shows the answer was the JWT.
    (hop,) = node_rp.wire
    assert hop["content_type"].startswith("application/token-introspection+jwt"), hop
    assert answer["active"] is True
    assert answer["cnf"] == {"jkt": fapi_rp.dpop_key.thumbprint()}
    node_rp.ok("revoke", rp, token=tokens["refresh_token"])
    # RFC 7009 §2.1: revoking the refresh token ends the grant, its access tokens too.
    assert node_rp.ok("introspect", rp, token=tokens["refresh_token"]) == {"active": False}
    assert node_rp.ok("introspect", rp, token=tokens["access_token"]) == {"active": False}
    refused = node_rp.error("refresh", rp, refresh_token=tokens["refresh_token"])
    assert _response_error(refused) == (400, "invalid_grant")


@pytest.mark.parametrize("hoviyat_settings", ["dpop-nonce"], indirect=True)
def test_openid_client_follows_the_servers_dpop_nonces(
    node_rp: NodeRp, hoviyat_app: FastAPI, live_server: Any, citizen: Person, fapi_rp: Rp
) -> None:
    """RFC 9449 §8-§9: every proof must carry the server's nonce; openid-client learns it
    from the use_dpop_nonce answer at /par, /token and the resource, and tries again."""
    assert hoviyat_app.state.hoviyat.settings.dpop_require_nonce
    rp = fapi_rp.settings
    request = node_rp.ok("authorize", rp, how="par")
    # The first push, without a nonce, was refused and told the nonce; the second went through.
    assert [(hop["path"], hop["status"], hop["dpop_nonce"]) for hop in node_rp.wire] == [
        ("/par", 400, True),
        ("/par", 201, False),
    ]
    callback = _browser_leg(hoviyat_app, live_server.url, citizen, request["url"])
    tokens = node_rp.ok(
        "code",
        rp,
        callback=callback,
        verifier=request["verifier"],
        state=request["state"],
        nonce=request["nonce"],
    )
    assert [hop["status"] for hop in node_rp.wire] == [400, 200]
    userinfo = node_rp.ok("userinfo", rp, access_token=tokens["access_token"], sub=tokens["sub"])
    assert userinfo["sub"] == tokens["sub"]
    # RFC 9449 §9: the resource server's refusal is a 401 challenge carrying the nonce.
    assert [(hop["status"], hop["dpop_nonce"]) for hop in node_rp.wire] == [
        (401, True),
        (200, False),
    ]
    assert node_rp.ok("refresh", rp, refresh_token=tokens["refresh_token"])["access_token"]


# --- the attacks: FAPI 2.0 Security Profile §5.3.1.2, §5.3.2.1, RFC 9449, RFC 9101 -------------


def _response_error(error: dict[str, Any]) -> tuple[int, str]:
    """An OAuth error JSON answer, as openid-client reports it (ResponseBodyError)."""
    assert error["code"] == "OAUTH_RESPONSE_BODY_ERROR", error
    return error["status"], error["error"]


def _challenge(error: dict[str, Any]) -> str:
    """The error of a 401's ``WWW-Authenticate: DPoP`` challenge (RFC 9449 §7.1)."""
    assert error["code"] == "OAUTH_WWW_AUTHENTICATE_CHALLENGE", error
    assert error["status"] == 401, error
    (challenge,) = error["challenges"]
    assert challenge["scheme"].lower() == "dpop", challenge
    return str(challenge["parameters"]["error"])


def _refused_at_the_redirect_uri(
    node_rp: NodeRp, server_url: str, rp: dict[str, Any], how: str
) -> dict[str, Any]:
    """openid-client's request goes to /authorize as is; what it makes of the answer."""
    request = node_rp.ok("authorize", rp, how=how)
    with httpx.Client(base_url=server_url, follow_redirects=False) as browser:
        answer = browser.get(request["url"])
    # The client and its redirect URI are known: RFC 9126 §6 lets the refusal go there.
    assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    assert callback.startswith(REDIRECT_URI + "?"), callback
    assert ("response=" in callback) is bool(rp["jarm"]), callback  # JARM: the error signed
    return node_rp.error(
        "code",
        rp,
        callback=callback,
        verifier=request["verifier"],
        state=request["state"],
        nonce=request["nonce"],
    )


@pytest.mark.parametrize("jarm", [False, True], ids=["query", "jarm"])
def test_attack_plain_authorization_request_for_a_fapi2_client_is_refused(
    node_rp: NodeRp, live_server: Any, fapi_rp: Rp, jarm: bool
) -> None:
    # With JARM the refusal itself is a signed response, which openid-client verifies.
    rp = fapi_rp.with_jarm() if jarm else fapi_rp.settings
    error = _refused_at_the_redirect_uri(node_rp, live_server.url, rp, "plain")
    assert error["code"] == "OAUTH_AUTHORIZATION_RESPONSE_ERROR", error
    assert error["error"] == "invalid_request"
    assert "pushed" in error["error_description"]


def test_attack_signed_request_not_pushed_for_a_fapi2_client_is_refused(
    node_rp: NodeRp, live_server: Any, fapi_rp: Rp
) -> None:
    # FAPI 2.0 §5.3.1.2: PAR is required; a valid signature does not replace it.
    error = _refused_at_the_redirect_uri(node_rp, live_server.url, fapi_rp.settings, "jar")
    assert error["code"] == "OAUTH_AUTHORIZATION_RESPONSE_ERROR", error
    assert error["error"] == "invalid_request"
    assert "pushed" in error["error_description"]


def test_attack_fapi2_client_asks_for_a_bearer_token_without_dpop_proof(
    node_rp: NodeRp, fapi_rp: Rp, live_server: Any
) -> None:
    refused = node_rp.error("client_credentials", fapi_rp.settings, dpop=None)
    assert _response_error(refused) == (400, "invalid_dpop_proof")
    assert node_rp.ok("client_credentials", fapi_rp.settings)["token_type"].lower() == "dpop"


def test_attack_fapi2_refresh_without_dpop_proof_is_refused(
    node_rp: NodeRp, hoviyat_app: FastAPI, live_server: Any, citizen: Person, fapi_rp: Rp
) -> None:
    rp = fapi_rp.settings
    tokens = _log_in(node_rp, hoviyat_app, live_server.url, citizen, rp, "par")
    refused = node_rp.error("refresh", rp, refresh_token=tokens["refresh_token"], dpop=None)
    assert _response_error(refused) == (400, "invalid_dpop_proof")
    # Refused before the refresh token was touched: it still works with the proof.
    assert node_rp.ok("refresh", rp, refresh_token=tokens["refresh_token"])["access_token"]


def test_attack_code_bound_at_par_redeemed_with_another_dpop_key_is_refused(
    node_rp: NodeRp, hoviyat_app: FastAPI, live_server: Any, citizen: Person, fapi_rp: Rp
) -> None:
    # RFC 9449 §10: the proof sent with the push bound the code to its key (dpop_jkt).
    rp = fapi_rp.settings
    request = node_rp.ok("authorize", rp, how="par")
    callback = _browser_leg(hoviyat_app, live_server.url, citizen, request["url"])
    checks = {name: request[name] for name in ("verifier", "state", "nonce")}
    stolen = node_rp.error("code", rp, callback=callback, dpop="other", **checks)
    assert _response_error(stolen) == (400, "invalid_grant")
    assert "dpop_jkt" in stolen["error_description"]
    # Refused before the code was spent: the client holding the key still redeems it.
    assert node_rp.ok("code", rp, callback=callback, **checks)["token_type"].lower() == "dpop"


@dataclass(frozen=True)
class Bound:
    """A DPoP-bound access token and the resource it is used at."""

    access_token: str
    url: str
    method: str
    body: dict[str, Any] | None
    # A proof made for this other URL or method is what the attacks send.
    other_url: str
    other_method: str

    def use(self, **tamper: Any) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "url": self.url,
            "method": self.method,
            "body": self.body,
            **tamper,
        }


@pytest.fixture(params=["userinfo", "verification-api"])
def bound(
    request: pytest.FixtureRequest,
    node_rp: NodeRp,
    hoviyat_app: FastAPI,
    live_server: Any,
    citizen: Person,
    fapi_rp: Rp,
) -> Bound:
    """A login's token at /userinfo, or a client-credentials token at the verification API."""
    issuer, rp = fapi_rp.issuer, fapi_rp.settings
    userinfo, verify = issuer + "/userinfo", issuer + "/v1/persons/verify"
    if request.param == "userinfo":
        tokens = _log_in(node_rp, hoviyat_app, live_server.url, citizen, rp, "par")
        return Bound(tokens["access_token"], userinfo, "GET", None, verify, "POST")
    token = node_rp.ok("client_credentials", rp, scope="persons.verify")["access_token"]
    body = {"national_code": citizen.national_code}
    return Bound(token, verify, "POST", body, userinfo, "PUT")


def _admitted(node_rp: NodeRp, rp: Rp, bound: Bound) -> None:
    """The control: the token with openid-client's own proof is served."""
    assert node_rp.ok("resource", rp.settings, **bound.use())["status"] == 200


def test_attack_dpop_proof_made_for_another_url_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, bound: Bound
) -> None:
    # RFC 9449 §4.3 step 9: the proof was made for other_url (htu) and sent here.
    attack = bound.use(url=bound.other_url, send_to=bound.url)
    assert _challenge(node_rp.error("resource", fapi_rp.settings, **attack)) == (
        "invalid_dpop_proof"
    )
    _admitted(node_rp, fapi_rp, bound)


def test_attack_dpop_proof_made_for_another_method_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, bound: Bound
) -> None:
    # RFC 9449 §4.3 step 8: the proof was made for other_method (htm), sent as method.
    attack = bound.use(method=bound.other_method, send_method=bound.method)
    assert _challenge(node_rp.error("resource", fapi_rp.settings, **attack)) == (
        "invalid_dpop_proof"
    )
    _admitted(node_rp, fapi_rp, bound)


def test_attack_dpop_proof_by_another_key_than_the_tokens_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, bound: Bound
) -> None:
    # RFC 9449 §7.1: a well-made proof, by a key that is not the token's cnf.jkt.
    attack = bound.use(dpop="other")
    assert _challenge(node_rp.error("resource", fapi_rp.settings, **attack)) == "invalid_token"
    _admitted(node_rp, fapi_rp, bound)


def test_attack_replayed_dpop_proof_is_refused(node_rp: NodeRp, fapi_rp: Rp, bound: Bound) -> None:
    # RFC 9449 §11.1: the proof of a served request, captured on the wire and sent again.
    answer = node_rp.ok("resource", fapi_rp.settings, **bound.use(replay=True))
    assert answer["first"]["status"] == 200, answer
    assert not answer["second"]["ok"], answer
    assert _challenge(answer["second"]["error"]) == "invalid_dpop_proof"


def test_attack_dpop_bound_token_presented_as_bearer_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, bound: Bound
) -> None:
    # RFC 9449 §7.2: no proof, Authorization: Bearer.
    attack = bound.use(dpop=None)
    assert _challenge(node_rp.error("resource", fapi_rp.settings, **attack)) == "invalid_token"
    _admitted(node_rp, fapi_rp, bound)


def test_attack_replayed_dpop_proof_at_the_token_endpoint_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, live_server: Any
) -> None:
    answer = node_rp.ok("client_credentials", fapi_rp.settings, replay=True)
    assert answer["first"]["token_type"].lower() == "dpop", answer
    assert not answer["second"]["ok"], answer
    assert _response_error(answer["second"]["error"]) == (400, "invalid_dpop_proof")


@pytest.mark.parametrize(
    ("claims", "named"),
    [({"htu": "/par"}, "(htu)"), ({"htm": "GET"}, "(htm)"), ({"iat_offset": -600}, "iat")],
    ids=["another-url", "another-method", "made-ten-minutes-ago"],
)
def test_attack_dpop_proof_not_for_this_token_request_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, live_server: Any, claims: dict[str, Any], named: str
) -> None:
    # RFC 9449 §4.3 steps 8, 9 and 11 at /token: the proof openid-client signs is changed.
    if "htu" in claims:
        claims = {"htu": fapi_rp.issuer + claims["htu"]}
    refused = node_rp.error("client_credentials", fapi_rp.settings, dpop_claims=claims)
    assert _response_error(refused) == (400, "invalid_dpop_proof")
    assert named in refused["error_description"], refused
    assert node_rp.ok("client_credentials", fapi_rp.settings)["token_type"].lower() == "dpop"


def test_attack_introspecting_another_clients_token_learns_nothing(
    node_rp: NodeRp, fapi_rp: Rp, jar_rp: Rp, live_server: Any
) -> None:
    # RFC 7662 §4: a client may not scan other clients' tokens; they are simply inactive.
    token = node_rp.ok("client_credentials", fapi_rp.settings)["access_token"]
    assert node_rp.ok("introspect", jar_rp.settings, token=token) == {"active": False}
    assert node_rp.ok("introspect", fapi_rp.settings, token=token)["active"] is True


@pytest.mark.parametrize("endpoint", ["par", "token"])
@pytest.mark.parametrize(
    "audience", ["issuer-in-an-array", "issuer-and-another-in-an-array", "token-endpoint"]
)
def test_attack_client_assertion_aud_other_than_the_issuer_as_a_string_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, live_server: Any, endpoint: str, audience: str
) -> None:
    # FAPI 2.0 Security Profile §5.3.2.1: the authorization server "shall only accept its
    # issuer identifier value ... as a string in the aud claim" of client assertions.
    # RFC 7523 §3 would let an array through; FAPI 2.0 (and the OpenID Foundation's 2025
    # audience advisory) does not: an assertion naming several servers can be replayed
    # by any one of them at another.
    issuer = fapi_rp.issuer
    aud = {
        "issuer-in-an-array": [issuer],
        "issuer-and-another-in-an-array": [issuer, "https://attacker.example"],
        "token-endpoint": issuer + "/token",
    }[audience]
    rp, assertion = fapi_rp.settings, {"aud": aud}
    if endpoint == "par":
        refused = node_rp.error("authorize", rp, how="par", assertion=assertion)
    else:
        refused = node_rp.error("client_credentials", rp, assertion=assertion)
    assert _response_error(refused) == (401, "invalid_client")
    # The control: openid-client's own assertion (aud the issuer, a string) is accepted.
    assert node_rp.ok("client_credentials", rp, assertion={"aud": issuer})["access_token"]


EXPIRED = {"exp_offset": -120, "nbf_offset": -600, "iat_offset": -600}


def test_attack_expired_request_object_pushed_is_refused(
    node_rp: NodeRp, fapi_rp: Rp, live_server: Any
) -> None:
    # RFC 9101 §6.3, FAPI 2.0 Message Signing §5.3.1: exp in the past (beyond the skew).
    refused = node_rp.error("authorize", fapi_rp.settings, how="jar+par", request_object=EXPIRED)
    assert _response_error(refused) == (400, "invalid_request_object")
    assert "expired" in refused["error_description"]


def test_attack_expired_request_object_by_value_is_refused(
    node_rp: NodeRp, jar_rp: Rp, live_server: Any
) -> None:
    request = node_rp.ok("authorize", jar_rp.settings, how="jar", request_object=EXPIRED)
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as browser:
        answer = browser.get(request["url"], headers={"Accept": "application/json"})
    # Shown, never redirected: the redirect URI inside an unverified object is not trusted.
    assert answer.status_code == 400, answer.text
    assert "location" not in answer.headers
    assert answer.json()["error"] == "invalid_request_object"


# --- RFC 8705: a certificate-bound token presented with another client certificate -------------


@pytest.fixture
def mtls_rp(hoviyat_app: FastAPI) -> Rp:
    """A back-office client that authenticates with its self-signed certificate (§2.2) and
    whose tokens are bound to it (§3); openid-client's wire plays the TLS-terminating proxy."""
    hoviyat = hoviyat_app.state.hoviyat
    mine, thief = self_signed("agency back office"), self_signed("agency back office")
    public_key = ECKey.import_key(mine.certificate.public_key())  # type: ignore[arg-type]
    attributes = oidc_attributes(
        redirect_uris=[],
        post_logout_redirect_uris=[],
        grant_types=["client_credentials"],
        auth_method="self_signed_tls_client_auth",
        id_token_alg="ES256",
        sector_identifier=None,
        jwks={"keys": [public_key.as_dict(private=False)]},
        tls_client_certificate_bound_access_tokens=True,
    )
    with hoviyat.db.session() as session:
        create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="openid-client mTLS",
            service_code=SERVICE,
            client_id="rp-openid-client-mtls",
            with_secret=False,
            **attributes,
        )
    settings = {
        "issuer": hoviyat.settings.issuer,
        "client_id": "rp-openid-client-mtls",
        "client_certificate": mine.header,
        "other_client_certificate": thief.header,
    }
    return Rp(settings, ECKey.generate_key("P-256"))


@pytest.mark.parametrize("hoviyat_settings", ["behind-proxy"], indirect=True)
@pytest.mark.parametrize("presented", ["other_client", None], ids=["another-certificate", "none"])
def test_attack_certificate_bound_token_presented_with_another_or_no_certificate(
    node_rp: NodeRp, mtls_rp: Rp, live_server: Any, citizen: Person, presented: str | None
) -> None:
    rp = mtls_rp.settings
    tokens = node_rp.ok("client_credentials", rp, dpop=None, scope="persons.verify")
    use = {
        "access_token": tokens["access_token"],
        "url": mtls_rp.issuer + "/v1/persons/verify",
        "method": "POST",
        "body": {"national_code": citizen.national_code},
        "dpop": None,
    }
    # The control: with the certificate it is bound to, the token is served.
    assert node_rp.ok("resource", rp, **use)["status"] == 200
    # RFC 8705 §3: another certificate (same names, another key), or none, is refused.
    refused = node_rp.error("resource", rp, certificate=presented, **use)
    assert refused["code"] == "OAUTH_WWW_AUTHENTICATE_CHALLENGE", refused
    assert refused["status"] == 401
    (challenge,) = refused["challenges"]
    # RFC 8705 §3: a certificate-bound token is still presented as Bearer (RFC 6750 §3).
    assert challenge["scheme"].lower() == "bearer", challenge
    assert challenge["parameters"]["error"] == "invalid_token", challenge


# --- dynamic client registration (RFC 7591) -----------------------------------------------------


def _initial_token(app: FastAPI, entity: LegalEntity) -> str:
    hoviyat = app.state.hoviyat
    national_id = rfc7591.check_request(
        hoviyat.registries, hoviyat.policies, entity.national_id, SERVICE
    )
    with hoviyat.db.session() as session:
        token, _row = rfc7591.create_initial_token(
            session, hoviyat.secrets, national_id=national_id, service_code=SERVICE, created_by="t"
        )
    return token


def test_openid_client_registers_with_an_initial_token_then_logs_in_as_the_new_client(
    node_rp: NodeRp,
    hoviyat_app: FastAPI,
    live_server: Any,
    citizen: Person,
    representative: tuple[Person, LegalEntity],
) -> None:
    """openid-client's dynamicClientRegistration (RFC 7591 §3.1) with an administrator's
    initial access token; the client it registered then logs a citizen in through PAR."""
    client_key = ECKey.generate_key("P-256", auto_kid=True)
    token = _initial_token(hoviyat_app, representative[1])
    document = {
        "client_name": "Land registry portal (openid-client)",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [client_key.as_dict(private=False)]},
        "dpop_bound_access_tokens": True,
    }
    rp = {
        "issuer": hoviyat_app.state.hoviyat.settings.issuer,
        "client_id": "",
        "redirect_uri": REDIRECT_URI,
        "client_key": client_key.as_dict(private=True),
        "dpop_key": ECKey.generate_key("P-256").as_dict(private=True),
        "other_dpop_key": ECKey.generate_key("P-256").as_dict(private=True),
        "jarm": False,
    }
    registered = node_rp.ok("register", rp, metadata=document, initial_access_token=token)
    assert registered["token_endpoint_auth_method"] == "private_key_jwt"
    assert registered["registration_client_uri"].endswith("/register/" + registered["client_id"])
    new_rp = {**rp, "client_id": registered["client_id"]}
    tokens = _log_in(node_rp, hoviyat_app, live_server.url, citizen, new_rp, how="par")
    assert tokens["sub"]
    # RFC 7591 §3: the initial access token was single use.
    again = node_rp.error("register", rp, metadata=document, initial_access_token=token)
    assert again["status"] == 401, again
    (challenge,) = again["challenges"]
    assert (challenge["scheme"], challenge["parameters"]["error"]) == ("bearer", "invalid_token")
