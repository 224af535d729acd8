"""``private_key_jwt`` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).

The client signs a short JWT with a key from its registered JWKS. Checked here:
the algorithm is an asymmetric one we advertise (never ``none`` or HS256, so a
public key cannot be used as an HMAC secret), ``iss`` and ``sub`` are the
client id, ``aud`` is this server's issuer or token endpoint (RFC 9126 §2:
or its pushed authorization request endpoint) as one string, ``exp`` is at
most :data:`MAX_LIFETIME` ahead, ``iat`` is not in the future, and the
``jti`` has not been seen before: it is stored until the assertion expires,
under a primary key, so two workers cannot both accept one assertion.
The ``jti`` stays spent even when what the client asked for then fails
(:func:`idp.oauth.client_auth.as_authenticated_client`).
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
from sqlmodel import Session

from idp.context import Hoviyat
from idp.oauth.client_auth import AuthenticatedClient, ClientAuthMethod
from idp.oauth.errors import invalid_client
from idp.oidc import fapi2
from idp.storage import clients as client_store
from idp.storage.grants import spend_assertion
from idp.tokens import SIGNING_ALGORITHMS

METHOD = "private_key_jwt"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# RFC 7523 §3 item 4 asks for a "reasonable" exp; FAPI 2.0 §5.3.2.1 and the
# OpenID Foundation's 2025 audience advisory want assertions short-lived. At
# most 5 minutes ahead (plus the clock skew below), and the jti is kept as long.
MAX_LIFETIME = 300
# Clock skew allowed between the client and us, for exp, iat and nbf.
LEEWAY = 30


def token_endpoint_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/token"


def accepted_audience(audience: object, issuer: str) -> bool:
    """RFC 7523 §3 item 3 with FAPI 2.0 §5.3.2.1: ``aud`` is one string, the
    issuer or the token endpoint URL (RFC 9126 §2 adds the /par URL, which
    Authlib names when it posts there). An array is refused: an assertion that
    names several servers can be replayed by any one of them at another."""
    own = (issuer, token_endpoint_url(issuer), issuer.rstrip("/") + "/par")
    return isinstance(audience, str) and audience in own


def _client_id_of(assertion: str) -> str:
    # The verification key depends on the client, so the payload is read once
    # unverified to find the client; nothing in it is trusted before verification.
    try:
        compact = extract_compact(assertion.encode("ascii"))
        header = compact.protected
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError, TypeError):
        raise invalid_client("client_assertion is not a compact JWS") from None
    # RFC 7515 §4.1.1 and §4.1.11: a header we can act on names one of our
    # algorithms and no critical extension (we understand none). Checked here,
    # before the JOSE library meets header values of unexpected types.
    if not isinstance(header, dict) or header.get("alg") not in SIGNING_ALGORITHMS:
        raise invalid_client(f"client_assertion alg must be one of {list(SIGNING_ALGORITHMS)}")
    if "crit" in header:
        raise invalid_client("client_assertion has critical header parameters we do not support")
    if not isinstance(header.get("kid", ""), str):
        raise invalid_client("client_assertion kid must be a string")
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
    client = client_store.get_client(session, client_id)
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
    except (TypeError, KeyError, AttributeError):
        # The JOSE library on header members of unexpected types (seen by fuzzing).
        raise invalid_client("client_assertion is malformed") from None
    claims = token.claims
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise invalid_client("client_assertion iss and sub must both be the client id")
    if not accepted_audience(claims.get("aud"), hoviyat.settings.issuer):
        raise invalid_client(
            "client_assertion aud must be one string: the issuer, token or /par endpoint URL"
        )
    if not fapi2.assertion_audience_ok(client.profile, claims.get("aud"), hoviyat.settings.issuer):
        raise invalid_client(
            "a fapi2 client's assertion aud must be the issuer (FAPI 2.0 §5.3.2.1)"
        )
    now = int(time.time())
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp + LEEWAY < now:
        raise invalid_client("client_assertion is expired or has no exp")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise invalid_client(f"client_assertion must expire within {MAX_LIFETIME} s")
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, int) or isinstance(iat, bool)):
        raise invalid_client("client_assertion iat must be a number of seconds")
    if isinstance(iat, int) and iat > now + LEEWAY:
        raise invalid_client("client_assertion iat is in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, int) and nbf > now + LEEWAY:
        raise invalid_client("client_assertion is not valid yet")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise invalid_client("client_assertion needs a jti")
    if not spend_assertion(session, client_id, jti, datetime.fromtimestamp(exp + LEEWAY, UTC)):
        raise invalid_client("client_assertion was used before (jti replay)")
    return AuthenticatedClient(client, METHOD)


PRIVATE_KEY_JWT = ClientAuthMethod(
    METHOD, _private_key_jwt, writes_when=lambda _request, form: "client_assertion" in form
)
