"""Software statements (RFC 7591 §2.3, §3.1.1) signed by an issuer an administrator trusts.

An administrator trusts an issuer (``hoviyat clients statement-issuer add``,
``POST /v1/clients/statement-issuers``): its ``iss`` value, the public keys it
signs with, and the legal entity and service policy its clients belong to
(:mod:`idp.storage.statement_issuers`). A statement then registers one client
without an initial access token. What is checked, before any member is used:

- the header: ``alg`` is ES256, PS256 or EdDSA/Ed25519 (:data:`ALGORITHMS`; never
  ``none``, never an HMAC, so a statement "signed" with a public key used as an
  HMAC secret does not pass); no ``crit``;
- ``iss`` names a trusted issuer that is not revoked, and the signature
  verifies with that issuer's keys only (§2.3: the statement's issuer is who
  vouches for it);
- ``iat`` and ``exp`` are present, ``iat`` not in the future, ``exp`` not
  past, and the statement lives at most :data:`MAX_LIFETIME`; a ``nbf`` is
  honoured;
- ``aud``, when present, names this server (RFC 7519 §4.1.3);
- ``jti`` is present and single use: spent by one INSERT (the store's
  :func:`~idp.storage.statement_issuers.spend`) in the registration's own
  transaction, so two workers or hosts cannot both register with it;
- a ``service_code``, ``national_id`` or ``roles`` claim is refused unless it
  equals what the issuer is bound to: the client is tied to the issuer's entity
  and policy, never to anything in the statement or the request.

§3.1.1: the statement's metadata members take precedence over the request's
(:func:`merged_metadata`). Errors are RFC 7591 §3.2.2's
``invalid_software_statement`` (malformed, badly signed, stale, replayed) and
``unapproved_software_statement`` (an issuer not trusted, or a statement that
claims another entity or policy); a refusal changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from sqlmodel import Session

from idp.oauth.errors import OAuthError
from idp.storage import statement_issuers as store
from idp.storage.statement_issuers import StatementIssuer

# EdDSA with Ed25519 keys, also under its fully-specified name (RFC 9864 deprecates "EdDSA").
ALGORITHMS = ("ES256", "PS256", "EdDSA", "Ed25519")
INVALID = "invalid_software_statement"
UNAPPROVED = "unapproved_software_statement"
LEEWAY = 60  # clock skew between the issuer and us, in seconds
MAX_LIFETIME = 86_400  # exp - iat: a statement is made for one registration, not for years
MAX_LENGTH = 16_000
_MAX_JTI = 200
# RFC 7519 §4.1: about the statement itself, not the client.
_REGISTERED = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})
# Who the client belongs to: the issuer's binding decides; a statement may only repeat it.
_BINDING = ("service_code", "national_id")
# Key types an issuer may register: public halves of EC, RSA and Ed25519 keys.
_KEY_TYPES = ("EC", "RSA", "OKP")


def invalid(description: str) -> OAuthError:
    return OAuthError(INVALID, description)


def unapproved(description: str) -> OAuthError:
    return OAuthError(UNAPPROVED, description)


@dataclass(frozen=True)
class Statement:
    """A verified statement: who vouches, the client metadata it fixes, its id to spend."""

    issuer: str
    national_id: str
    service_code: str
    metadata: dict[str, Any]
    statement_id: str
    expires_at: datetime


class IssuerKeysError(ValueError):
    """An issuer's JWKS that statements could not be verified with; ``str(e)`` says why."""


