"""Client authentication at the token endpoint (RFC 6749 §2.3, OIDC Core §9).

The two secret-based methods are here; ``private_key_jwt`` (RFC 7523) is
:mod:`idp.oidc.rfc7523`'s. An application accepts the methods
:mod:`idp.features` lists for it. A request may use exactly one method
(RFC 6749 §2.3: "MUST NOT use more than one").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote_plus

from fastapi import Request
from sqlmodel import Session

from idp.clients import secret_matches
from idp.context import Hoviyat
from idp.oauth.errors import OAuthError, invalid_client
from idp.storage.group_commit import keeping_earlier_writes
from idp.storage.models import Client

T = TypeVar("T")


@dataclass(frozen=True)
class AuthenticatedClient:
    client: Client
    method: str
    # The RFC 7638 thumbprint of the key a DPoP proof showed this request holds
    # (RFC 9449 §5); the tokens issued are bound to it. None: no proof.
    dpop_jkt: str | None = None
    # RFC 8705 §3.1: the x5t#S256 of the TLS client certificate the tokens are
    # bound to (idp.oauth.rfc8705.bind). None: not certificate-bound.
    certificate_thumbprint: str | None = None


# The session is None where the caller only reads: a method that needs one
# then opens its own (most requests find their client in the directory).
Authenticator = Callable[
    [Request, Mapping[str, str], Hoviyat, Session | None], AuthenticatedClient | None
]
RequestPredicate = Callable[[Request, Mapping[str, str]], bool]


@dataclass(frozen=True)
class ClientAuthMethod:
    """A method's authenticator returns None when the request does not use the method.

    A method that must write to authenticate (``private_key_jwt`` spends each
    assertion's ``jti``) gives ``writes_when``: whether a request uses it.
    """

    name: str
    authenticate: Authenticator
    writes_when: RequestPredicate | None = None


def _load_client(
    hoviyat: Hoviyat, session: Session | None, client_id: str, method: str, basic: bool
) -> Client:
    directory = hoviyat.client_directory
    client = (
        directory.lookup(hoviyat.db, client_id)
        if session is None
        else directory.get(session, client_id)
    )
    if client is None or client.disabled:
        raise invalid_client("unknown or disabled client", basic=basic)
    if client.token_endpoint_auth_method != method:
        raise invalid_client(
            f"this client authenticates with {client.token_endpoint_auth_method}", basic=basic
        )
    return client


def _client_secret_basic(
    request: Request, form: Mapping[str, str], hoviyat: Hoviyat, session: Session | None
) -> AuthenticatedClient | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        raw_id, raw_secret = decoded.split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_client("malformed Basic credentials", basic=True) from None
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    client = _load_client(hoviyat, session, client_id, "client_secret_basic", True)
    if not secret_matches(hoviyat.secrets.client_secret_key, secret, client.secret_digest):
        raise invalid_client("client authentication failed", basic=True)
    return AuthenticatedClient(client, "client_secret_basic")


def _client_secret_post(
    request: Request, form: Mapping[str, str], hoviyat: Hoviyat, session: Session | None
) -> AuthenticatedClient | None:
    if "client_secret" not in form:
        return None
    client_id = form.get("client_id", "")
    client = _load_client(hoviyat, session, client_id, "client_secret_post", False)
    if not secret_matches(
        hoviyat.secrets.client_secret_key, form["client_secret"], client.secret_digest
    ):
        raise invalid_client("client authentication failed")
    return AuthenticatedClient(client, "client_secret_post")


# A public client (RFC 6749 §2.1: it cannot keep a credential, e.g. an agency's
# mobile app) names itself and proves nothing; idp.oidc.registration lets it
# register only for the code flow with DPoP-bound tokens, so what it holds is
# worth nothing without its DPoP key (RFC 9449 §5).
NONE = "none"
_CREDENTIAL_FIELDS = ("client_secret", "client_assertion", "client_assertion_type")


def _none(
    request: Request, form: Mapping[str, str], hoviyat: Hoviyat, session: Session | None
) -> AuthenticatedClient | None:
    """The public client named by ``client_id``, when that is all the request offers."""
    client_id = form.get("client_id")
    if not client_id or request.headers.get("authorization", "").lower().startswith("basic "):
        return None
    if any(field in form for field in _CREDENTIAL_FIELDS):
        return None
    directory = hoviyat.client_directory
    client = (
        directory.lookup(hoviyat.db, client_id)
        if session is None
        else directory.get(session, client_id)
    )
    # A confidential client's id alone is no authentication: another method (a
    # certificate, say) may still claim the request, else "authentication is required".
    if client is None or client.disabled or client.token_endpoint_auth_method != NONE:
        return None
    return AuthenticatedClient(client, NONE)


CLIENT_SECRET_BASIC = ClientAuthMethod("client_secret_basic", _client_secret_basic)
CLIENT_SECRET_POST = ClientAuthMethod("client_secret_post", _client_secret_post)
PUBLIC_CLIENT = ClientAuthMethod(NONE, _none)


class ClientAuthentication:
    """The client-authentication methods an application accepts (:mod:`idp.features`)."""

    def __init__(self, methods: Iterable[ClientAuthMethod]) -> None:
        self.methods = tuple(methods)
        self.names = sorted(method.name for method in self.methods)
        self._authenticators = tuple(method.authenticate for method in self.methods)
        self._writing = {
            method.name: method.writes_when for method in self.methods if method.writes_when
        }

    def writes(self, request: Request, form: Mapping[str, str]) -> bool:
        """Whether authenticating this request writes (so needs the write transaction)."""
        return any(uses(request, form) for uses in self._writing.values())

    def authenticate(
        self, request: Request, form: Mapping[str, str], hoviyat: Hoviyat, session: Session | None
    ) -> AuthenticatedClient:
        found = [
            result
            for authenticate in self._authenticators
            if (result := authenticate(request, form, hoviyat, session)) is not None
        ]
        if not found:
            raise invalid_client("client authentication is required")
        if len(found) > 1:
            raise OAuthError("invalid_request", "use exactly one client authentication method")
        return found[0]

    def then(
        self,
        request: Request,
        form: Mapping[str, str],
        hoviyat: Hoviyat,
        session: Session,
        action: Callable[[AuthenticatedClient], T],
    ) -> T:
        """Authenticate, then ``action``; what authentication wrote outlives a failing action.

        ``private_key_jwt`` spends the assertion's ``jti`` (RFC 7523 §3 item 7) as
        it authenticates. Were that write rolled back with a grant that then
        failed, the same assertion would authenticate again and again. So the
        action runs under its own SAVEPOINT: on failure only its own writes are
        undone and the error reaches the caller through ``KeepWrites``, so the
        group committer commits the spent ``jti`` anyway.
        """
        caller = self.authenticate(request, form, hoviyat, session)
        if caller.method not in self._writing:
            return action(caller)
        return keeping_earlier_writes(session, lambda: action(caller))
