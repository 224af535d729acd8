"""Fuzzing the parsers of outside bytes on the ACME path: whatever arrives, the
answer is an ACME problem (never another exception, never a 500).

Random bytes, random JSON, random protected headers and JWKs, and valid JWSs
with mutations, through :mod:`idp.acme.rfc8555_jws`, the EAB parser, and the
whole app over HTTP.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from acme_client import AccountKey, AcmeClient, b64url, sign_jws
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.acme import eab, rfc8555_jws
from idp.acme.paths import AcmePaths
from idp.acme.problems import AcmeProblem

URL = "https://ca.example/acme/infrastructure/new-account"
PATHS = AcmePaths("https://ca.example", "infrastructure")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
header_values = st.one_of(
    json_values,
    st.sampled_from(["ES256", "ES384", "RS256", "EdDSA", "none", "HS256", URL, ""]),
)
headers = st.dictionaries(
    st.sampled_from(["alg", "jwk", "kid", "nonce", "url", "crit", "b64", "typ", "x"]),
    header_values,
    max_size=7,
)
jwks = st.dictionaries(
    st.sampled_from(["kty", "crv", "x", "y", "n", "e", "d", "k"]),
    st.one_of(
        st.sampled_from(["EC", "RSA", "OKP", "oct", "P-256", "P-384", "Ed25519", "AQAB", "AA", ""]),
        st.binary(max_size=300).map(b64url),
        json_values,
    ),
    max_size=6,
)


@cache
def _valid_jws(alg: str) -> tuple[str, AccountKey]:
    key = AccountKey.generate(alg)
    header = {"alg": alg, "jwk": key.public_jwk, "nonce": "n" * 54, "url": URL}
    return json.dumps(sign_jws(key, header, b'{"termsOfServiceAgreed":true}')), key


def _only_problems(body: bytes | str) -> None:
    """Parse, take the key and verify as the server does; only AcmeProblem may escape."""
    try:
        parsed = rfc8555_jws.parse(body)
        if parsed.jwk is not None:
            rfc8555_jws.verify(parsed, rfc8555_jws.public_key(parsed.jwk, parsed.alg))
        if parsed.payload_b64:
            rfc8555_jws.json_object(parsed.payload, "payload")
    except AcmeProblem:
        pass


@settings(max_examples=400)
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes_raise_only_acme_problems(body: bytes) -> None:
    _only_problems(body)


@settings(max_examples=300)
@given(json_values)
def test_fuzz_random_json_raises_only_acme_problems(value: Any) -> None:
    _only_problems(json.dumps(value))


@settings(max_examples=400)
@given(headers, st.binary(max_size=100), st.binary(max_size=520))
def test_fuzz_random_protected_headers_raise_only_acme_problems(
    header: dict[str, Any], payload: bytes, signature: bytes
) -> None:
    body = {
        "protected": b64url(json.dumps(header).encode()),
        "payload": b64url(payload),
        "signature": b64url(signature),
    }
    _only_problems(json.dumps(body))


@settings(max_examples=400)
@given(jwks, st.sampled_from(rfc8555_jws.ALGORITHMS))
def test_fuzz_random_jwks_raise_only_acme_problems(value: dict[str, Any], alg: str) -> None:
    try:
        rfc8555_jws.public_key(value, alg)
    except AcmeProblem:
        pass


@settings(max_examples=600)
@given(
    st.sampled_from(rfc8555_jws.ALGORITHMS),
    st.lists(st.tuples(st.integers(0, 5000), st.characters(codec="ascii")), min_size=1, max_size=4),
)
def test_fuzz_mutated_valid_jws_never_verifies_and_raises_only_acme_problems(
    alg: str, edits: list[tuple[int, str]]
) -> None:
    body, _key = _valid_jws(alg)
    mutated = list(body)
    for position, character in edits:
        mutated[position % len(mutated)] = character
    text = "".join(mutated)
    try:
        parsed = rfc8555_jws.parse(text)
        assert parsed.jwk is not None
        rfc8555_jws.verify(parsed, rfc8555_jws.public_key(parsed.jwk, parsed.alg))
    except AcmeProblem:
        return
    # Still verifies: only edits that left the signed parts' meaning as it was.
    original = json.loads(body)
    changed = json.loads(text)
    assert {k: changed[k] for k in ("protected", "payload", "signature")} == original


def test_the_unmutated_jws_verifies() -> None:
    for alg in rfc8555_jws.ALGORITHMS:
        body, key = _valid_jws(alg)
        parsed = rfc8555_jws.parse(body)
        public = rfc8555_jws.public_key(parsed.jwk or {}, parsed.alg)
        rfc8555_jws.verify(parsed, public)
        assert rfc8555_jws.thumbprint(public) == key.thumbprint


_encoded_headers = headers.map(lambda h: b64url(json.dumps(h).encode()))
_encoded_jwks = jwks.map(lambda k: b64url(json.dumps(k).encode()))
bindings = st.fixed_dictionaries(
    {},
    optional={
        "protected": st.one_of(_encoded_headers, st.text(max_size=20)),
        "payload": st.one_of(_encoded_jwks, st.text(max_size=20)),
        "signature": st.binary(max_size=40).map(b64url),
    },
)


@settings(max_examples=300)
@given(st.one_of(json_values, bindings))
def test_fuzz_external_account_bindings_raise_only_acme_problems(value: Any) -> None:
    try:
        eab.parse_binding(value, PATHS, "t" * 43)
    except AcmeProblem:
        pass


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
    resource=st.sampled_from(["new_account", "key_change", "account"]),
)
def test_fuzz_the_app_answers_any_body_with_an_acme_problem(
    app_client: TestClient, acme_paths: AcmePaths, body: bytes, resource: str
) -> None:
    url = acme_paths.account("x") if resource == "account" else getattr(acme_paths, resource)
    response = app_client.post(url, content=body, headers={"Content-Type": "application/jose+json"})
    assert 400 <= response.status_code < 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"].startswith("urn:ietf:params:acme:error:")


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(header=headers, payload=json_values)
def test_fuzz_signed_requests_with_random_headers_get_acme_problems(
    acme_account: AcmeClient, header: dict[str, Any], payload: Any
) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, json.dumps(payload).encode(), protected=header)
    response = acme_account.send(url, body)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert response.json()["type"].startswith("urn:ietf:params:acme:error:")
