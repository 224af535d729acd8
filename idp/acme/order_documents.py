"""The JSON an ACME client reads for an order, an authorization, a challenge (RFC 8555 §7.1.3,
§7.1.4, §8), and the status each shows at a given moment.

Stored statuses change only by conditional UPDATEs; what a reader sees also
depends on the clock: a pending or valid authorization past its ``expires``
is ``expired`` (§7.1.6), and a challenge whose validation outlived its
deadline (its worker died) is ``pending`` again, to be tried anew.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from idp.acme.paths import AcmePaths
from idp.storage.acme_orders import AcmeAuthorization, AcmeChallenge, AcmeOrder

CHALLENGE_TYPES = ("http-01", "dns-01", "tls-alpn-01")
WILDCARD_CHALLENGE_TYPES = ("dns-01",)  # §7.1.3: a wildcard is proven in DNS only
FAILED_AUTHORIZATION = ("invalid", "deactivated", "expired", "revoked")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def authorization_status(authz: AcmeAuthorization, now: datetime) -> str:
    if authz.status in ("pending", "valid") and authz.expires_at <= now:
        return "expired"
    return authz.status


def challenge_stale(challenge: AcmeChallenge, now: datetime) -> bool:
    """A validation that outlived its deadline: the worker running it is gone."""
    return (
        challenge.status == "processing"
        and challenge.processing_until is not None
        and challenge.processing_until <= now
    )


def challenge_status(challenge: AcmeChallenge, now: datetime) -> str:
    return "pending" if challenge_stale(challenge, now) else challenge.status


def challenge_document(paths: AcmePaths, challenge: AcmeChallenge, now: datetime) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": challenge.type,
        "url": paths.challenge(challenge.id),
        "status": challenge_status(challenge, now),
        "token": challenge.token,
    }
    if challenge.validated_at is not None:
        body["validated"] = rfc3339(challenge.validated_at)
    if challenge.error:
        body["error"] = challenge.error
    return body


def authorization_document(
    paths: AcmePaths,
    authz: AcmeAuthorization,
    challenges: list[AcmeChallenge],
    now: datetime,
) -> dict[str, Any]:
    status = authorization_status(authz, now)
    # §7.1.4: a final authorization lists the challenge that decided it.
    shown = (
        [c for c in challenges if c.status == authz.status]
        if authz.status
        in (
            "valid",
            "invalid",
        )
        else challenges
    )
    body: dict[str, Any] = {
        "identifier": {"type": "dns", "value": authz.identifier},
        "status": status,
        "expires": rfc3339(authz.expires_at),
        "challenges": [challenge_document(paths, c, now) for c in shown or challenges],
    }
    if authz.wildcard:
        body["wildcard"] = True
    return body


def order_document(paths: AcmePaths, order: AcmeOrder, authz_ids: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": order.status,
        "expires": rfc3339(order.expires_at),
        "identifiers": [{"type": "dns", "value": name} for name in order.names],
        "authorizations": [paths.authorization(authz_id) for authz_id in authz_ids],
        "finalize": paths.finalize(order.id),
        "profile": order.profile,
    }
    if order.replaces:
        body["replaces"] = order.replaces
    if order.error:
        body["error"] = order.error
    if order.status == "valid" and order.certificate_serial:
        body["certificate"] = paths.certificate(order.certificate_serial)
    return body
