"""A presentation shared under a verification code, readable only with that code.

The holder chooses what the clerk may see (an SD-JWT presentation, or the JWT
form); the server keeps it sealed with AES-256-GCM under a key derived from
the code (HKDF-SHA256), and finds it by SHA-256 of the code. The code itself
is never stored: a copy of the database shows which attestations were shared,
not what they say.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlmodel import Session

from idp.attestations.qr import new_verification_code
from idp.storage.attestations import (
    AttestationShare,
    add_share,
    delete_shares_expired_before,
    share_by_digest,
)

_INFO = b"hoviyat attestation share v1"


def code_digest(code: str) -> str:
    return hashlib.sha256(b"share:" + code.encode("ascii")).hexdigest()


def _key(code: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        code.encode("ascii")
    )


def seal(code: str, presentation: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(code)).encrypt(nonce, presentation.encode("ascii"), _INFO)


def unseal(code: str, sealed: bytes) -> str | None:
    try:
        return AESGCM(_key(code)).decrypt(sealed[:12], sealed[12:], _INFO).decode("ascii")
    except InvalidTag:
        return None


def share(session: Session, attestation_id: str, presentation: str, expires_at: datetime) -> str:
    """Store the sealed presentation; returns the (new, grouped) verification code."""
    code = new_verification_code()
    add_share(
        session,
        AttestationShare(
            code_digest=code_digest(code),
            attestation_id=attestation_id,
            sealed=seal(code, presentation),
            expires_at=expires_at,
        ),
    )
    return code


def open_share(session: Session, code: str, now: datetime | None = None) -> str | None:
    """The presentation for ``code`` (normalised), or None if unknown or past its expiry."""
    row = share_by_digest(session, code_digest(code))
    if row is None:
        return None
    if (now or datetime.now(UTC)) > row.expires_at:
        return None
    return unseal(code, row.sealed)


def prune_shares(session: Session, now: datetime | None = None) -> int:
    """Delete sealed presentations past their expiry (personal data kept no longer than useful)."""
    return delete_shares_expired_before(session, now or datetime.now(UTC))
