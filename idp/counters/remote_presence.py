"""The citizen confirms their presence at a counter with their own passkey, on their own phone.

Why not on the clerk's machine: the ceremony would run in a browser the clerk
controls, on the login's origin and RP ID, so a dishonest clerk could hand the
authenticator a *login* challenge for the citizen's account (started in
another tab) and sign in as them at level high. Server-side purpose checks
cannot see which challenge the clerk's browser passed on. The clerk's page
therefore never runs a WebAuthn ceremony: it shows a QR code (and the URL as
text) of ``/counter/confirm/<token>`` on the issuer's origin, which the
citizen opens on their own device, reads which office and clerk ask to act
for them and for what, and confirms there (as national eID apps confirm a
counter or a desktop sign-in).

The token is 128 random bits, given to the clerk's page once and stored only
as its SHA-256 digest, in ``passkey_challenges`` under the assisted session's
id and the purpose ``counter_link`` (one live link per session: a new one
replaces the last). It works while the session awaits presence and for
:data:`LINK_MINUTES` at most. A short check code derived from the digest is
shown on both screens, so the citizen sees the page is the one at this counter.

On the confirm page the WebAuthn options allow only the session citizen's
passkeys, ``userVerification: required``, with a fresh challenge stored under
the session and the purpose ``counter_remote`` (the login spends only its own
purposes, and this page only this one, so a login challenge is refused here and
this one at the login). The assertion is checked by the login's code
(:mod:`idp.login.webauthn`): challenge spent first and once across workers,
the citizen's own credential, signature and user verification, counter
forward; then presence is accepted by the one conditional UPDATE
(:func:`idp.storage.counters.accept_passkey`), racing safely with the texted
code, and the link is spent. "This is not me" spends the link and ends the
waiting session (:func:`idp.storage.counters.end_awaiting`).

Every step is one audit entry naming clerk, citizen and office: the link
issued (``link_issued``), presence confirmed (``passkey_accepted``), refused
with its reason (``passkey_refused``), refused by the citizen
(``refused_by_citizen``); that session is also flagged (``counter_flagged``, by
the citizen), so the office's supervisor sees it in the queue with the reason and
auditors find it with the supervisors' flags.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import segno
from markupsafe import Markup, escape
from sqlmodel import Session
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from idp.audit.log import AuditEvent, append
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
from idp.storage.counters import AssistedSession, CounterOffice
from idp.tracking import new_tracking_code

LINK_PURPOSE = "counter_link"
PURPOSE = "counter_remote"  # the WebAuthn challenge's (the column holds 20 characters)
LINK_MINUTES = 5
METHOD = "passkey_remote"
LINK_OPERATION = "counter.session.presence_link"
OPERATION = "counter.session.presence_remote"
REFUSE_OPERATION = "counter.session.presence_remote.refuse"
NOT_AWAITING = "not_awaiting"  # present already, ended or expired while being checked
# The flag's reason, shown as is in the supervisor's queue (both languages).
NOT_ME_FLAG = (
    "شهروند روی گوشی خود گفت: «این من نیستم / در پیشخوان نیستم» — "
    "The citizen said on their phone: not me / not at a counter"
)
_TOKEN = re.compile(r"^[a-z2-7]{26}$")


@dataclass(frozen=True)
class Link:
    """What the clerk's page shows: the URL (with its token, given once) or only its state."""

    check_code: str
    expires_at: datetime
    url: str | None = None  # only right after issuing: the token is stored as a digest


@dataclass(frozen=True)
class Ask:
    """What the citizen's page shows: who asks, where, for what."""

    office_name: str
    clerk_name: str
    services: list[str]
    check_code: str


def new_token() -> str:
    """128 random bits in lowercase base32 (26 characters, typed case-insensitively)."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def normalise(token: str) -> str | None:
    cleaned = re.sub(r"[\s\-]", "", token[:80]).lower()
    return cleaned if _TOKEN.match(cleaned) else None


def digest(token: str) -> str:
    return hashlib.sha256(f"hoviyat/counter-link/v1:{token}".encode()).hexdigest()


def check_code(token_digest: str) -> str:
    """Four digits both screens show, so the citizen sees this is the counter's own link."""
    return f"{int(token_digest[:12], 16) % 10_000:04d}"