def check_issuer_jwks(document: Any) -> dict[str, Any]:
    """The issuer's public JWKS as stored, or :class:`IssuerKeysError`."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys or len(keys) > 10:
        raise IssuerKeysError("the JWKS needs a 'keys' list of 1 to 10 keys")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES:
            raise IssuerKeysError(f"every key must be a JWK of type {list(_KEY_TYPES)}")
        if "d" in key or "p" in key or "k" in key:
            raise IssuerKeysError("the JWKS holds private key material: register public keys")
    try:
        KeySet.import_key_set({"keys": keys})  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise IssuerKeysError(f"the JWKS does not import: {exc}") from None
    return {"keys": keys}


def _header(statement: str) -> dict[str, Any]:
    # Read before verification only to refuse what will not be verified, and to
    # learn which issuer's keys to verify with; nothing in it is trusted.
    try:
        compact = extract_compact(statement.encode("ascii"))
        header = compact.protected
        payload = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError, TypeError):
        raise invalid("the software statement is not a compact JWS") from None
    if not isinstance(header, dict) or header.get("alg") not in ALGORITHMS:
        raise invalid(f"the software statement must be signed with one of {list(ALGORITHMS)}")
    if "crit" in header:
        raise invalid("the software statement has critical header parameters")
    if not isinstance(payload, dict) or not isinstance(payload.get("iss"), str):
        raise invalid("the software statement needs an iss claim")
    return payload


def _numeric(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    # RFC 7519 §2 NumericDate; bool is an int in Python and JSON's Infinity a float.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid(f"the software statement needs {name} as a number of seconds")
    return float(value)


def _expiry(claims: Mapping[str, Any], now: float) -> float:
    iat = _numeric(claims, "iat", required=True)
    exp = _numeric(claims, "exp", required=True)
    nbf = _numeric(claims, "nbf", required=False)
    assert iat is not None and exp is not None
    if iat > now + LEEWAY:
        raise invalid("the software statement was issued in the future (iat)")
    if exp + LEEWAY < now:
        raise invalid("the software statement has expired")
    if nbf is not None and nbf > now + LEEWAY:
        raise invalid("the software statement is not valid yet (nbf)")
    if exp - iat > MAX_LIFETIME:
        raise invalid(f"the software statement must expire within {MAX_LIFETIME} s of iat")
    return exp


def _verified_claims(statement: str, issuer: StatementIssuer) -> dict[str, Any]:
    try:
        keys = KeySet.import_key_set(issuer.jwks)  # type: ignore[arg-type]
        token = jwt.decode(statement, keys, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError) as exc:
        raise invalid(f"the software statement signature is rejected: {exc}") from None
    except (TypeError, KeyError, AttributeError):
        # The JOSE library on header members of unexpected types.
        raise invalid("the software statement is malformed") from None
    return dict(token.claims)


def _audience_accepted(audience: object, server: str) -> bool:
    # RFC 7519 §4.1.3: a statement made for other servers is not one to register here.
    if audience is None:
        return True
    if isinstance(audience, list):
        return server in audience and all(isinstance(a, str) for a in audience)
    return audience == server


def verify(
    statement: object,
    find_issuer: Callable[[str], StatementIssuer | None],
    now: float,
    server: str,
) -> Statement:
    """The statement, verified; ``OAuthError`` (§3.2.2) otherwise. Its jti is spent by
    :func:`spend`, in the registration's transaction."""
    if not isinstance(statement, str) or not 0 < len(statement) <= MAX_LENGTH:
        raise invalid("software_statement must be a compact JWS string")
    unverified = _header(statement)
    issuer = find_issuer(unverified["iss"])
    if issuer is None or issuer.revoked_at is not None:
        raise unapproved("the software statement's issuer is not trusted here")
    claims = _verified_claims(statement, issuer)
    if claims.get("iss") != issuer.issuer:
        raise invalid("the software statement's iss changed under verification")
    exp = _expiry(claims, now)
    if not _audience_accepted(claims.get("aud"), server):
        raise invalid(f"the software statement's aud does not name this server ({server})")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
        raise invalid("the software statement needs a jti (a string of at most 200 characters)")
    bound = {"service_code": issuer.service_code, "national_id": issuer.national_id}
    for name in _BINDING:
        if name in claims and claims[name] != bound[name]:
            raise unapproved(f"the statement's {name} is not the one its issuer is bound to")
    if "roles" in claims:
        raise unapproved("a software statement cannot grant roles")
    metadata = {
        name: value
        for name, value in claims.items()
        if name not in _REGISTERED and name not in _BINDING
    }
    key = hashlib.sha256(f"{issuer.issuer}\x00{jti}".encode()).hexdigest()
    return Statement(
        issuer=issuer.issuer,
        national_id=issuer.national_id,
        service_code=issuer.service_code,
        metadata=metadata,
        statement_id=key,
        expires_at=datetime.fromtimestamp(exp + LEEWAY, UTC),
    )


def merged_metadata(request: Mapping[str, Any], statement: Statement) -> dict[str, Any]:
    """§3.1.1: the statement's members win over the request's; the statement itself goes."""
    merged = {name: value for name, value in request.items() if name != "software_statement"}
    merged.update(statement.metadata)
    return merged


def spend(session: Session, statement: Statement) -> None:
    """Spend the statement's jti; ``invalid_software_statement`` if it was spent before,
    ``unapproved_software_statement`` if its issuer was revoked since it was verified.

    Spent statements past their expiry go first: registrations are rare, and an expired
    statement is refused by its ``exp`` whether or not its row is kept."""
    issuer = store.get(session, statement.issuer)
    if issuer is None or issuer.revoked_at is not None:
        raise unapproved("the software statement's issuer is not trusted here")
    store.prune(session, datetime.now(UTC))
    if not store.spend(session, statement.statement_id, statement.expires_at):
        raise invalid("the software statement was used before (its jti is single use)")
