"""A failed client authentication (RFC 6749 §5.2 ``invalid_client``), in the audit log.

/token, /par, /introspect and /revoke authenticate the client the same way
(:class:`idp.oauth.client_auth.ClientAuthentication`). When that fails, the
refusal is an audit entry of the client the request claimed to be
(``actor_type="client"``, outcome ``refused``), so the console counts it in
that client's refusal rate (:mod:`idp.console.clients_traffic`).

What is written, and what is not:

- Only a *registered* client's refusals are audited. The audit log is
  append-only, signed and kept for years; a client id that names no client
  (any string a caller makes up, up to the request body limit) is not written,
  or anyone could fill the log with strings of their choosing without holding
  any credential. Such a refusal is logged with the id's length only.
- Never the presented secret, assertion or certificate: the entry holds the
  client id (at most 64 characters: the column of registered ids), the
  endpoint, the method the request tried and the refusal's description.
- Per client, at most ``failed_client_authentications_per_window`` refusals a
  window (:class:`idp.ratelimit.RateLimiter`) are audited and answered 401;
  beyond that the answer is 429 with ``Retry-After`` and nothing is written.
  The limit is read only after a failure: a client presenting its right
  credential is never slowed by someone else guessing its secret, and the
  success path does no extra work.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Mapping
from typing import TypeVar
from urllib.parse import unquote_plus

from fastapi import Request

from idp.audit.log import AuditEvent, audit_entry
from idp.context import Hoviyat
from idp.oauth.errors import OAuthError
from idp.ratelimit import Limit
from idp.tracking import new_tracking_code

log = logging.getLogger(__name__)
T = TypeVar("T")

INVALID_CLIENT = "invalid_client"
EVENT_TYPE = "client_authentication"
CLIENT_ID_MAX = 64  # clients.client_id's length: a longer id names no client
REASON_MAX = 200


def _basic_client_id(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    raw_id, _, _ = decoded.partition(":")  # the secret part is never kept
    return unquote_plus(raw_id)


def _assertion_subject(assertion: str) -> str | None:
    """The unverified ``sub`` of a compact JWS (only to name whom it claims to be)."""
    parts = assertion.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None


def claimed_client_id(request: Request, form: Mapping[str, str]) -> str | None:
    """The client id the request names: Basic user, ``client_id``, or the assertion's ``sub``."""
    claimed = _basic_client_id(request) or form.get("client_id")
    if not claimed and form.get("client_assertion"):
        claimed = _assertion_subject(form["client_assertion"])
    return claimed or None


def attempted_method(request: Request, form: Mapping[str, str]) -> str:
    """Which kind of credential the request presented (its value is never kept)."""
    if request.headers.get("authorization", "").lower().startswith("basic "):
        return "client_secret_basic"
    if "client_assertion" in form or "client_assertion_type" in form:
        return "private_key_jwt"
    if "client_secret" in form:
        return "client_secret_post"
    return "tls_client_auth_or_none"


def _limits(hoviyat: Hoviyat, client_id: str) -> list[Limit]:
    return [Limit(f"ica:{client_id}", hoviyat.settings.failed_client_authentications_per_window)]


async def refused_client(
    request: Request, form: Mapping[str, str], hoviyat: Hoviyat, error: OAuthError, endpoint: str
) -> OAuthError:
    """Audit ``error`` (an ``invalid_client`` at ``endpoint``); the error to answer with."""
    claimed = claimed_client_id(request, form)
    client = None
    if claimed and len(claimed) <= CLIENT_ID_MAX:
        client = hoviyat.client_directory.lookup(hoviyat.db, claimed)
    if client is None:
        log.info(
            "invalid_client at /%s for no registered client (claimed id of %d characters)",
            endpoint,
            len(claimed or ""),
        )
        return error
    limits = _limits(hoviyat, client.client_id)
    retry_after = hoviyat.rate_limiter.retry_after(limits)
    if retry_after is not None:
        return OAuthError(
            INVALID_CLIENT,
            "too many failed client authentications; try again later",
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    hoviyat.rate_limiter.count(limits)
    event = AuditEvent(
        tracking_code=new_tracking_code(),
        event_type=EVENT_TYPE,
        actor_type="client",
        actor_id=client.client_id,
        service_code=client.service_code,
        operation=f"{endpoint}.client_authentication",
        outcome="refused",
        detail={
            "error": INVALID_CLIENT,
            "method": attempted_method(request, form),
            "reason": error.description[:REASON_MAX],
        },
    )
    await hoviyat.committer.run(audit_entry(event))
    return error


async def audit_refusals(
    request: Request,
    form: Mapping[str, str],
    hoviyat: Hoviyat,
    endpoint: str,
    work: Awaitable[T],
) -> T:
    """``work``'s result; an ``invalid_client`` it raises is audited first."""
    try:
        return await work
    except OAuthError as error:
        if error.error != INVALID_CLIENT:
            raise
        raise await refused_client(request, form, hoviyat, error, endpoint) from None
