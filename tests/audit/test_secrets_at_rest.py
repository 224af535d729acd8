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


@pytest.mark.parametrize("cut", [0, 1, 11, 12, 27, 40])
def test_attack_truncated_or_empty_row_is_refused_as_a_key_that_does_not_open(cut: int) -> None:
    # A row cut short (by a bad copy, or by someone with write access to the
    # table) is the same failure as a wrong key, not a crash inside AES-GCM.
    blob = seal_private_key(KEK, Purpose.JWT, "kid-1", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(KEK, Purpose.JWT, "kid-1", blob[:cut])


def test_attack_garbled_row_is_refused_as_a_key_that_does_not_open() -> None:
    blob = seal_private_key(KEK, Purpose.JWT, "kid-1", ec.generate_private_key(ec.SECP256R1()))
    garbled = blob[:5] + bytes([blob[5] ^ 1]) + blob[6:]
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(KEK, Purpose.JWT, "kid-1", garbled)
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(KEK, Purpose.JWT, "kid-1", os.urandom(len(blob)))


def test_a_sealed_row_that_holds_no_key_is_refused_as_one_that_does_not_open() -> None:
    nonce = os.urandom(12)
    row = nonce + AESGCM(KEK).encrypt(nonce, b"not a key", b"hoviyat token signing key kid-1")
    with pytest.raises(KeyDoesNotOpen):
        open_private_key(KEK, Purpose.JWT, "kid-1", row)
