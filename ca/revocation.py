"""Revocation reasons of RFC 5280 section 5.3.1, and what each one means for the CA.

The stored and spoken form of a reason is its RFC 5280 ASN.1 name
(``keyCompromise``); the CRL entry and the OCSP answer carry its code.
``removeFromCRL`` (8) is not a revocation reason: it only appears in a delta
CRL to take a held certificate off the list, so a request to revoke with it is
refused. ``certificateHold`` (6) is the one reversible state: a held
certificate may later be revoked for good with another reason. And
keyCompromise (1) always wins: a certificate already revoked for another
reason is re-recorded as keyCompromise when its key is reported compromised
(CA/B BR 4.9.1.1 and 7.2.2), so the CRL, OCSP and the blocked key agree.
"""

from __future__ import annotations

from enum import IntEnum


class RevocationReason(IntEnum):
    """CRLReason codes (RFC 5280 section 5.3.1), named as the RFC spells them; 7 is unassigned."""

    unspecified = 0
    keyCompromise = 1
    cACompromise = 2
    affiliationChanged = 3
    superseded = 4
    cessationOfOperation = 5
    certificateHold = 6
    removeFromCRL = 8
    privilegeWithdrawn = 9
    aACompromise = 10


REVOCATION_REASONS: tuple[str, ...] = tuple(
    reason.name for reason in RevocationReason if reason is not RevocationReason.removeFromCRL
)
"""Reasons a caller may revoke with, in code order."""


class InvalidReason(ValueError):
    """A reason name that RFC 5280 does not define, or one that cannot start a revocation."""


def parse_reason(name: str) -> RevocationReason:
    """The reason for an RFC 5280 name (``keyCompromise``), also accepting ``key_compromise``.

    Raises InvalidReason naming the accepted values.
    """
    wanted = name.strip().replace("_", "").replace("-", "").lower()
    for reason in RevocationReason:
        if reason.name.lower() == wanted:
            if reason is RevocationReason.removeFromCRL:
                raise InvalidReason(
                    "removeFromCRL only marks a released hold in a delta CRL; "
                    "it is not a reason to revoke"
                )
            return reason
    raise InvalidReason(
        f"unknown revocation reason {name!r}; use one of: {', '.join(REVOCATION_REASONS)}"
    )


def replaces(existing: RevocationReason, requested: RevocationReason) -> bool:
    """Whether a second revocation may change the recorded reason.

    Revocation is final and keeps its first reason, except that a hold may be
    turned into a permanent revocation (RFC 5280 section 5.3.1, certificateHold),
    and that a later key compromise report replaces any other reason: CA/B BR
    7.2.2 lets the CA update a CRL entry's reasonCode to keyCompromise, and the
    key is blocked for it (BR 4.9.1.1), so the published reason must say so.
    """
    if requested is RevocationReason.keyCompromise:
        return existing is not RevocationReason.keyCompromise
    return (
        existing is RevocationReason.certificateHold
        and requested is not RevocationReason.certificateHold
    )


def blocks_key(reason: RevocationReason) -> bool:
    """Key compromise makes the public key unusable for every certificate that carries it."""
    return reason is RevocationReason.keyCompromise
