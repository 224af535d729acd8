"""Remembered consents: a person lets one client receive one set of claims, until revoked.

A consent covers a request when its claim set contains every requested claim
(a client asking for less than it was granted needs no new question; asking
for more does). The statements are :mod:`idp.storage.consents`'.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlmodel import Session

from idp.storage import consents
from idp.storage.login import Consent


def claims_key(claims: Iterable[str]) -> str:
    return " ".join(sorted(set(claims)))


def has_consent(db_session: Session, national_code: str, client_id: str, claims: list[str]) -> bool:
    """True when a live consent of this person lets this client receive all of ``claims``."""
    wanted = set(claims)
    granted = consents.granted_claim_sets(db_session, national_code, client_id)
    return any(wanted <= set(claim_set) for claim_set in granted)


def remember_consent(
    db_session: Session, national_code: str, client_id: str, claims: list[str]
) -> None:
    """Record (or revive) the consent for exactly this claim set."""
    key = claims_key(claims)
    now = datetime.now(UTC)
    if consents.revive(db_session, national_code, client_id, key, now):
        return
    consents.add_once(
        db_session,
        Consent(
            national_code=national_code,
            client_id=client_id,
            claims_key=key,
            claims=sorted(set(claims)),
            granted_at=now,
        ),
    )


def list_consents(db_session: Session, national_code: str) -> list[Consent]:
    return consents.live(db_session, national_code)


def revoke_consent(db_session: Session, national_code: str, consent_id: int) -> bool:
    """Revoke one of this person's consents; False when it is not theirs or already revoked."""
    return consents.revoke(db_session, national_code, consent_id, datetime.now(UTC))
