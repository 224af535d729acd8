"""The log's checkpoint-signing key: ECDSA P-256, AES-256-GCM encrypted at rest.

The private key is PKCS#8 DER encrypted under ``ServerSecrets.key_encryption_key``
with the key id as associated data, so a row copied onto another key's id does
not decrypt. It is created once, under the tree-head lock, so two processes
starting together agree on one key. The public key (and, once the CA issues
one, its certificate chain) is published in every export and at
``/v1/audit/log-key``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session, col, select

from idp.audit import signed_note
from idp.audit.sequencer import lock_head
from idp.storage.audit_log import AuditSigningKey

_AAD_PREFIX = b"hoviyat audit signing key "


@dataclass(frozen=True)
class LogKey:
    key_id: str
    public_key: ec.EllipticCurvePublicKey
    certificate_chain_pem: str | None

    @property
    def public_key_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


def _public(row: AuditSigningKey) -> LogKey:
    public_key = serialization.load_der_public_key(row.public_key_der)
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise RuntimeError(f"audit signing key {row.key_id} is not an EC key")
    return LogKey(row.key_id, public_key, row.certificate_chain_pem)


def _active(session: Session) -> AuditSigningKey | None:
    return session.exec(select(AuditSigningKey).where(AuditSigningKey.state == "active")).first()


def published_keys(session: Session) -> list[LogKey]:
    """Every key that has signed checkpoints, oldest first: what verifiers need."""
    rows = session.exec(select(AuditSigningKey).order_by(col(AuditSigningKey.created_at)))
    return [_public(row) for row in rows]


def signing_key(
    session: Session, key_encryption_key: bytes
) -> tuple[LogKey, ec.EllipticCurvePrivateKey]:
    """The active key, created on first use; call inside a transaction."""
    row = _active(session)
    if row is None:
        lock_head(session)  # serialises creation across processes
        row = _active(session) or _create(session, key_encryption_key)
    blob = row.private_key_encrypted
    try:
        der = AESGCM(key_encryption_key).decrypt(
            blob[:12], blob[12:], _AAD_PREFIX + row.key_id.encode()
        )
    except InvalidTag:
        raise RuntimeError(
            f"audit signing key {row.key_id} does not decrypt with this key_encryption_key"
        ) from None
    private_key = serialization.load_der_private_key(der, password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"audit signing key {row.key_id} is not an EC key")
    return _public(row), private_key


def _create(session: Session, key_encryption_key: bytes) -> AuditSigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    kid = signed_note.key_id(private_key.public_key()).hex()
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    nonce = os.urandom(12)
    encrypted = nonce + AESGCM(key_encryption_key).encrypt(nonce, der, _AAD_PREFIX + kid.encode())
    row = AuditSigningKey(
        key_id=kid,
        state="active",
        public_key_der=private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        private_key_encrypted=encrypted,
    )
    session.add(row)
    session.flush()
    return row


def attach_certificate_chain(session: Session, kid: str, chain_pem: str) -> None:
    """Record the CA-issued certificate chain (leaf first) of a log key."""
    row = session.get(AuditSigningKey, kid)
    if row is None:
        raise LookupError(f"no audit signing key {kid}")
    row.certificate_chain_pem = chain_pem
    session.add(row)
