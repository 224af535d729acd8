"""Pushed authorization requests (RFC 9126).

A client authenticates at ``/par`` as at ``/token`` and posts its authorization
parameters; they are checked exactly as ``/authorize`` checks them
(:func:`idp.oidc.authorize.validate`) and kept server-side under a single-use,
short-lived ``request_uri``. ``/authorize?client_id=…&request_uri=…`` then takes
them back (§4): only for the client that pushed them, once, before they expire.
A ``request_uri`` that fails is shown to the user, never redirected: until the
pushed request is found there is no redirect URI it is safe to use. A signed
request object (RFC 9101, §3 here) may be pushed in ``request``: it is
verified and its ``jti`` spent now, and only its parameters are kept.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from idp.context import Hoviyat
from idp.oauth.client_auth import AuthenticatedClient
from idp.oauth.errors import OAuthError
from idp.oauth.rfc9449 import Proof
from idp.oidc import rfc9101
from idp.oidc.authorize import PARAMETERS, AuthorizeFatal, AuthorizeRedirectError, validate
from idp.oidc.identity import IdentityRefused, policy_for
from idp.storage import pushed_requests
from idp.storage.group_commit import KeepWrites
from idp.storage.models import Client

# §2.2: a URN the client treats as opaque; the random part is 256 bits.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
_MAX_REQUEST_URI = 200


def endpoint_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/par"


def digest(request_uri: str) -> str:
    # Stored as a digest, like codes: a copy of the table cannot be replayed.
    return hashlib.sha256(request_uri.encode()).hexdigest()


def push(
    session: Session,
    hoviyat: Hoviyat,
    caller: AuthenticatedClient,
    form: Mapping[str, str],
    now: datetime,
    dpop: Proof | None = None,
) -> dict[str, Any]:
    """§2.1-§2.2: check and store the pushed request; the 201 answer's body.

    ``dpop``: the DPoP proof sent with the push (RFC 9449 §10.1), already checked
    and spent; the code this request leads to is bound to its key.
    """
    if "request_uri" in form:
        raise OAuthError("invalid_request", "request_uri must not be pushed (RFC 9126 §2.1)")
    client = caller.client
    # §2.1: the client_id parameter, when sent, names the authenticated client.
    if form.get("client_id", client.client_id) != client.client_id:
        raise OAuthError("invalid_request", "client_id is not the authenticated client")
    params = {name: [form[name]] for name in PARAMETERS if name in form}
    params["client_id"] = [client.client_id]

    def this_client(client_id: str) -> Client | None:
        return client if client_id == client.client_id else None

    try:
        if "request" in form:
            # §3: a request object (RFC 9101) pushed by value; only its parameters are kept.
            request_object = rfc9101.unpack(
                params, this_client, hoviyat.settings.issuer, now.timestamp()
            )
            if not rfc9101.spend(session, request_object):
                raise OAuthError(rfc9101.ERROR, rfc9101.REPLAYED)
            params = {**request_object.params, "client_id": [client.client_id]}
        elif client.require_signed_request_object:
            # RFC 9101 §10.5: held to it here; /authorize trusts what was pushed.
            raise OAuthError(
                "invalid_request",
                "this client's authorization requests must be signed request objects (RFC 9101)",
            )
        if dpop is not None:
            if params.get("dpop_jkt", [dpop.jkt]) != [dpop.jkt]:
                raise OAuthError(
                    "invalid_dpop_proof",
                    "dpop_jkt is not the thumbprint of the DPoP proof's key (RFC 9449 §10.1)",
                )
            params["dpop_jkt"] = [dpop.jkt]
        validate(params, this_client, pushed=True, signed="request" in form)
        policy_for(hoviyat, client)
    except AuthorizeFatal as exc:
        error = exc.error or ("unauthorized_client" if exc.kind == "client" else "invalid_request")
        raise OAuthError(error, str(exc)) from None
    except AuthorizeRedirectError as exc:
        raise OAuthError(exc.error, exc.description) from None
    except IdentityRefused as exc:
        raise OAuthError("unauthorized_client", str(exc)) from None
    lifetime = hoviyat.settings.par_lifetime_seconds
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    pushed_requests.push(
        session,
        {
            "request_uri_hash": digest(request_uri),
            "client_id": client.client_id,
            "params": params,
            "created_at": now,
            "expires_at": now + timedelta(seconds=lifetime),
        },
    )
    return {"request_uri": request_uri, "expires_in": lifetime}


def _one(params: Mapping[str, Sequence[str]], name: str) -> str:
    values = params.get(name) or []
    if len(values) != 1 or not values[0]:
        raise AuthorizeFatal(f"{name} must be given once", "request", "invalid_request")
    return values[0]


def redeem(
    session: Session, params: Mapping[str, Sequence[str]], now: datetime
) -> dict[str, list[str]]:
    """§4: the pushed parameters for ``request_uri``, used up; or :class:`AuthorizeFatal`.

    Every other parameter of the request is ignored: only what the client
    pushed, authenticated, is acted on.
    """
    client_id = _one(params, "client_id")
    request_uri = _one(params, "request_uri")
    if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > _MAX_REQUEST_URI:
        # By-reference request objects (RFC 9101 §5.2) are not supported.
        raise AuthorizeFatal(
            "request_uri is not one this server issued", "request", "invalid_request_uri"
        )
    pushed = pushed_requests.take(session, digest(request_uri), client_id, now)
    if pushed is None:
        # KeepWrites: the expired requests dropped on the way stay dropped.
        raise KeepWrites(
            AuthorizeFatal(
                "request_uri is unknown, expired, already used or not this client's",
                "request",
                "invalid_request_uri",
            )
        )
    return {name: [str(value) for value in values] for name, values in pushed.items()}
