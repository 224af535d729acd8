"""Whatever a caller sends to the OIDC endpoints, the answer is 2xx-4xx, never a 500."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oidc_support import RelyingParty, authorization_params, pkce_pair

NAMES = st.sampled_from([
    "client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method", "prompt", "max_age", "acr_values", "claims", "ui_locales",
    "login_hint", "request", "response_mode", "interaction", "token", "token_type_hint",
    "id_token_hint", "post_logout_redirect_uri", "confirm", "client_assertion",
    "client_assertion_type", "grant_type", "code", "refresh_token", "code_verifier",
])  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["openid", "code", "S256", "none", "{}", '{"id_token":{"acr":null}}',
                     "eyJhbGciOiJub25lIn0.e30.", "-1", "99999999999", "\x00", "a.b.c"]),
)  # fmt: skip
PARAMS = st.lists(st.tuples(NAMES, VALUES), max_size=8)
ENDPOINTS = [
    ("GET", "/authorize"),
    ("POST", "/authorize"),
    ("GET", "/authorize/complete"),
    ("GET", "/userinfo"),
    ("POST", "/introspect"),
    ("POST", "/revoke"),
    ("GET", "/logout"),
    ("POST", "/logout"),
    ("POST", "/token"),
]


@pytest.fixture
def fuzz_target(hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty) -> TestClient:
    return asgi_browser


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_random_parameters_never_cause_a_server_error(
    fuzz_target: TestClient, rp: RelyingParty, method: str, path: str
) -> None:
    _, challenge = pkce_pair()
    valid = list(authorization_params(rp, challenge).items())

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(PARAMS, st.booleans(), st.booleans())
    def check(extra: list[tuple[str, str]], start_valid: bool, with_auth: bool) -> None:
        params = (valid if start_valid else []) + extra
        bearer = "".join(ch for ch in (extra[0][1] if extra else "x") if " " < ch < "\x7f")
        headers = {"Authorization": "Bearer " + bearer}
        auth = (rp.client_id, rp.client_secret or "") if with_auth else None
        if method == "GET":
            response = fuzz_target.get(path, params=params, headers=headers)
        else:
            response = fuzz_target.post(path, data=params, auth=auth)  # type: ignore[arg-type]
        assert response.status_code < 500, (params, response.text)

    check()
