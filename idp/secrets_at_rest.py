"""Private keys at rest: AES-256-GCM under the server's key-encryption key.

One format for every key Hoviyat keeps in its database (token-signing keys,
the audit log's checkpoint key): ``nonce (12 bytes) || ciphertext+tag``, the
key as unencrypted PKCS#8 DER inside, and as associated data
``b"hoviyat " + purpose + b" " + key_id``. Binding the purpose and the id
means a row copied onto another key's id, or from one table into another,
does not decrypt.

Rows written before this module used other associated data (a token key:
its bare ``kid``; PEM inside). :func:`open_private_key` still accepts the
older form of each purpose, so no stored key needs migrating; new rows are
written only in the one format above.
"""

from __future__ import annotations

import os
from enum import Enum

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_NONCE_BYTES = 12
_TAG_BYTES = 16


class Purpose(Enum):
    """What a sealed key signs; part of its associated data."""

    JWT = "token signing key"  # access and ID tokens (idp.tokens)
    AUDIT_CHECKPOINT = "audit signing key"  # the log's checkpoints (idp.audit)
    ACME_EAB = "acme eab key"  # an external account binding MAC key (idp.acme.eab)
    CONSOLE_SHOWN_ONCE = "console shown-once secret"  # a new client secret (idp.console)


class KeyDoesNotOpen(ValueError):
    """The blob does not decrypt under this key-encryption key for this purpose and id."""


def _associated_data(purpose: Purpose, key_id: str) -> bytes:
    return b"hoviyat " + purpose.value.encode() + b" " + key_id.encode()


def _legacy_associated_data(purpose: Purpose, key_id: str) -> bytes | None:
    # Token keys were sealed with their bare kid before the formats were joined.
    # (The audit key's old prefix is the current format itself.)
    return key_id.encode() if purpose is Purpose.JWT else None


def seal_private_key(kek: bytes, purpose: Purpose, key_id: str, key: PrivateKey) -> bytes:
    """``key`` as PKCS#8 DER, encrypted and bound to ``purpose`` and ``key_id``."""
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, der, _associated_data(purpose, key_id))


def open_private_key(kek: bytes, purpose: Purpose, key_id: str, blob: bytes) -> PrivateKey:
    """The key sealed in ``blob``, in the current format or the purpose's older one."""
    # A truncated or emptied row: AESGCM would refuse a short nonce with a bare
    # ValueError, which callers cannot tell from their own mistakes.
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise KeyDoesNotOpen(f"{purpose.value} {key_id} is too short to be a sealed key")
    aead = AESGCM(kek)
    nonce, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
    plaintext = None
    for associated in (_associated_data(purpose, key_id), _legacy_associated_data(purpose, key_id)):
        if associated is None:
            continue
        try:
            plaintext = aead.decrypt(nonce, ciphertext, associated)
            break
        except InvalidTag:
            continue
    if plaintext is None:
        raise KeyDoesNotOpen(f"{purpose.value} {key_id} does not decrypt with this key")
    # Our own keys, authenticated by AES-GCM: the slow RSA checks (milliseconds) add nothing.
    load = (
        serialization.load_pem_private_key
        if plaintext.startswith(b"-----BEGIN")
        else serialization.load_der_private_key
    )
    try:
        key = load(plaintext, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyDoesNotOpen(f"{purpose.value} {key_id} holds no private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeyDoesNotOpen(f"{purpose.value} {key_id} is neither an EC nor an RSA key")
    return key


def seal_secret(kek: bytes, purpose: Purpose, key_id: str, secret: bytes) -> bytes:
    """A symmetric secret (an EAB MAC key) sealed like a private key: same format and binding."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, secret, _associated_data(purpose, key_id))


def open_secret(kek: bytes, purpose: Purpose, key_id: str, blob: bytes) -> bytes:
    """The secret :func:`seal_secret` sealed in ``blob`` for ``purpose`` and ``key_id``."""
    if len(blob) < _NONCE_BYTES + _TAG_BYTES:
        raise KeyDoesNotOpen(f"{purpose.value} {key_id} is too short to be a sealed secret")
    try:
        return AESGCM(kek).decrypt(
            blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated_data(purpose, key_id)
        )
    except InvalidTag:
        raise KeyDoesNotOpen(f"{purpose.value} {key_id} does not decrypt with this key") from None