def grouped(token: str) -> str:
    """The token as a person types it: groups of four or five, dashes between."""
    return "-".join(token[i : i + 5] for i in range(0, len(token), 5))


def confirm_url(issuer: str, token: str) -> str:
    return f"{issuer.rstrip('/')}/counter/confirm/{token}"


def qr_svg(url: str, *, title: str) -> Markup:
    """The URL's QR code as inline SVG (no script, no image request): segno draws
    one path from the URL's bits; the only text is the escaped title."""
    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        buffer,
        kind="svg",
        scale=5,
        border=4,
        light="#fff",
        xmldecl=False,
        svgns=True,
        svgclass="qr",
    )
    drawn = (
        buffer.getvalue()
        .decode()
        .replace("<svg ", '<svg role="img" aria-labelledby="qr-title" ', 1)
    )
    head, rest = drawn.split(">", 1)
    return Markup(f'{head}><title id="qr-title">{escape(title)}</title>{rest}')  # noqa: S704


def offered(hoviyat: Hoviyat, citizen_key: str) -> bool:
    """Whether the citizen has a passkey to confirm with."""
    with hoviyat.db.read() as db:
        return passkeys.has_any(db, citizen_key)


def link_state(hoviyat: Hoviyat, session_id: str) -> Link | None:
    """The session's live link, without its token (the clerk's page on reload)."""
    with hoviyat.db.read() as db:
        found = counters.live_link(db, session_id, LINK_PURPOSE, now())
    return None if found is None else Link(check_code(found[0]), found[1])


def issue_link(hoviyat: Hoviyat, clerk: Clerk, session_id: str) -> Link | None:
    """A fresh link for the clerk's own session awaiting presence (the last one stops
    working); None when the citizen has no passkey. Refusals audited (CounterRefused)."""
    with acting(hoviyat) as db:
        row, office = own_session(hoviyat, db, clerk, session_id, LINK_OPERATION)
        require_live(hoviyat, clerk, row, office, LINK_OPERATION)
        if row.present_at is not None:
            raise refuse(
                hoviyat,
                clerk,
                Reason.PRESENT,
                operation=LINK_OPERATION,
                subject=row.citizen_key,
                detail={"session_id": row.id, "office_id": row.office_id},
            )
        if not passkeys.has_any(db, row.citizen_key):
            return None
        token = new_token()
        token_digest = digest(token)
        moment = now()
        expires = min(moment + timedelta(minutes=LINK_MINUTES), row.expires_at)
        passkeys.issue_challenge(
            db,
            challenge=token_digest,
            session_id=row.id,
            purpose=LINK_PURPOSE,
            interaction_id=None,
            expires_at=expires,
            now=moment,
        )
        record(db, "counter_session", "link_issued", clerk, row, office, LINK_OPERATION)
    return Link(check_code(token_digest), expires, confirm_url(hoviyat.settings.issuer, token))


def _clerk_of(row: AssistedSession) -> Clerk:
    """The session's clerk, whom the citizen's answers are recorded under."""
    return Clerk(row.clerk_key, row.clerk_name, "", frozenset())


def _awaiting(
    db: Session, token: str, moment: datetime
) -> tuple[str, AssistedSession, CounterOffice] | None:
    """The link's digest, its session (still awaiting presence) and office; None if the
    token is malformed, unknown, spent or expired, or the session no longer waits."""
    cleaned = normalise(token)
    if cleaned is None:
        return None
    token_digest = digest(cleaned)
    session_id = counters.link_session(db, token_digest, LINK_PURPOSE, moment)
    row = counters.session_row(db, session_id) if session_id is not None else None
    if row is None or row.present_at is not None or row.ended_at is not None:
        return None
    if row.expires_at <= moment:
        return None
    office = counters.office(db, row.office_id)
    return None if office is None else (token_digest, row, office)


