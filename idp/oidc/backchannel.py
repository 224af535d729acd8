"""OpenID Connect Back-Channel Logout 1.0: telling each client a session has ended.

When a login session ends (RP-initiated logout), every client that holds a
grant from it and registered a ``backchannel_logout_uri`` gets a logout token
(§2.4): a JWT (``typ: logout+jwt``) with ``iss``, ``aud``, ``iat``, ``exp``,
``jti``, the client's pairwise ``sub``, the ``sid`` its ID tokens carried and
the back-channel logout event, never a ``nonce``. It is queued in the logout's
own transaction and POSTed (§2.5) by a :class:`Deliverer` in any worker or host,
with retries and backoff; a client's queue is bounded, so a dead endpoint
cannot grow the table without end.

The URI is the client's word, so the Deliverer calls it only as
:mod:`idp.oidc.outbound` allows: https to global addresses, checked again at
each delivery (DNS may have changed since registration; a refused address is
given up at once, not retried), and dialled at the address checked.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import Session

from idp.context import Hoviyat
from idp.oidc.id_token import sign_id_token
from idp.oidc.identity import subject_for
from idp.oidc.outbound import GuardedTransport, OutboundRefused, check_url
from idp.storage import logout_deliveries as store
from idp.storage.availability import DATABASE_UNAVAILABLE
from idp.storage.engine import Database
from idp.storage.models import Client
from idp.storage.oidc import OidcGrant

log = logging.getLogger("hoviyat.backchannel")

EVENT = "http://schemas.openid.net/event/backchannel-logout"  # §2.4
JWS_TYPE = "logout+jwt"  # §2.4, recommended explicit typing
TOKEN_LIFETIME_SECONDS = 120  # §2.4: exp; two minutes, as the specification suggests
MAX_PENDING_PER_CLIENT = 1000  # the bound of one client's queue
MAX_ATTEMPTS = 8  # 1 s, 2 s, 4 s ... ~2 min of backoff, then given up
LEASE = timedelta(seconds=30)  # longer than one POST may take (TIMEOUT)
TIMEOUT = httpx.Timeout(5.0)


def logout_token(hoviyat: Hoviyat, client: Client, national_code: str, session_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": hoviyat.settings.issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "jti": secrets.token_urlsafe(16),
        "sub": subject_for(hoviyat, client, national_code),
        "sid": session_id,
        "events": {EVENT: {}},
    }
    return sign_id_token(hoviyat.keyring, claims, client.id_token_signed_response_alg, JWS_TYPE)


def queue_logouts(
    session: Session,
    hoviyat: Hoviyat,
    grants: Iterable[OidcGrant],
    clients: dict[str, Client],
) -> int:
    """Queue one logout token per (client, session) of ``grants``; returns how many."""
    now = datetime.now(UTC)
    seen: set[tuple[str, str]] = set()
    queued = 0
    for grant in grants:
        client = clients.get(grant.client_id)
        if client is None or not client.backchannel_logout_uri or grant.session_id is None:
            continue
        if (client.client_id, grant.session_id) in seen:
            continue
        seen.add((client.client_id, grant.session_id))
        if store.pending(session, client.client_id) >= MAX_PENDING_PER_CLIENT:
            log.warning(
                "back-channel logout queue of client %s is full; notice dropped", client.client_id
            )
            continue
        token = logout_token(hoviyat, client, grant.national_code, grant.session_id)
        store.enqueue(
            session,
            store.OidcLogoutDelivery(
                id=secrets.token_urlsafe(24),
                client_id=client.client_id,
                uri=client.backchannel_logout_uri,
                logout_token=token,
                next_attempt_at=now,
            ),
        )
        queued += 1
    return queued


def deliver_due(
    db: Database,
    http: httpx.Client,
    batch: int = 20,
    *,
    guard: Callable[[str], None] | None = None,
) -> int:
    """POST the due deliveries this process wins the lease of; returns how many were sent.

    ``guard`` refuses (OutboundRefused) a URI that must not be called now; the
    :class:`Deliverer` passes :func:`~idp.oidc.outbound.check_url`."""
    now = datetime.now(UTC)
    with db.session() as session:
        claimed = store.claim_due(session, now, now + LEASE, batch)
    delivered = 0
    for delivery_id in claimed:
        with db.read() as session:
            row = store.get(session, delivery_id)
            if row is None:
                continue
            uri, token, attempts = row.uri, row.logout_token, row.attempts
        outcome = _guarded_post(http, uri, token, guard)
        settled = datetime.now(UTC)
        with db.session() as session:
            if outcome == "delivered":
                store.settle(session, delivery_id, delivered_at=settled)
                delivered += 1
            elif outcome == "refused" or attempts + 1 >= MAX_ATTEMPTS:
                store.settle(session, delivery_id, failed_at=settled)
            else:
                backoff = timedelta(seconds=min(2**attempts, 300))
                store.settle(session, delivery_id, retry_at=settled + backoff)
    return delivered


def _guarded_post(
    http: httpx.Client, uri: str, token: str, guard: Callable[[str], None] | None
) -> str:
    if guard is not None:
        try:
            guard(uri)
        except OutboundRefused as refusal:
            # Never retried: an address that is refused now is an attempt, not an outage.
            log.warning("back-channel logout not sent: %s", refusal)
            return "refused"
    return _post(http, uri, token)


def _post(http: httpx.Client, uri: str, token: str) -> str:
    """§2.5: form-encoded ``logout_token``; §2.8: 200 (or 204) is success, a 4xx a refusal
    that retrying would not change, anything else worth another try."""
    try:
        answer = http.post(uri, data={"logout_token": token}, timeout=TIMEOUT)
    except httpx.HTTPError:
        return "retry"
    if answer.status_code in (200, 204):
        return "delivered"
    if 400 <= answer.status_code < 500:
        return "refused"
    return "retry"


class Deliverer:
    """A thread that delivers due logout tokens every ``interval`` seconds until stopped."""

    def __init__(self, db: Database, interval: float = 1.0, *, allow_loopback: bool = False):
        self._db = db
        self._interval = interval
        # HOVIYAT_OUTBOUND_ALLOW_LOOPBACK: http to loopback, for tests and development.
        self._allow_loopback = allow_loopback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="backchannel-logout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failing = False
        allow_loopback = self._allow_loopback

        def guard(uri: str) -> None:
            check_url(uri, allow_loopback=allow_loopback)

        # follow_redirects off: a logout endpoint that redirects is not delivered to (a
        # redirect could lead where the guard would refuse).
        transport = GuardedTransport(allow_loopback=allow_loopback)
        with httpx.Client(transport=transport, follow_redirects=False) as http:
            while not self._stop.is_set():
                try:
                    deliver_due(self._db, http, guard=guard)
                except DATABASE_UNAVAILABLE as exc:  # try again next round
                    # One line when an outage starts, not a traceback a second: a
                    # long outage must not flood the log (or a pipe no one reads).
                    if not failing:
                        log.warning("back-channel logout delivery paused: %s", type(exc).__name__)
                    failing = True
                else:
                    if failing:
                        log.warning("back-channel logout delivery resumed")
                    failing = False
                self._stop.wait(self._interval)
