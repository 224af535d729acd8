"""Token-signing keys (``token_signing_keys``): what the key ring reads and rotates.

The table is defined in :mod:`idp.storage.models`; the states and their
meaning are :mod:`idp.tokens.keyring`'s business.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from idp.storage.models import TokenSigningKey

PUBLISHED_STATES = ("next", "active", "retired")


def active_key(session: Session, alg: str) -> TokenSigningKey | None:
    return session.exec(
        select(TokenSigningKey).where(TokenSigningKey.alg == alg, TokenSigningKey.state == "active")
    ).first()


def keys_for_rotation(session: Session, alg: str) -> list[TokenSigningKey]:
    """Every key of ``alg``, locked until the transaction ends (one rotation at a time)."""
    return list(
        session.exec(select(TokenSigningKey).where(TokenSigningKey.alg == alg).with_for_update())
    )


def published_keys(session: Session) -> list[TokenSigningKey]:
    """The keys a JWKS lists: about to sign, signing, or still verifying their tokens."""
    return list(
        session.exec(
            select(TokenSigningKey).where(col(TokenSigningKey.state).in_(PUBLISHED_STATES))
        )
    )


def save_keys(session: Session, rows: Iterable[TokenSigningKey]) -> None:
    session.add_all(list(rows))


def all_keys(session: Session) -> list[TokenSigningKey]:
    """Every key, by algorithm then age (``hoviyat keys list``)."""
    return list(
        session.exec(
            select(TokenSigningKey).order_by(
                col(TokenSigningKey.alg), col(TokenSigningKey.created_at)
            )
        )
    )


def next_key(session: Session, alg: str) -> TokenSigningKey | None:
    """The published key of ``alg`` that the next rotation makes active."""
    return session.exec(
        select(TokenSigningKey).where(TokenSigningKey.alg == alg, TokenSigningKey.state == "next")
    ).first()