def ask(hoviyat: Hoviyat, token: str) -> Ask | None:
    """What the citizen's page says, or None for a link that does not work (any reason)."""
    with hoviyat.db.read() as db:
        found = _awaiting(db, token, now())
    if found is None:
        return None
    token_digest, row, office = found
    return Ask(
        office.name, row.clerk_name or row.clerk_key[:12], office.services, check_code(token_digest)
    )


def options(hoviyat: Hoviyat, token: str) -> dict[str, Any] | None:
    """PublicKeyCredentialRequestOptions for the link's citizen; None for a dead link
    or a citizen without a passkey."""
    with hoviyat.db.session() as db:
        moment = now()
        found = _awaiting(db, token, moment)
        if found is None:
            return None
        _digest, row, _office = found
        allowed = passkeys.of_person(db, row.citizen_key)
        if not allowed:
            return None
        challenge = new_challenge()
        ttl = hoviyat.login_settings.webauthn_challenge_ttl_seconds
        passkeys.issue_challenge(
            db,
            challenge=bytes_to_base64url(challenge),
            session_id=row.id,
            purpose=PURPOSE,
            interaction_id=None,
            expires_at=min(moment + timedelta(seconds=ttl), row.expires_at),
            now=moment,
        )
    rp = relying_party(hoviyat.settings.issuer)
    return authentication_options(rp, challenge=challenge, allowed=allowed)


class LinkDead(Exception):
    """The link is unknown, spent or expired, or its session no longer waits."""


def confirm(hoviyat: Hoviyat, token: str, credential: str) -> str | None:
    """Check the citizen's assertion: None when presence is accepted, else the refusal's
    reason (audited). Raises LinkDead (not audited: no session to name) for a dead link."""
    with hoviyat.db.session() as db:
        moment = now()
        found = _awaiting(db, token, moment)
        if found is None:
            raise LinkDead
        token_digest, row, office = found
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
            passkeys.spend(
                db, challenge=token_digest, session_id=row.id, purpose=LINK_PURPOSE, now=moment
            )
        except PasskeyRefused as refused:
            reason = refused.reason
        outcome = "passkey_accepted" if reason is None else "passkey_refused"
        more = {"method": METHOD, "by": "citizen"}
        if reason is not None:
            more["reason"] = reason
        record(db, "counter_session", outcome, _clerk_of(row), row, office, OPERATION, **more)
    return reason


def not_me(hoviyat: Hoviyat, token: str) -> bool:
    """The citizen says it is not them, or they are not at a counter: the link is spent
    and the waiting session ends (audited). False for a dead link, or when the session
    was confirmed or ended meanwhile (nothing recorded then but the spent link)."""
    with hoviyat.db.session() as db:
        moment = now()
        found = _awaiting(db, token, moment)
        if found is None:
            return False
        token_digest, row, office = found
        spent = passkeys.spend(
            db, challenge=token_digest, session_id=row.id, purpose=LINK_PURPOSE, now=moment
        )
        if spent is None or not counters.end_awaiting(db, row.id, moment):
            return False
        record(
            db,
            "counter_session",
            "refused_by_citizen",
            _clerk_of(row),
            row,
            office,
            REFUSE_OPERATION,
            method=METHOD,
            by="citizen",
        )
        # Flagged for the office's supervisor and the auditors, as a supervisor's flag is.
        if counters.flag(db, row.id, by=row.citizen_key, reason=NOT_ME_FLAG, now=moment):
            append(
                db,
                AuditEvent(
                    tracking_code=new_tracking_code(),
                    event_type="counter_flagged",
                    actor_type="person",
                    actor_id=row.citizen_key,
                    operation=REFUSE_OPERATION,
                    subject_hash=row.citizen_key,
                    outcome="flagged",
                    detail={
                        "office_id": office.national_id,
                        "office_name": office.name,
                        "session_id": row.id,
                        "session_tracking_code": row.tracking_code,
                        "clerk": row.clerk_key,
                        "clerk_name": row.clerk_name,
                        "reason": NOT_ME_FLAG,
                        "by": "citizen",
                    },
                ),
            )
    return True
