"""DPoP (RFC 9449) for back-office systems: client credentials, then the verification API.

Written from the attacker's side: each test takes a correct DPoP exchange and
changes the one thing an attacker would (another URL, method or key, a replayed
or stale proof, a token without its proof...). Runs on SQLite and PostgreSQL,
with the direct routes on and off.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api.helpers import living_person
from dpop_support import DPoPKey, ath, b64url, claims_of, unsigned_proof
from fastapi.testclient import TestClient
from jose import jwt as jose_jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from idp.app import create_app
from idp.oauth.rfc9449 import ServerNonces
from idp.settings import Settings

# Run with the direct routes on and off (tests/api/conftest.py).
BOTH_ROUTINGS = True

VERIFY = "/v1/persons/verify"


def _url(client: TestClient | httpx.Client, path: str) -> str:
    return str(client.base_url).rstrip("/") + path


def _token(
    client: TestClient | httpx.Client, secret: str, key: DPoPKey | None, **headers: str
) -> httpx.Response:
    if key is not None and "DPoP" not in headers:
        headers["DPoP"] = key.proof("POST", _url(client, "/token"))
    return client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-bank", secret),
        headers=headers,
    )


def _bound_token(client: TestClient, demo_clients: dict[str, str], key: DPoPKey) -> str:
    response = _token(client, demo_clients["demo-bank"], key)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _person_body(registry: Path) -> dict[str, Any]:
    person = living_person(registry)
    return {"national_code": person["national_code"], "birth_date": person["birth_date"]}


def _verify(
    client: TestClient, token: str, body: dict[str, Any], *, scheme: str = "DPoP", **headers: str
) -> httpx.Response:
    return client.post(VERIFY, json=body, headers={"Authorization": f"{scheme} {token}", **headers})


def _refused_token(response: httpx.Response, error: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP "), challenge
    assert f'error="{error}"' in challenge
    assert "ES256" in challenge  # §7.1: the algs we accept


def _refused_proof(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"
    assert "access_token" not in response.json()


# --- the happy path --------------------------------------------------------------------------


def test_client_credentials_with_dpop_then_verification(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    discovery = app_client.get("/.well-known/openid-configuration").json()
    assert discovery["dpop_signing_alg_values_supported"] == ["ES256", "PS256", "EdDSA"]
    key = DPoPKey()
    issued = _token(app_client, demo_clients["demo-bank"], key)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "DPoP"  # RFC 9449 §5
    token = body["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": key.jkt}  # §6.1, RFC 7638 thumbprint

    proof = key.proof("POST", _url(app_client, VERIFY), access_token=token)
    answer = _verify(app_client, token, _person_body(synthetic_registry_path), DPoP=proof)
    assert answer.status_code == 200, answer.text
    assert answer.json()["match"] is True

    introspected = app_client.post(
        "/introspect", data={"token": token}, auth=("demo-bank", demo_clients["demo-bank"])
    ).json()
    assert introspected["active"] is True
    assert introspected["token_type"] == "DPoP"
    assert introspected["cnf"] == {"jkt": key.jkt}


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        (lambda: RSAKey.generate_key(2048), "PS256"),
        (lambda: OKPKey.generate_key("Ed25519"), "EdDSA"),
    ],
    ids=["PS256", "EdDSA"],
)
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_other_advertised_algorithms_bind_too(
    app_client: TestClient, demo_clients: dict[str, str], make: Any, alg: str
) -> None:
    key = DPoPKey(make(), alg)
    token = _bound_token(app_client, demo_clients, key)
    assert claims_of(token)["cnf"] == {"jkt": key.jkt}


def test_without_proof_tokens_stay_bearer_and_verify_with_python_jose(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    issued = _token(app_client, demo_clients["demo-bank"], None)
    assert issued.json()["token_type"] == "Bearer"
    token = issued.json()["access_token"]
    assert "cnf" not in claims_of(token)
    jwks = app_client.get("/jwks.json").json()
    kid = jose_jwt.get_unverified_header(token)["kid"]
    (published,) = [key for key in jwks["keys"] if key["kid"] == kid]
    claims = jose_jwt.decode(
        token,
        published,
        algorithms=["ES256"],
        audience=_url(app_client, "/v1"),
        issuer=str(app_client.base_url).rstrip("/"),
    )
    assert claims["client_id"] == "demo-bank"
    introspected = app_client.post(
        "/introspect", data={"token": token}, auth=("demo-bank", demo_clients["demo-bank"])
    ).json()
    assert introspected["token_type"] == "Bearer" and "cnf" not in introspected


# --- attacks at the resource (RFC 9449 §7) ----------------------------------------------------


def test_bound_token_presented_as_bearer(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    key = DPoPKey()
    token = _bound_token(app_client, demo_clients, key)
    proof = key.proof("POST", _url(app_client, VERIFY), access_token=token)
    body = _person_body(synthetic_registry_path)
    _refused_token(_verify(app_client, token, body, scheme="Bearer"), "invalid_token")
    # §7.2: even with its proof beside it, Bearer is not how a bound token is used.
    _refused_token(_verify(app_client, token, body, scheme="Bearer", DPoP=proof), "invalid_token")


def test_token_presented_without_proof(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    token = _bound_token(app_client, demo_clients, DPoPKey())
    answer = _verify(app_client, token, _person_body(synthetic_registry_path))
    _refused_token(answer, "invalid_dpop_proof")


def test_proof_for_another_url(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    key = DPoPKey()
    token = _bound_token(app_client, demo_clients, key)
    body = _person_body(synthetic_registry_path)
    for url in (
        _url(app_client, "/v1/mobile/verify"),
        "https://evil.example" + VERIFY,
        _url(app_client, VERIFY).replace("127.0.0.1", "localhost"),
    ):
        proof = key.proof("POST", url, access_token=token)
        _refused_token(_verify(app_client, token, body, DPoP=proof), "invalid_dpop_proof")
    # §4.3 step 9: the query and fragment are not part of htu; scheme and host case are not either.
    tolerated = _url(app_client, VERIFY).replace("http://", "HTTP://") + "?a=1#x"
    proof = key.proof("POST", tolerated, access_token=token)
    assert _verify(app_client, token, body, DPoP=proof).status_code == 200


def test_proof_for_another_method(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    key = DPoPKey()
    token = _bound_token(app_client, demo_clients, key)
    for method in ("GET", "post"):
        proof = key.proof(method, _url(app_client, VERIFY), access_token=token)
        answer = _verify(app_client, token, _person_body(synthetic_registry_path), DPoP=proof)
        _refused_token(answer, "invalid_dpop_proof")


def test_proof_by_another_key_than_cnf_jkt(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    token = _bound_token(app_client, demo_clients, DPoPKey())
    thief = DPoPKey()
    proof = thief.proof("POST", _url(app_client, VERIFY), access_token=token)
    answer = _verify(app_client, token, _person_body(synthetic_registry_path), DPoP=proof)
    _refused_token(answer, "invalid_token")


def test_replayed_jti_at_the_verification_api(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    key = DPoPKey()
    token = _bound_token(app_client, demo_clients, key)
    proof = key.proof("POST", _url(app_client, VERIFY), access_token=token)
    body = _person_body(synthetic_registry_path)
    assert _verify(app_client, token, body, DPoP=proof).status_code == 200
    _refused_token(_verify(app_client, token, body, DPoP=proof), "invalid_dpop_proof")


def test_stale_iat_at_the_verification_api(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    key = DPoPKey()
    token = _bound_token(app_client, demo_clients, key)
    body = _person_body(synthetic_registry_path)
    for moment in (int(time.time()) - 120, int(time.time()) + 120):
        proof = key.proof(
            "POST", _url(app_client, VERIFY), access_token=token, claims={"iat": moment}
        )
        _refused_token(_verify(app_client, token, body, DPoP=proof), "invalid_dpop_proof")


def test_missing_or_forged_ath(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    key = DPoPKey()
    token = _bound_token(app_client, demo_clients, key)
    other = _bound_token(app_client, demo_clients, key)
    body = _person_body(synthetic_registry_path)
    url = _url(app_client, VERIFY)
    for claims in ({"ath": None}, {"ath": ath(other)}, {"ath": b64url(b"x" * 32)}):
        proof = key.proof("POST", url, access_token=token, claims=claims)
        _refused_token(_verify(app_client, token, body, DPoP=proof), "invalid_dpop_proof")


def test_unbound_token_presented_as_dpop(
    app_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    token = _token(app_client, demo_clients["demo-bank"], None).json()["access_token"]
    key = DPoPKey()
    proof = key.proof("POST", _url(app_client, VERIFY), access_token=token)
    answer = _verify(app_client, token, _person_body(synthetic_registry_path), DPoP=proof)
    _refused_token(answer, "invalid_token")


# --- attacks at /token (RFC 9449 §4.3, §5) ----------------------------------------------------


def test_replayed_jti_at_the_token_endpoint(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    key = DPoPKey()
    proof = key.proof("POST", _url(app_client, "/token"))
    assert _token(app_client, demo_clients["demo-bank"], key, DPoP=proof).status_code == 200
    _refused_proof(_token(app_client, demo_clients["demo-bank"], key, DPoP=proof))


def test_replayed_jti_stays_spent_when_the_request_failed(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    key = DPoPKey()
    proof = key.proof("POST", _url(app_client, "/token"))
    wrong = _token(app_client, "not-the-secret", key, DPoP=proof)
    assert wrong.status_code == 401
    _refused_proof(_token(app_client, demo_clients["demo-bank"], key, DPoP=proof))


def test_two_concurrent_submissions_of_one_proof_one_winner(
    live_server: Any, demo_clients: dict[str, str]
) -> None:
    key = DPoPKey()
    base = live_server.url
    proof = key.proof("POST", base.rstrip("/") + "/token")
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def submit() -> None:
        with httpx.Client(base_url=base) as client:
            barrier.wait()
            response = _token(client, demo_clients["demo-bank"], key, DPoP=proof)
            statuses.append(response.status_code)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 400, 400, 400]


def test_proof_for_another_url_or_method_at_the_token_endpoint(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    key = DPoPKey()
    secret = demo_clients["demo-bank"]
    for method, url in (
        ("POST", _url(app_client, "/par")),
        ("POST", "https://other.example/token"),
        ("GET", _url(app_client, "/token")),
    ):
        _refused_proof(_token(app_client, secret, key, DPoP=key.proof(method, url)))


def test_stale_iat_at_the_token_endpoint(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    key = DPoPKey()
    proof = key.proof("POST", _url(app_client, "/token"), claims={"iat": int(time.time()) - 61})
    _refused_proof(_token(app_client, demo_clients["demo-bank"], key, DPoP=proof))
    proof = key.proof("POST", _url(app_client, "/token"), claims={"iat": str(int(time.time()))})
    _refused_proof(_token(app_client, demo_clients["demo-bank"], key, DPoP=proof))


def test_proof_carrying_a_private_key(app_client: TestClient, demo_clients: dict[str, str]) -> None:
    key = DPoPKey()
    private = dict(key.key.as_dict(private=True))
    assert "d" in private
    proof = key.proof("POST", _url(app_client, "/token"), header={"jwk": private})
    _refused_proof(_token(app_client, demo_clients["demo-bank"], key, DPoP=proof))


def test_alg_none_and_hs256_proofs(app_client: TestClient, demo_clients: dict[str, str]) -> None:
    key = DPoPKey()
    claims = {
        "jti": "x1",
        "htm": "POST",
        "htu": _url(app_client, "/token"),
        "iat": int(time.time()),
    }
    none = unsigned_proof({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()}, claims)
    _refused_proof(_token(app_client, demo_clients["demo-bank"], key, DPoP=none))
    # HS256 "keyed" with the public JWK the proof carries: the classic confusion.
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()}
    signing_input = unsigned_proof(header, claims).rsplit(".", 1)[0]
    secret = str(key.public_jwk()["x"]).encode()
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    _refused_proof(
        _token(app_client, demo_clients["demo-bank"], key, DPoP=f"{signing_input}.{b64url(mac)}")
    )


def test_proof_signed_by_another_key_than_its_jwk_header(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    key = DPoPKey()
    proof = key.proof("POST", _url(app_client, "/token"), signer=ECKey.generate_key("P-256"))
    _refused_proof(_token(app_client, demo_clients["demo-bank"], key, DPoP=proof))


def test_malformed_proofs(app_client: TestClient, demo_clients: dict[str, str]) -> None:
    key = DPoPKey()
    secret = demo_clients["demo-bank"]
    url = _url(app_client, "/token")
    for proof in (
        "not-a-jwt",
        key.proof("POST", url, header={"typ": "JWT"}),
        key.proof("POST", url, header={"jwk": None}),
        key.proof("POST", url, claims={"jti": None}),
        key.proof("POST", url, claims={"htu": None}),
        DPoPKey(RSAKey.generate_key(1024), "PS256").proof("POST", url),
    ):
        _refused_proof(_token(app_client, secret, key, DPoP=proof))


def test_two_dpop_headers(app_client: TestClient, demo_clients: dict[str, str]) -> None:
    key = DPoPKey()
    url = _url(app_client, "/token")
    response = app_client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-bank", demo_clients["demo-bank"]),
        headers=[("DPoP", key.proof("POST", url)), ("DPoP", key.proof("POST", url))],
    )
    _refused_proof(response)


def test_client_registered_for_dpop_bound_tokens_needs_a_proof(
    app_client: TestClient, admin_token: str
) -> None:
    created = app_client.post(
        "/v1/admin/clients",
        json={
            "name": "High-value back office",
            "service_code": "demo-bank-kyc",
            "grant_types": ["client_credentials"],
            "dpop_bound_access_tokens": True,
        },
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["dpop_bound_access_tokens"] is True
    client_id, secret = created.json()["client_id"], created.json()["client_secret"]
    plain = app_client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    _refused_proof(plain)
    key = DPoPKey()
    bound = app_client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        headers={"DPoP": key.proof("POST", _url(app_client, "/token"))},
    )
    assert bound.status_code == 200, bound.text
    assert bound.json()["token_type"] == "DPoP"


# --- server nonces (RFC 9449 §8, §9) ------------------------------------------------------------


@pytest.fixture
def nonce_client(hoviyat_settings: Settings, init_report: dict[str, Any]) -> Iterator[TestClient]:
    """The same deployment, requiring a server nonce in every proof."""
    settings = hoviyat_settings.model_copy(update={"dpop_require_nonce": True})
    app = create_app(settings)
    try:
        with TestClient(app, base_url=settings.issuer) as client:
            yield client
    finally:
        app.state.hoviyat.close()


def test_proof_without_the_server_nonce(
    nonce_client: TestClient, demo_clients: dict[str, str], synthetic_registry_path: Path
) -> None:
    key = DPoPKey()
    secret = demo_clients["demo-bank"]
    token_url = _url(nonce_client, "/token")
    first = _token(nonce_client, secret, key)
    assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["dpop-nonce"]
    for wrong in ("made-up", nonce[:-2]):
        refused = _token(
            nonce_client, secret, key, DPoP=key.proof("POST", token_url, claims={"nonce": wrong})
        )
        assert refused.json()["error"] == "use_dpop_nonce"
    issued = _token(
        nonce_client, secret, key, DPoP=key.proof("POST", token_url, claims={"nonce": nonce})
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    body = _person_body(synthetic_registry_path)
    verify_url = _url(nonce_client, VERIFY)
    without = _verify(
        nonce_client, token, body, DPoP=key.proof("POST", verify_url, access_token=token)
    )
    _refused_token(without, "use_dpop_nonce")
    assert without.headers["dpop-nonce"] == nonce
    proof = key.proof("POST", verify_url, access_token=token, claims={"nonce": nonce})
    assert _verify(nonce_client, token, body, DPoP=proof).status_code == 200


def test_server_nonces_change_with_time_and_the_previous_one_still_passes() -> None:
    nonces = ServerNonces(b"k" * 32, 300)
    now = 1_800_000_000.0
    current = nonces.current(now)
    assert nonces.accepts(current, now) and nonces.accepts(current, now + 300)
    assert not nonces.accepts(current, now + 600)
    assert nonces.current(now + 300) != current
    assert not ServerNonces(b"other" * 8, 300).accepts(current, now)
