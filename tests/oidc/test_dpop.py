"""DPoP (RFC 9449) in the OpenID Connect code flow: /token, /userinfo, introspection, refresh.

A relying party proves possession of its DPoP key when it redeems the code; the
access token it gets is bound to that key, and /userinfo answers only to a
proof by the same key, made for that request and that token. Runs on SQLite
and PostgreSQL over the app's ASGI transport.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from dpop_support import DPoPKey, b64url, claims_of
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import RSAKey
from oidc_support import (
    RelyingParty,
    authorization_params,
    code_for,
    log_in,
    pkce_pair,
    register_rp,
)
from sqlmodel import Session, select

from idp.app import create_app
from idp.audit.log import AuditEvent
from idp.clients import create_client
from idp.oauth import rfc9449
from idp.oidc.registration import oidc_attributes
from idp.storage import dpop_proofs
from idp.storage.models import AuditEntry
from verifiers.registry.base import Person


def _url(browser: TestClient, path: str) -> str:
    return str(browser.base_url).rstrip("/") + path


def _code(app: FastAPI, browser: TestClient, rp: RelyingParty, citizen: Person) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    return code_for(app, browser, authorization_params(rp, challenge), login), verifier


def _redeem(
    browser: TestClient, rp: RelyingParty, code: str, verifier: str, key: DPoPKey | None
) -> httpx.Response:
    headers = {"DPoP": key.proof("POST", _url(browser, "/token"))} if key else {}
    return browser.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(rp.client_id, rp.client_secret or ""),
        headers=headers,
    )


def _refresh(
    browser: TestClient, rp: RelyingParty, refresh_token: str, key: DPoPKey | None
) -> httpx.Response:
    headers = {"DPoP": key.proof("POST", _url(browser, "/token"))} if key else {}
    return browser.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(rp.client_id, rp.client_secret or ""),
        headers=headers,
    )


def _userinfo(
    browser: TestClient, token: str, proof: str | None, *, scheme: str = "DPoP", **headers: str
) -> httpx.Response:
    sent = {"Authorization": f"{scheme} {token}", **headers}
    if proof is not None:
        sent["DPoP"] = proof
    return browser.get("/userinfo", headers=sent)


def _refused(response: httpx.Response, error: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("DPoP ")
    assert f'error="{error}"' in response.headers["www-authenticate"]


@pytest.fixture
def bound(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> tuple[DPoPKey, dict[str, Any]]:
    """A DPoP-bound token response for the relying party and its key."""
    key = DPoPKey()
    code, verifier = _code(hoviyat_app, asgi_browser, rp, citizen)
    response = _redeem(asgi_browser, rp, code, verifier, key)
    assert response.status_code == 200, response.text
    return key, response.json()


def test_code_flow_with_dpop_then_userinfo_introspection_and_refresh(
    asgi_browser: TestClient, rp: RelyingParty, bound: tuple[DPoPKey, dict[str, Any]]
) -> None:
    key, body = bound
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": key.jkt}
    assert "cnf" not in claims_of(body["id_token"])  # the ID token is not a DPoP matter

    url = _url(asgi_browser, "/userinfo")
    answer = _userinfo(asgi_browser, token, key.proof("GET", url, access_token=token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == claims_of(body["id_token"])["sub"]
    signed = _userinfo(
        asgi_browser,
        token,
        key.proof("GET", url, access_token=token),
        Accept="application/jwt",
    )
    assert signed.status_code == 200 and signed.headers["content-type"] == "application/jwt"

    introspected = asgi_browser.post(
        "/introspect", data={"token": token}, auth=(rp.client_id, rp.client_secret or "")
    ).json()
    assert introspected["active"] is True
    assert (introspected["token_type"], introspected["cnf"]) == ("DPoP", {"jkt": key.jkt})

    # Refresh with a proof: a new access token bound to the key proven now.
    refreshed = _refresh(asgi_browser, rp, body["refresh_token"], key)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "DPoP"
    assert claims_of(refreshed.json()["access_token"])["cnf"] == {"jkt": key.jkt}
    # RFC 9449 §5: this confidential client's refresh token is bound to its client
    # authentication, not to the DPoP key; without a proof the access token is a bearer one.
    plain = _refresh(asgi_browser, rp, refreshed.json()["refresh_token"], None)
    assert plain.status_code == 200, plain.text
    assert plain.json()["token_type"] == "Bearer"
    assert "cnf" not in claims_of(plain.json()["access_token"])


def test_bound_token_presented_as_bearer_at_userinfo(
    asgi_browser: TestClient, bound: tuple[DPoPKey, dict[str, Any]]
) -> None:
    key, body = bound
    token = body["access_token"]
    _refused(_userinfo(asgi_browser, token, None, scheme="Bearer"), "invalid_token")
    proof = key.proof("GET", _url(asgi_browser, "/userinfo"), access_token=token)
    _refused(_userinfo(asgi_browser, token, proof, scheme="Bearer"), "invalid_token")


def test_token_presented_without_proof_at_userinfo(
    asgi_browser: TestClient, bound: tuple[DPoPKey, dict[str, Any]]
) -> None:
    _refused(_userinfo(asgi_browser, bound[1]["access_token"], None), "invalid_dpop_proof")


def test_proof_for_another_url_or_method_at_userinfo(
    asgi_browser: TestClient, bound: tuple[DPoPKey, dict[str, Any]]
) -> None:
    key, body = bound
    token = body["access_token"]
    for method, path in (("GET", "/token"), ("POST", "/userinfo"), ("GET", "/userinfo/")):
        proof = key.proof(method, _url(asgi_browser, path), access_token=token)
        _refused(_userinfo(asgi_browser, token, proof), "invalid_dpop_proof")


def test_proof_by_another_key_than_cnf_jkt_at_userinfo(
    asgi_browser: TestClient, bound: tuple[DPoPKey, dict[str, Any]]
) -> None:
    token = bound[1]["access_token"]
    proof = DPoPKey().proof("GET", _url(asgi_browser, "/userinfo"), access_token=token)
    _refused(_userinfo(asgi_browser, token, proof), "invalid_token")


def test_replayed_jti_at_userinfo(
    asgi_browser: TestClient, bound: tuple[DPoPKey, dict[str, Any]]
) -> None:
    key, body = bound
    token = body["access_token"]
    proof = key.proof("GET", _url(asgi_browser, "/userinfo"), access_token=token)
    assert _userinfo(asgi_browser, token, proof).status_code == 200
    _refused(_userinfo(asgi_browser, token, proof), "invalid_dpop_proof")


def test_stale_iat_and_forged_ath_at_userinfo(
    asgi_browser: TestClient, bound: tuple[DPoPKey, dict[str, Any]]
) -> None:
    key, body = bound
    token = body["access_token"]
    url = _url(asgi_browser, "/userinfo")
    stale = key.proof("GET", url, access_token=token, claims={"iat": int(time.time()) - 300})
    _refused(_userinfo(asgi_browser, token, stale), "invalid_dpop_proof")
    for ath in (None, body["refresh_token"]):
        forged = key.proof("GET", url, access_token=token, claims={"ath": ath})
        _refused(_userinfo(asgi_browser, token, forged), "invalid_dpop_proof")


def test_proof_with_the_code_redemption_by_another_key_binds_only_that_key(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    """A thief who redeems a stolen code with their own key gets a token bound to it;
    the PKCE verifier, not DPoP, keeps the code from them, and it stays refused."""
    code, verifier = _code(hoviyat_app, asgi_browser, rp, citizen)
    thief = DPoPKey()
    # A different last character: "x" itself would leave a verifier ending in "x" intact.
    wrong = verifier[:-1] + ("A" if verifier[-1] != "A" else "B")
    wrong_verifier = _redeem(asgi_browser, rp, code, wrong, thief)
    assert wrong_verifier.status_code == 400
    assert wrong_verifier.json()["error"] == "invalid_grant"


def test_dpop_bound_client_without_proof_is_refused_and_keeps_its_code(
    hoviyat_app: FastAPI, asgi_browser: TestClient, citizen: Person
) -> None:
    hoviyat = hoviyat_app.state.hoviyat
    attributes = oidc_attributes(
        redirect_uris=["https://rp.example/callback"],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code", "refresh_token"],
        auth_method="client_secret_basic",
        id_token_alg="ES256",
        sector_identifier=None,
        dpop_bound_access_tokens=True,
    )
    with hoviyat.db.session() as session:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="RP bound",
            service_code="demo-tax-portal",
            client_id="rp-bound",
            **attributes,
        )
    rp = RelyingParty("rp-bound", created.client_secret, "https://rp.example/callback")
    code, verifier = _code(hoviyat_app, asgi_browser, rp, citizen)
    refused = _redeem(asgi_browser, rp, code, verifier, None)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_dpop_proof"
    key = DPoPKey()
    issued = _redeem(asgi_browser, rp, code, verifier, key)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    # Its refreshes need a proof too (§5.2: every access token of this client is bound).
    assert _refresh(asgi_browser, rp, issued.json()["refresh_token"], None).status_code == 400


def test_plain_relying_party_keeps_bearer_tokens(
    hoviyat_app: FastAPI, asgi_browser: TestClient, citizen: Person
) -> None:
    rp = register_rp(hoviyat_app, "rp-plain")
    code, verifier = _code(hoviyat_app, asgi_browser, rp, citizen)
    body = _redeem(asgi_browser, rp, code, verifier, None).json()
    assert body["token_type"] == "Bearer"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 200


# --- RFC 9449 §10: the authorization code bound to a DPoP key at /authorize ---


def _bound_code(
    app: FastAPI, browser: TestClient, rp: RelyingParty, citizen: Person, jkt: str
) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    params = authorization_params(rp, challenge, dpop_jkt=jkt)
    return code_for(app, browser, params, login), verifier


def test_code_bound_by_dpop_jkt_redeems_with_that_key(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    key = DPoPKey()
    code, verifier = _bound_code(hoviyat_app, asgi_browser, rp, citizen, key.jkt)
    issued = _redeem(asgi_browser, rp, code, verifier, key)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    assert claims_of(issued.json()["access_token"])["cnf"] == {"jkt": key.jkt}


def test_attack_stolen_dpop_bound_code_redeemed_with_the_thiefs_key_is_refused_and_kept(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    """A thief holding the code and the client's credentials, but not its DPoP key,
    gets nothing, and the rightful client can still redeem the code."""
    owner, thief = DPoPKey(), DPoPKey()
    code, verifier = _bound_code(hoviyat_app, asgi_browser, rp, citizen, owner.jkt)
    for attempt in (thief, None):
        refused = _redeem(asgi_browser, rp, code, verifier, attempt)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_grant"
        assert "dpop_jkt" in refused.json()["error_description"]
    assert _redeem(asgi_browser, rp, code, verifier, owner).status_code == 200


@pytest.mark.parametrize("jkt", ["short", "x" * 44, "a" * 42 + "+=", "é" * 43, " " + "a" * 42])
def test_attack_malformed_dpop_jkt_is_refused_at_the_redirect_uri(
    asgi_browser: TestClient, rp: RelyingParty, jkt: str
) -> None:
    _verifier, challenge = pkce_pair()
    answer = asgi_browser.get(
        "/authorize",
        params=authorization_params(rp, challenge, dpop_jkt=jkt),
        follow_redirects=False,
    )
    assert answer.status_code in (302, 303), answer.text
    assert "error=invalid_request" in answer.headers["location"]
    assert "dpop_jkt" in answer.headers["location"]


def _pushed_bound_code(
    app: FastAPI,
    browser: TestClient,
    rp: RelyingParty,
    citizen: Person,
    proof_key: DPoPKey,
    **extra: str,
) -> tuple[str, str]:
    """RFC 9449 §10.1: the DPoP proof sent with the pushed request binds the code."""
    verifier, challenge = pkce_pair()
    pushed = browser.post(
        "/par",
        data={**authorization_params(rp, challenge), **extra},
        auth=(rp.client_id, rp.client_secret or ""),
        headers={"DPoP": proof_key.proof("POST", _url(browser, "/par"))},
    )
    assert pushed.status_code == 201, pushed.text
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    params = {"client_id": rp.client_id, "request_uri": pushed.json()["request_uri"]}
    return code_for(app, browser, params, login), verifier


def test_dpop_proof_at_par_binds_the_code_to_its_key(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    key = DPoPKey()
    code, verifier = _pushed_bound_code(hoviyat_app, asgi_browser, rp, citizen, key)
    assert _redeem(asgi_browser, rp, code, verifier, DPoPKey()).status_code == 400
    issued = _redeem(asgi_browser, rp, code, verifier, key)
    assert issued.status_code == 200, issued.text
    assert claims_of(issued.json()["access_token"])["cnf"] == {"jkt": key.jkt}


def test_attack_par_with_dpop_jkt_of_another_key_than_its_proof_is_refused(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _verifier, challenge = pkce_pair()
    signer, other = DPoPKey(), DPoPKey()
    pushed = asgi_browser.post(
        "/par",
        data=authorization_params(rp, challenge, dpop_jkt=other.jkt),
        auth=(rp.client_id, rp.client_secret or ""),
        headers={"DPoP": signer.proof("POST", _url(asgi_browser, "/par"))},
    )
    assert pushed.status_code == 400, pushed.text
    assert pushed.json()["error"] == "invalid_dpop_proof"


def test_attack_replayed_or_misdirected_dpop_proof_at_par_is_refused(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    key = DPoPKey()

    def push(proof: str) -> httpx.Response:
        _verifier, challenge = pkce_pair()
        return asgi_browser.post(
            "/par",
            data=authorization_params(rp, challenge),
            auth=(rp.client_id, rp.client_secret or ""),
            headers={"DPoP": proof},
        )

    proof = key.proof("POST", _url(asgi_browser, "/par"))
    assert push(proof).status_code == 201
    replayed = push(proof)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_dpop_proof"
    for_token = push(key.proof("POST", _url(asgi_browser, "/token")))
    assert for_token.status_code == 400 and for_token.json()["error"] == "invalid_dpop_proof"


# --- what makes a proof cheap must not make it weaker -------------------------------------------

TOKEN_URL = "https://idp.example/token"


def test_attack_a_known_header_signed_by_another_key_is_refused() -> None:
    """The key a header names is kept per header; the signature is still checked each time."""
    key, thief = DPoPKey(), DPoPKey()
    accepted = rfc9449.verify(key.proof("POST", TOKEN_URL), method="POST", url=TOKEN_URL, window=60)
    assert accepted.jkt == key.jkt
    forged = key.proof("POST", TOKEN_URL, signer=thief.key)  # key's header, thief's signature
    assert forged.split(".")[0] == key.proof("POST", TOKEN_URL).split(".")[0]
    with pytest.raises(rfc9449.InvalidProof, match="signature"):
        rfc9449.verify(forged, method="POST", url=TOKEN_URL, window=60)
    header, payload, _ = key.proof("POST", TOKEN_URL).split(".")
    with pytest.raises(rfc9449.InvalidProof, match="signature"):
        rfc9449.verify(f"{header}.{payload}.", method="POST", url=TOKEN_URL, window=60)


def test_attack_a_refused_header_is_refused_every_time() -> None:
    """Only headers that pass are remembered: a bad one is checked, and refused, again."""
    key = DPoPKey()
    private = key.proof("POST", TOKEN_URL, header={"jwk": dict(key.key.as_dict(private=True))})
    rsa = DPoPKey(RSAKey.generate_key(2048), alg="PS256")
    mismatched = rsa.proof("POST", TOKEN_URL, header={"alg": "ES256"}, signer=key.key)
    for proof in (private, private, mismatched, mismatched):
        with pytest.raises(rfc9449.InvalidProof):
            rfc9449.verify(proof, method="POST", url=TOKEN_URL, window=60)


def _proof(key: DPoPKey) -> rfc9449.Proof:
    return rfc9449.verify(key.proof("POST", TOKEN_URL), method="POST", url=TOKEN_URL, window=60)


def test_attack_one_proof_twice_in_one_batch_has_one_winner_and_one_audit_entry(
    hoviyat_app: FastAPI,
) -> None:
    """Spent through the group committer, a batch's proofs go in one INSERT; a proof
    presented twice in that batch is accepted once, its loser leaves no audit entry,
    and the batch's other writes commit."""
    hoviyat = hoviyat_app.state.hoviyat
    proof, other = _proof(DPoPKey()), _proof(DPoPKey())

    def slow(session: Session) -> None:
        time.sleep(0.3)  # holds the writer so the writes below queue into one batch

    def event(code: str) -> AuditEvent:
        return AuditEvent(code, "token_issued", "client", "ok")

    first = hoviyat.committer.submit(slow)
    twice = [
        hoviyat.committer.submit(rfc9449.spending(proof, 60, event(code)))
        for code in ("TWICE-1", "TWICE-2")
    ]
    neighbour = hoviyat.committer.submit(rfc9449.spending(other, 60, event("NEIGHBOUR")))
    first.result(timeout=30)
    neighbour.result(timeout=30)
    outcomes = []
    for future in twice:
        try:
            future.result(timeout=30)
            outcomes.append("spent")
        except dpop_proofs.ProofReplayed:
            outcomes.append("replayed")
    assert sorted(outcomes) == ["replayed", "spent"]
    with hoviyat.db.read() as session:
        codes = [entry.tracking_code for entry in session.exec(select(AuditEntry))]
        rows = session.exec(select(dpop_proofs.OauthDpopProof)).all()
    assert sorted(c for c in codes if c in {"TWICE-1", "TWICE-2", "NEIGHBOUR"}) == [
        "NEIGHBOUR",
        "TWICE-1" if outcomes[0] == "spent" else "TWICE-2",
    ]
    assert len(rows) == 2


