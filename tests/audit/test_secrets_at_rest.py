"""Private keys at rest (idp.secrets_at_rest): one format written, older rows still open."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from idp.secrets_at_rest import KeyDoesNotOpen, Purpose, open_private_key, seal_private_key

KEK = bytes(range(32))


def _same(a, b) -> bool:
    def der(key) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    return der(a) == der(b)


@pytest.mark.parametrize("purpose", list(Purpose))
def test_sealed_key_opens_for_its_purpose_and_id_only(purpose: Purpose) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    blob = seal_private_key(KEK, purpose, "kid-1", key)
    assert _same(open_private_key(KEK, purpose, "kid-1", blob), key)
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(KEK, purpose, "kid-2", blob)  # a row moved under another id
    other = next(p for p in Purpose if p is not purpose)
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(KEK, other, "kid-1", blob)  # a row moved into the other table
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(bytes(32), purpose, "kid-1", blob)


def test_token_key_rows_written_before_the_one_format_still_open() -> None:
    """Before: PEM sealed with the bare kid as associated data (idp.tokens.keyring)."""
    key = rsa.generate_private_key(65537, 2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    nonce = os.urandom(12)
    old_row = nonce + AESGCM(KEK).encrypt(nonce, pem, b"kid-old")
    assert _same(open_private_key(KEK, Purpose.JWT, "kid-old", old_row), key)
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(KEK, Purpose.AUDIT_CHECKPOINT, "kid-old", old_row)


def test_audit_key_rows_written_before_the_one_format_still_open() -> None:
    """Before: PKCS#8 DER sealed with ``hoviyat audit signing key <kid>`` (idp.audit)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    nonce = os.urandom(12)
    old_row = nonce + AESGCM(KEK).encrypt(nonce, der, b"hoviyat audit signing key abcd")
    assert _same(open_private_key(KEK, Purpose.AUDIT_CHECKPOINT, "abcd", old_row), key)
