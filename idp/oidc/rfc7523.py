"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).

The client signs a short JWT with a key from its registered JWKS. Checked here:
the algorithm is an asymmetric one we advertise (never ``none`` or HS256, so a
public key cannot be used as an HMAC secret), ``iss`` and ``sub`` are the
client id, ``aud`` names this server (issuer or the endpoint), ``exp`` is near,
and the ``jti`` has not been seen before: it is stored until the assertion
expires, under a primary key, so two workers cannot both accept one assertion.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from fastapi import Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from idp.context import Hoviyat
from idp.oauth.client_auth import AuthenticatedClient, register_method
from idp.oauth.errors import invalid_client
from idp.storage.models import Client
from idp.storage.oidc import OidcClientAssertion
from idp.tokens import SIGNING_ALGORITHMS

METHOD = "private_key_jwt"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Authlib and most client libraries sign for an hour; the jti is kept that long.
MAX_LIFETIME = 3600
LEEWAY = 30


def accepted_audiences(issuer: str, endpoint_url: str) -> set[str]:
    base = issuer.rstrip("/")
    return {issuer, base, f"{base}/token", endpoint_url}


def _client_id_of(assertion: str) -> str:
    # The verification key depends on the client, so the payload is read once
    # unverified to find the client; nothing in it is trusted before verification.
    try:
        claims = json.loads(extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError, UnicodeError):
        raise invalid_client("client_assertion is not a compact JWS") from None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(subject, str) or not subject:
        raise invalid_client("client_assertion has no sub")
    return subject


def _private_key_jwt(
    request: Request, form: Mapping[str, str], hoviyat: Hoviyat, session: Session | None
) -> AuthenticatedClient | None:
    if "client_assertion" not in form and "client_assertion_type" not in form:
        return None
    if session is None:  # registered with writes_when: callers pass their write session
        raise RuntimeError("private_key_jwt needs the request's write session")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion", "")
    client_id = _client_id_of(assertion)
    if form.get("client_id") not in (None, client_id):
        raise invalid_client("client_id differs from the assertion's sub")
    client = session.get(Client, client_id)
    if client is None or client.disabled:
        raise invalid_client("unknown or disabled client")
    if client.token_endpoint_auth_method != METHOD:
        raise invalid_client(f"this client authenticates with {client.token_endpoint_auth_method}")
    if not client.jwks or not client.jwks.get("keys"):
        raise invalid_client("the client has no registered keys")
    try:
        keys = KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
        token = jwt.decode(assertion, keys, algorithms=list(SIGNING_ALGORITHMS))
    except (JoseError, ValueError) as exc:
        raise invalid_client(f"client_assertion signature rejected: {exc}") from None
    claims = token.claims
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise invalid_client("client_assertion iss and sub must both be the client id")
    audience = claims.get("aud")
    audiences = {audience} if isinstance(audience, str) else set(audience or [])
    endpoint_url = hoviyat.settings.issuer.rstrip("/") + request.url.path
    if not audiences & accepted_audiences(hoviyat.settings.issuer, endpoint_url):
        raise invalid_client("client_assertion aud must be the issuer or the token endpoint")
    now = int(time.time())
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp + LEEWAY < now:
        raise invalid_client("client_assertion is expired or has no exp")
    if exp > now + MAX_LIFETIME:
        raise invalid_client(f"client_assertion must expire within {MAX_LIFETIME} s")
    nbf = claims.get("nbf")
    if isinstance(nbf, int) and nbf > now + LEEWAY:
        raise invalid_client("client_assertion is not valid yet")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise invalid_client("client_assertion needs a jti")
    session.execute(
        delete(OidcClientAssertion).where(
            OidcClientAssertion.expires_at < datetime.now(UTC)  # type: ignore[arg-type]
        )
    )
    try:
        with session.begin_nested():
            session.add(
                OidcClientAssertion(
                    client_id=client_id,
                    jti=jti,
                    expires_at=datetime.fromtimestamp(exp + LEEWAY, UTC),
                )
            )
    except IntegrityError:
        raise invalid_client("client_assertion was used before (jti replay)") from None
    return AuthenticatedClient(client, METHOD)


register_method(
    METHOD, _private_key_jwt, writes_when=lambda _request, form: "client_assertion" in form
)