def test_attack_a_proof_spent_by_the_committer_is_refused_in_a_grant_transaction(
    hoviyat_app: FastAPI,
) -> None:
    """Both ways of spending share one table: spent in a batch, refused in a session,
    and the other way round."""
    hoviyat = hoviyat_app.state.hoviyat
    batched, in_session = _proof(DPoPKey()), _proof(DPoPKey())
    rfc9449.spend_now(hoviyat.committer, batched, 60)
    with pytest.raises(rfc9449.InvalidProof, match="replay"):
        rfc9449.spend_now(hoviyat.committer, batched, 60)
    with pytest.raises(rfc9449.InvalidProof, match="replay"):
        hoviyat.committer.call(lambda session: rfc9449.spend(session, batched, 60))
    hoviyat.committer.call(lambda session: rfc9449.spend(session, in_session, 60))
    with pytest.raises(rfc9449.InvalidProof, match="replay"):
        rfc9449.spend_now(hoviyat.committer, in_session, 60)


def test_attack_unencoded_payload_or_loose_base64_is_refused() -> None:
    """RFC 7797's b64=false would change what the signature covers; padding or stray
    characters in a segment are not base64url (RFC 7515 §2)."""
    key = DPoPKey()
    # joserfc will not make one without crit: made by hand, signed as RFC 7797 §3 says.
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk(), "b64": False}
    claims = {"jti": "unencoded", "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time())}
    segment = b64url(json.dumps(header).encode()).encode()
    raw = json.dumps(claims).encode()
    es256 = jws.JWSRegistry(algorithms=["ES256"]).get_alg("ES256")
    signature = b64url(es256.sign(segment + b"." + raw, key.key))
    for payload in (raw.decode(), b64url(raw)):
        with pytest.raises(rfc9449.InvalidProof):
            rfc9449.verify(
                f"{segment.decode()}.{payload}.{signature}", method="POST", url=TOKEN_URL, window=60
            )
    header, payload, signature = key.proof("POST", TOKEN_URL).split(".")
    assert rfc9449.verify(
        f"{header}.{payload}.{signature}", method="POST", url=TOKEN_URL, window=60
    )
    for loose in (f"{header}.{payload}=.{signature}", f"{header}.{payload}.{signature}+"):
        with pytest.raises(rfc9449.InvalidProof):
            rfc9449.verify(loose, method="POST", url=TOKEN_URL, window=60)


def test_attack_one_proof_at_two_workers_at_once_is_spent_once(hoviyat_app: FastAPI) -> None:
    """Two apps over one database (two workers or hosts), each with its own group
    committer, spend the same proofs at the same moment: each proof has one winner."""
    other = create_app(hoviyat_app.state.hoviyat.settings)
    committers = [hoviyat_app.state.hoviyat.committer, other.state.hoviyat.committer]
    try:
        for _ in range(10):
            proof = _proof(DPoPKey())
            barrier = threading.Barrier(len(committers))
            outcomes: list[str] = []

            def spend(committer: Any, proof: rfc9449.Proof = proof) -> None:
                barrier.wait()
                try:
                    rfc9449.spend_now(committer, proof, 60)
                    outcomes.append("spent")
                except rfc9449.InvalidProof:
                    outcomes.append("replayed")

            threads = [threading.Thread(target=spend, args=(c,)) for c in committers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(outcomes) == ["replayed", "spent"]
    finally:
        other.state.hoviyat.close()
