"""The log's checkpoint-signing key: ECDSA P-256, AES-256-GCM encrypted at rest.

The private key is sealed under ``ServerSecrets.key_encryption_key``
(:mod:`idp.secrets_at_rest`), bound to its key id, so a row copied onto another
key's id does not decrypt. It is created once, under the tree-head lock, so two processes
starting together agree on one key. The public key (and, once the CA issues
one, its certificate chain) is published in every export and at
``/v1/audit/log-key``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session

from idp.audit import signed_note
from idp.audit.sequencer import lock_head
from idp.secrets_at_rest import KeyDoesNotOpen, Purpose, open_private_key, seal_private_key
from idp.storage import audit_keys
from idp.storage.audit_log import AuditSigningKey


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


def published_keys(session: Session) -> list[LogKey]:
    """Every key that has signed checkpoints, oldest first: what verifiers need."""
    return [_public(row) for row in audit_keys.all_keys(session)]


def signing_key(
    session: Session, key_encryption_key: bytes
) -> tuple[LogKey, ec.EllipticCurvePrivateKey]:
    """The active key, created on first use; call inside a transaction."""
    row = audit_keys.active_key(session)
    if row is None:
        lock_head(session)  # serialises creation across processes
        row = audit_keys.active_key(session) or _create(session, key_encryption_key)
    try:
        private_key = open_private_key(
            key_encryption_key, Purpose.AUDIT_CHECKPOINT, row.key_id, row.private_key_encrypted
        )
    except KeyDoesNotOpen:
        raise RuntimeError(
            f"audit signing key {row.key_id} does not decrypt with this key_encryption_key"
        ) from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"audit signing key {row.key_id} is not an EC key")
    return _public(row), private_key


def _create(session: Session, key_encryption_key: bytes) -> AuditSigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    kid = signed_note.key_id(private_key.public_key()).hex()
    encrypted = seal_private_key(key_encryption_key, Purpose.AUDIT_CHECKPOINT, kid, private_key)
    row = AuditSigningKey(
        key_id=kid,
        state="active",
        public_key_der=private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        private_key_encrypted=encrypted,
    )
    return audit_keys.add_key(session, row)


def attach_certificate_chain(session: Session, kid: str, chain_pem: str) -> None:
    """Record the CA-issued certificate chain (leaf first) of a log key."""
    audit_keys.set_certificate_chain(session, kid, chain_pem)
