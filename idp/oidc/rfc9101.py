"""Signed authorization requests: JWT-Secured Authorization Request (RFC 9101), by value.

A client sends its authorization parameters as the claims of a JWS it signs
with a key from its registered JWKS (the keys it uses for ``private_key_jwt``),
in the ``request`` parameter at ``/authorize`` (§5.1) or at ``/par`` (RFC 9126
§3). What is checked here, before any parameter is acted on:

- the header: ``alg`` is PS256 or ES256 (:data:`ALGORITHMS`; never ``none`` or
  an HMAC, so neither an unsigned object nor one "signed" with the client
  secret or with a public key used as an HMAC secret passes), ``typ`` is
  ``oauth-authz-req+jwt`` (§4, §10.8) or absent for interoperability, and there
  is no ``crit`` (we understand no extension);
- the signature, with the client's registered keys;
- ``iss`` and ``client_id`` are the outer ``client_id`` (§5, §10.3);
- ``aud`` is exactly this server's issuer, as a string or as an array holding
  only it (§4 lets ``aud`` include the issuer; an array naming other servers
  too is refused, as for client assertions: any one of them could replay it
  here);
- FAPI 2.0 Message Signing §5.3.1: ``exp`` and ``nbf`` are present, ``nbf`` is
  not in the future nor more than 60 minutes in the past, and ``exp`` is at
  most 60 minutes after ``nbf``; ``iat``, when present, is not in the future;
- a ``jti``, when present, is single use: kept until the object expires in the
  store that keeps spent client-assertion ``jti`` values (a primary key, so two
  workers or hosts cannot both accept one object);
- the object carries no ``request`` or ``request_uri`` of its own (§4).

§6.3: only the object's parameters are used; the outer ones are ignored except
``client_id``, and a ``response_type`` sent outside too must equal the inner one
(OIDC Core §6.1). Errors are ``invalid_request_object`` and are shown, never
redirected: the redirect URI is inside the object, and until the object is
verified it is not one the client is known to have asked for.
``request_uri`` by reference to a client's URL is not supported (only the
``request_uri`` values ``/par`` issues, RFC 9126).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from sqlmodel import Session

from idp.oidc.authorize import PARAMETERS, AuthorizeFatal
from idp.storage.grants import spend_assertion
from idp.storage.group_commit import KeepWrites
from idp.storage.models import Client

# The discovery member request_object_signing_alg_values_supported (OIDC Discovery §3;
# FAPI 2.0 Security Profile §5.4: PS256 and ES256, nothing weaker).
ALGORITHMS = ("PS256", "ES256")
# §4 / §10.8: explicit typing, so no other JWT of the client's can pass as a request.
MEDIA_TYPE = "oauth-authz-req+jwt"
ERROR = "invalid_request_object"
# FAPI 2.0 Message Signing §5.3.1: nbf no more than 60 minutes in the past and
# exp no more than 60 minutes after nbf.
MAX_AGE = 3600
MAX_LIFETIME = 3600
# Clock skew allowed between the client and us (as for client assertions).
LEEWAY = 30
# A request object travels in a URL: well above a PS256 object with a claims
# request, well below what a server or proxy keeps of a request line.
MAX_LENGTH = 12_000
_MAX_JTI = 200
# Spent jti values share the client-assertion table under their own prefix, so
# a request object's jti cannot spend a client assertion's, nor the reverse.
_JTI_PREFIX = "request-object:"


@dataclass(frozen=True)
class RequestObject:
    """A verified request object: the parameters it carries, and its ``jti`` to spend."""

    client_id: str
    params: dict[str, list[str]]
    jti: str | None
    expires_at: datetime


def _refuse(description: str) -> AuthorizeFatal:
    return AuthorizeFatal(description, "request", ERROR)


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise AuthorizeFatal(f"parameter {name} is repeated", "request", "invalid_request")
    return values[0] if values and values[0] else None


def _numeric(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    # RFC 7519 §2 NumericDate; bool is an int in Python and JSON's Infinity a float.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _refuse(f"the request object needs {name} as a number of seconds")
    return float(value)


def _typ_accepted(typ: object) -> bool:
    if typ is None:
        return True  # absent: accepted for interoperability (§4 says SHOULD)
    if not isinstance(typ, str):
        return False
    # RFC 7515 §4.1.9: the "application/" prefix may be left out; compared case-insensitively.
    typ = typ.lower()
    return typ in (MEDIA_TYPE, "application/" + MEDIA_TYPE)


def _header(request: str) -> None:
    # The header is read before verification only to refuse what we will not
    # verify; nothing in it is trusted.
    try:
        header = extract_compact(request.encode("ascii")).protected
    except (JoseError, ValueError, UnicodeError, TypeError):
        raise _refuse("the request object is not a compact JWS") from None
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
        raise _refuse(f"the request object must be signed with one of {list(ALGORITHMS)}")
    if not _typ_accepted(header.get("typ")):
        raise _refuse(f"the request object typ must be {MEDIA_TYPE}")
    if "crit" in header:
        raise _refuse("the request object has critical header parameters we do not support")
    if not isinstance(header.get("kid", ""), str):
        raise _refuse("the request object kid must be a string")


def _verified_claims(request: str, client: Client) -> dict[str, Any]:
    if not client.jwks or not client.jwks.get("keys"):
        raise _refuse("the client has no registered keys to verify request objects with")
    try:
        keys = KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
        token = jwt.decode(request, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError) as exc:
        raise _refuse(f"the request object signature is rejected: {exc}") from None
    except (TypeError, KeyError, AttributeError):
        # The JOSE library on header members of unexpected types.
        raise _refuse("the request object is malformed") from None
    return dict(token.claims)


def _audience_accepted(audience: object, issuer: str) -> bool:
    if isinstance(audience, list):
        return audience == [issuer]
    return audience == issuer


def _times(claims: Mapping[str, Any], now: float) -> float:
    """FAPI 2.0 Message Signing §5.3.1 and RFC 7519 §4.1.4-§4.1.6; returns ``exp``."""
    exp = _numeric(claims, "exp", required=True)
    nbf = _numeric(claims, "nbf", required=True)
    iat = _numeric(claims, "iat", required=False)
    assert exp is not None and nbf is not None
    if exp + LEEWAY < now:
        raise _refuse("the request object has expired")
    if nbf > now + LEEWAY:
        raise _refuse("the request object is not valid yet (nbf)")
    if nbf < now - MAX_AGE:
        raise _refuse(f"the request object nbf is more than {MAX_AGE // 60} minutes old")
    if exp - nbf > MAX_LIFETIME:
        raise _refuse(f"the request object must expire within {MAX_LIFETIME // 60} minutes of nbf")
    if iat is not None and iat > now + LEEWAY:
        raise _refuse("the request object iat is in the future")
    return exp


def _as_parameter(name: str, value: object) -> str:
    # OIDC Core §6.1: claims are the parameters' JSON values; max_age may be a
    # number and the claims request an object.
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if name == "claims" and isinstance(value, dict):
        return json.dumps(value)
    raise _refuse(f"the request object's {name} must be a string")


def unpack(
    params: Mapping[str, Sequence[str]],
    find_client: Callable[[str], Client | None],
    issuer: str,
    now: float,
) -> RequestObject:
    """§5-§6: the parameters of the request object in ``params["request"]``, verified.

    Raises :class:`AuthorizeFatal` (``invalid_request_object`` unless the
    client itself is the problem); the ``jti`` is spent separately
    (:func:`spend`), in a write transaction.
    """
    client_id = _one(params, "client_id")
    request = _one(params, "request")
    if not client_id:
        # §5.1: client_id is required outside the object, to find the keys.
        raise AuthorizeFatal("client_id is missing", "request", "invalid_request")
    if not request or len(request) > MAX_LENGTH:
        raise _refuse(f"request must be a request object of at most {MAX_LENGTH} characters")
    client = find_client(client_id)
    if client is None or client.disabled:
        raise AuthorizeFatal(f"client {client_id!r} is unknown or disabled", "client")
    _header(request)
    claims = _verified_claims(request, client)
    # §5, §10.3: the object is the client's own, for the client named outside.
    if claims.get("iss") != client_id:
        raise _refuse("the request object iss must be the client_id")
    if claims.get("client_id") != client_id:
        raise _refuse("the request object client_id must be the client_id parameter")
    if not _audience_accepted(claims.get("aud"), issuer):
        raise _refuse("the request object aud must be this server's issuer, and only it")
    exp = _times(claims, now)
    jti = claims.get("jti")
    if jti is not None and (not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI):
        raise _refuse(f"the request object jti must be a string of at most {_MAX_JTI} characters")
    if "request" in claims or "request_uri" in claims:
        raise _refuse("a request object must not carry request or request_uri (RFC 9101 §4)")
    # §6.3: only the object's parameters are used.
    inner = {
        name: [_as_parameter(name, claims[name])]
        for name in PARAMETERS
        if name in claims and claims[name] is not None
    }
    outer_response_type = _one(params, "response_type")
    if outer_response_type is not None and [outer_response_type] != inner.get("response_type"):
        # OIDC Core §6.1: a response_type sent outside too must match the object's.
        raise _refuse("response_type differs from the request object's")
    return RequestObject(client_id, inner, jti, datetime.fromtimestamp(exp + LEEWAY, UTC))


REPLAYED = "the request object was used before (jti replay)"


def spend(session: Session, request_object: RequestObject) -> bool:
    """Spend the object's ``jti`` (single use); False for a replay. No ``jti``: True."""
    if request_object.jti is None:
        return True
    jti = _JTI_PREFIX + request_object.jti
    return spend_assertion(session, request_object.client_id, jti, request_object.expires_at)


def spend_or_refuse(session: Session, request_object: RequestObject) -> None:
    """:func:`spend` for ``/authorize``: a replay is :class:`AuthorizeFatal`."""
    if not spend(session, request_object):
        # KeepWrites: the expired entries dropped on the way stay dropped.
        raise KeepWrites(_refuse(REPLAYED))
