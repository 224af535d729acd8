"""Discovery advertises exactly what is served, nothing more (issue 14).

The member list is written out here on purpose: a member appears in the
document only after someone adds it below, next to the test that proves it.
Each endpoint it names answers, and each list is the one the code enforces.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.app import create_app
from idp.oidc.registration import AUTH_METHODS
from idp.settings import Settings
from idp.tokens import SIGNING_ALGORITHMS
from policies import assurance

MEMBERS = {
    # OpenID Connect Discovery 1.0 §3 and RFC 8414 §2
    "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
    "scopes_supported", "response_types_supported", "response_modes_supported",
    "grant_types_supported", "acr_values_supported", "subject_types_supported",
    "id_token_signing_alg_values_supported", "userinfo_signing_alg_values_supported",
    "request_object_signing_alg_values_supported", "token_endpoint_auth_methods_supported",
    "token_endpoint_auth_signing_alg_values_supported", "claim_types_supported",
    "claims_supported", "service_documentation", "ui_locales_supported",
    "claims_parameter_supported", "request_parameter_supported",
    "request_uri_parameter_supported", "prompt_values_supported",
    "code_challenge_methods_supported",
    # RFC 7662 and RFC 7009, RFC 9701
    "introspection_endpoint", "introspection_endpoint_auth_methods_supported",
    "introspection_endpoint_auth_signing_alg_values_supported",
    "introspection_signing_alg_values_supported",
    "revocation_endpoint", "revocation_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_signing_alg_values_supported",
    # RP-Initiated and Back-Channel Logout 1.0
    "end_session_endpoint", "backchannel_logout_supported", "backchannel_logout_session_supported",
    # RFC 9126 (PAR), RFC 9207 (iss), JARM, RFC 9449 (DPoP), RFC 7591
    "pushed_authorization_request_endpoint", "require_pushed_authorization_requests",
    "authorization_response_iss_parameter_supported", "authorization_signing_alg_values_supported",
    "dpop_signing_alg_values_supported", "registration_endpoint",
    # OpenID Connect for Identity Assurance 1.0
    "verified_claims_supported", "trust_frameworks_supported", "evidence_supported",
    "claims_in_verified_claims_supported",
}  # fmt: skip
# RFC 8705 §3.3, only where a trusted proxy can forward certificates.
MUTUAL_TLS = {"tls_client_certificate_bound_access_tokens"}


def _document(settings: Settings) -> dict[str, Any]:
    with TestClient(create_app(settings), base_url=settings.issuer) as client:
        document: dict[str, Any] = client.get("/.well-known/openid-configuration").json()
    return document


def test_discovery_names_exactly_the_members_served(
    hoviyat_settings: Settings, init_report: dict[str, Any]
) -> None:
    document = _document(hoviyat_settings)
    assert set(document) == MEMBERS
    behind = hoviyat_settings.model_copy(update={"trusted_proxies": ["10.0.0.5"]})
    assert set(_document(behind)) == MEMBERS | MUTUAL_TLS
    closed = hoviyat_settings.model_copy(update={"dynamic_registration": False})
    assert set(_document(closed)) == MEMBERS - {"registration_endpoint"}


def test_each_advertised_list_is_what_the_code_accepts(
    hoviyat_settings: Settings, init_report: dict[str, Any]
) -> None:
    behind = hoviyat_settings.model_copy(update={"trusted_proxies": ["10.0.0.5"]})
    document = _document(behind)
    assert set(document["token_endpoint_auth_methods_supported"]) == set(AUTH_METHODS)
    assert set(document["introspection_endpoint_auth_methods_supported"]) == set(AUTH_METHODS) - {
        "none"
    }
    assert document["acr_values_supported"] == list(assurance.LEVELS)
    assert set(document["id_token_signing_alg_values_supported"]) == set(SIGNING_ALGORITHMS)
    assert "none" not in document["id_token_signing_alg_values_supported"]
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    alone = _document(hoviyat_settings)["token_endpoint_auth_methods_supported"]
    assert not {"tls_client_auth", "self_signed_tls_client_auth"} & set(alone)


@pytest.mark.parametrize(
    ("member", "method", "status"),
    [
        ("authorization_endpoint", "GET", 400),
        ("userinfo_endpoint", "GET", 401),
        ("introspection_endpoint", "POST", 401),
        ("revocation_endpoint", "POST", 401),
        ("pushed_authorization_request_endpoint", "POST", 401),
        ("registration_endpoint", "POST", 401),
        ("end_session_endpoint", "GET", 200),
        ("jwks_uri", "GET", 200),
        ("service_documentation", "GET", 200),
    ],
)
def test_every_advertised_endpoint_answers(
    hoviyat_app: FastAPI, member: str, method: str, status: int
) -> None:
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer) as client:
        url = client.get("/.well-known/openid-configuration").json()[member]
        assert url.startswith(issuer)
        path = url[len(issuer) :] or "/"
        if member == "registration_endpoint":  # RFC 7591 §3: JSON, no initial token
            answer = client.post(path, json={"redirect_uris": ["https://rp.example/cb"]})
        elif method == "POST":  # a form without client authentication
            answer = client.post(path, data={"token": "x", "client_id": "nobody"})
        else:
            answer = client.request(method, path)
    assert answer.status_code == status, (member, answer.status_code, answer.text[:200])
