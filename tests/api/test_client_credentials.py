"""The token endpoint with client credentials (RFC 6749 §4.4) and RFC 9068 access tokens."""

from __future__ import annotations

import base64
import json

from fastapi.testclient import TestClient

# Run with the direct routes on and off (tests/api/conftest.py).
BOTH_ROUTINGS = True


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_basic_and_post_authentication_issue_at_jwt(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    basic = app_client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-bank", demo_clients["demo-bank"]),
    )
    assert basic.status_code == 200, basic.text
    assert basic.headers["cache-control"] == "no-store"
    assert basic.headers["pragma"] == "no-cache"  # RFC 6749 §5.1
    assert basic.headers["content-type"] == "application/json"
    assert int(basic.headers["content-length"]) == len(basic.content)
    body = basic.json()
    assert body["token_type"] == "Bearer"
    header = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    claims = _claims(body["access_token"])
    assert claims["client_id"] == "demo-bank"
    assert claims["aud"].endswith("/v1")
    assert "persons.verify" in claims["scope"].split()

    # client_secret_post is refused for a client registered for basic.
    post = app_client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-bank",
            "client_secret": demo_clients["demo-bank"],
        },
    )
    assert post.status_code == 401
    assert post.json()["error"] == "invalid_client"


def test_wrong_secret_unknown_client_and_bad_grant(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    wrong = app_client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=("demo-bank", "nope")
    )
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")
    unknown = app_client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=("ghost", "x")
    )
    assert unknown.status_code == 401
    grant = app_client.post(
        "/token", data={"grant_type": "password"}, auth=("demo-bank", demo_clients["demo-bank"])
    )
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    json_body = app_client.post("/token", json={"grant_type": "client_credentials"})
    assert json_body.status_code == 400 and json_body.json()["error"] == "invalid_request"


def test_scope_outside_policy_is_refused(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    response = app_client.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "persons.verify legal_entities.verify"},
        auth=("demo-registry", demo_clients["demo-registry"]),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert "legal_entities.verify" in response.json()["error_description"]


def test_discovery_and_jwks_describe_the_token_endpoint(app_client: TestClient) -> None:
    metadata = app_client.get("/.well-known/openid-configuration").json()
    assert metadata["issuer"] == str(app_client.base_url).rstrip("/")
    assert "client_credentials" in metadata["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    keys = app_client.get("/jwks.json").json()["keys"]
    assert {key["alg"] for key in keys} >= {"ES256"}
    assert all("d" not in key for key in keys), "private key material must never be published"


def test_token_verifies_with_python_jose(app_client: TestClient, bank_token: str) -> None:
    from jose import jwt as jose_jwt

    keys = app_client.get("/jwks.json").json()
    issuer = str(app_client.base_url).rstrip("/")
    claims = jose_jwt.decode(
        bank_token, keys, algorithms=["ES256"], audience=issuer + "/v1", issuer=issuer
    )
    assert claims["client_id"] == "demo-bank"


def test_malformed_forms_are_oauth_invalid_requests(
    app_client: TestClient, demo_clients: dict[str, str]
) -> None:
    auth = ("demo-bank", demo_clients["demo-bank"])
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [
        (b"grant_type=client_credentials&grant_type=client_credentials", form, "repeated"),
        (b"grant_type=client_%ff", form, "not UTF-8"),
        (b"grant_type=client_credentials\xff", form, "not UTF-8"),
        (b"&".join(b"p%d=1" % i for i in range(65)), form, "at most 64"),
        (b'{"grant_type": "client_credentials"}', {"Content-Type": "application/json"},
         "x-www-form-urlencoded"),
    ]  # fmt: skip
    for body, headers, says in cases:
        answer = app_client.post("/token", content=body, headers=headers, auth=auth)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"] == "invalid_request"
        assert says in answer.json()["error_description"], answer.text
    # The same parser answers /revoke and /introspect.
    revoke = app_client.post("/revoke", content=b"token=a&token=b", headers=form, auth=auth)
    assert revoke.status_code == 400 and "repeated" in revoke.json()["error_description"]
