"""The citizen's presence proven with their own passkey, instead of the texted code.

Offered on the session page while the session awaits presence, when the
citizen has a passkey registered (:mod:`idp.login.steps.passkey`). The server
issues assertion options bound to the assisted session: a fresh challenge
stored in ``passkey_challenges`` under the session's id and the purpose
``counter_presence`` (one open at a time: a new one replaces the last),
``allowCredentials`` the citizen's passkeys only, the login's RP ID and
``userVerification: required``.

The answer is checked as a login's (:mod:`idp.login.webauthn`): the challenge
is spent first, once across workers (``DELETE ... RETURNING``), so a replayed
assertion or one made for another session finds none; the credential must be
the session's citizen's; the signature and user verification must hold; the
signature counter only moves forward. Presence is then accepted by one
conditional UPDATE (:func:`idp.storage.counters.accept_passkey`), so of two
racing acceptances (two posts, or a passkey and a code) one wins.

Each answer is one audit entry (``passkey_accepted`` or ``passkey_refused``
with its reason) naming clerk, citizen and office, as the code's are.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from idp.context import Hoviyat
from idp.counters.assisted import (
    Clerk,
    Reason,
    acting,
    now,
    own_session,
    record,
    refuse,
    require_live,
)
from idp.login.webauthn import (
    PasskeyRefused,
    assertion_credential_id,
    authentication_options,
    claimed_challenge,
    new_challenge,
    relying_party,
    verify_authentication,
)
from idp.storage import counters, passkeys

PURPOSE = "counter_presence"
OPTIONS_OPERATION = "counter.session.presence_passkey.options"
OPERATION = "counter.session.presence_passkey"
METHOD = "passkey"
NOT_AWAITING = "not_awaiting"  # present already, ended or expired while being checked


def offered(hoviyat: Hoviyat, citizen_key: str) -> bool:
    """Whether the citizen has a passkey to prove presence with."""
    with hoviyat.db.read() as db:
        return passkeys.has_any(db, citizen_key)


def options(hoviyat: Hoviyat, clerk: Clerk, session_id: str) -> dict[str, Any] | None:
    """PublicKeyCredentialRequestOptions for the clerk's own session awaiting presence;
    None when the citizen has no passkey. Refusals are audited (CounterRefused)."""
    with acting(hoviyat) as db:
        row, office = own_session(hoviyat, db, clerk, session_id, OPTIONS_OPERATION)
        require_live(hoviyat, clerk, row, office, OPTIONS_OPERATION)
        if row.present_at is not None:
            raise refuse(
                hoviyat,
                clerk,
                Reason.PRESENT,
                operation=OPTIONS_OPERATION,
                subject=row.citizen_key,
                detail={"session_id": row.id, "office_id": row.office_id},
            )
        allowed = passkeys.of_person(db, row.citizen_key)
        if not allowed:
            return None
        challenge = new_challenge()
        moment = now()
        ttl = hoviyat.login_settings.webauthn_challenge_ttl_seconds
        passkeys.issue_challenge(
            db,
            challenge=bytes_to_base64url(challenge),
            session_id=row.id,
            purpose=PURPOSE,
            interaction_id=None,
            expires_at=moment + timedelta(seconds=ttl),
            now=moment,
        )
        rp = relying_party(hoviyat.settings.issuer)
        return authentication_options(rp, challenge=challenge, allowed=allowed)


def prove(hoviyat: Hoviyat, clerk: Clerk, session_id: str, credential: str) -> str | None:
    """Check the citizen's assertion for the clerk's own live session: None when presence
    is accepted, else the refusal's reason (audited either way)."""
    with acting(hoviyat) as db:
        row, office = own_session(hoviyat, db, clerk, session_id, OPERATION)
        require_live(hoviyat, clerk, row, office, OPERATION)
        moment = now()
        reason: str | None = None
        try:
            # Spent before anything is verified: whatever follows, this answer is used up.
            spent = passkeys.spend(
                db,
                challenge=claimed_challenge(credential),
                session_id=row.id,
                purpose=PURPOSE,
                now=moment,
            )
            if spent is None:
                raise PasskeyRefused("challenge_unknown")
            credential_id = assertion_credential_id(credential)
            passkey = passkeys.by_credential_id(db, credential_id)
            # WebAuthn §7.2 step 6: the citizen's own credential, not merely a valid one.
            if passkey is None or passkey.person_hash != row.citizen_key:
                raise PasskeyRefused("not_yours")
            rp = relying_party(hoviyat.settings.issuer)
            count = verify_authentication(
                rp, credential, base64url_to_bytes(spent.challenge), passkey
            )
            if not passkeys.record_use(db, credential_id, count, moment):
                raise PasskeyRefused("sign_count_regressed")
            if not counters.accept_passkey(db, row.id, moment):
                raise PasskeyRefused(NOT_AWAITING)
        except PasskeyRefused as refused:
            reason = refused.reason
        outcome = "passkey_accepted" if reason is None else "passkey_refused"
        more = {"method": METHOD} if reason is None else {"method": METHOD, "reason": reason}
        record(db, "counter_session", outcome, clerk, row, office, OPERATION, **more)
    return reason
