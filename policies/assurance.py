"""Levels of assurance as ``acr`` values (eIDAS URIs) and the order between them.

low: knowledge (national code + birth date matched against the civil
registry); substantial: plus possession of the registered mobile (one-time
code); high: an authenticator bound after substantial (a passkey, or a
certificate of this CA). Authentication methods are named with
RFC 8176 ``amr`` values.
"""

from __future__ import annotations

from collections.abc import Iterable

LOW = "http://eidas.europa.eu/LoA/low"
SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
HIGH = "http://eidas.europa.eu/LoA/high"
LEVELS: tuple[str, ...] = (LOW, SUBSTANTIAL, HIGH)

# RFC 8176 §2: knowledge-based, SMS-delivered one-time password.
AMR_KNOWLEDGE = "kba"
AMR_SMS = "sms"
AMR_OTP = "otp"
# RFC 8176 §2: proof of possession of a hardware-secured key; a user
# presence/verification test (WebAuthn UV); a smart card (a person
# certificate, the national card's model); the card's or key's PIN, which we
# never see: the key's signature proves it was entered.
AMR_HWK = "hwk"
AMR_USER = "user"
AMR_SC = "sc"
AMR_PIN = "pin"


def rank(acr: str | None) -> int:
    """Position of ``acr`` in LEVELS; anything unknown counts as below low."""
    try:
        return LEVELS.index(acr or "")
    except ValueError:
        return -1


def satisfies(have: str, want: str) -> bool:
    return rank(have) >= rank(want)


def required_level(acr_values: Iterable[str] | None, minimum: str = LOW) -> str:
    """The level a request needs: the lowest known level among ``acr_values``, at least ``minimum``.

    OIDC Core §3.1.2.1 makes ``acr_values`` a voluntary preference list; the
    least demanding listed value that we support is the one to satisfy, the
    service policy's ``min_acr`` raises it.
    """
    known = [value for value in acr_values or () if rank(value) >= 0]
    wanted = min(known, key=rank) if known else LOW
    return wanted if rank(wanted) >= rank(minimum) else minimum
