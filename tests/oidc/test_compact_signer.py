"""The JWS signer of idp.tokens.rfc7515 against two independent verifiers."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt as jose_jwt
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, RSAKey

from idp.tokens.rfc7515 import CompactSigner

CLAIMS = {
    "iss": "https://hoviyat.example",
    "sub": "pairwise-123",
    "given_name": "زهرا",
    "amr": ["pwd", "otp"],
    "iat": 1_790_000_000,
    "nested": {"role": "مدیرعامل", "signing_authority": True},
}


def _segments(token: str) -> list[dict]:
    header, payload, _ = token.split(".")
    return [json.loads(base64.urlsafe_b64decode(part + "==")) for part in (header, payload)]


@pytest.mark.parametrize(
    ("alg", "private"),
    [
        ("ES256", ec.generate_private_key(ec.SECP256R1())),
        ("RS256", rsa.generate_private_key(65537, 2048)),
        ("PS256", rsa.generate_private_key(65537, 2048)),
    ],
)
def test_tokens_verify_with_joserfc_and_python_jose(alg: str, private) -> None:
    signer = CompactSigner("kid-1", alg, private)
    token = signer.sign(CLAIMS, typ="at+jwt")

    header, payload = _segments(token)
    assert header == {"alg": alg, "typ": "at+jwt", "kid": "kid-1"}
    assert payload == CLAIMS
    assert "=" not in token

    public = (ECKey if alg == "ES256" else RSAKey).import_key(private.public_key())
    assert jwt.decode(token, public, algorithms=[alg]).claims == CLAIMS
    if alg != "PS256":  # python-jose has no PS256 (the reason Hoviyat signs with joserfc)
        options = {"verify_aud": False, "verify_iat": False}
        verified = jose_jwt.decode(token, public.as_dict(), algorithms=[alg], options=options)
        assert verified == CLAIMS


def test_es256_signature_is_64_raw_octets_not_der() -> None:
    token = CompactSigner("k", "ES256", ec.generate_private_key(ec.SECP256R1())).sign(
        {"a": 1}, typ="JWT"
    )
    signature = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    assert len(signature) == 64  # RFC 7518 §3.4


def test_a_tampered_payload_does_not_verify() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    header, _, signature = (
        CompactSigner("k", "ES256", private).sign({"sub": "a"}, typ="JWT").split(".")
    )
    forged_payload = base64.urlsafe_b64encode(b'{"sub":"b"}').rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        jwt.decode(f"{header}.{forged_payload}.{signature}", ECKey.import_key(private.public_key()))


@pytest.mark.parametrize(
    ("alg", "private"),
    [
        ("ES256", rsa.generate_private_key(65537, 2048)),
        ("ES256", ec.generate_private_key(ec.SECP384R1())),
        ("PS256", ec.generate_private_key(ec.SECP256R1())),
        ("HS256", ec.generate_private_key(ec.SECP256R1())),
        ("none", ec.generate_private_key(ec.SECP256R1())),
    ],
)
def test_a_key_that_does_not_fit_the_algorithm_is_refused(alg: str, private) -> None:
    with pytest.raises(ValueError):
        CompactSigner("k", alg, private)
