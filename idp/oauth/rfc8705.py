"""OAuth 2.0 Mutual-TLS Client Authentication and Certificate-Bound Access Tokens (RFC 8705).

TLS ends at the reverse proxy, which proves the client holds the certificate's
key and forwards the certificate (:mod:`idp.http.client_certificate`, believed
only from a trusted proxy). Here:

- §2.1 ``tls_client_auth``: the certificate is one Hoviyat's organisations CA
  issued and keeps in force (:mod:`idp.pki.oauth_client_certificates`), and its
  subject is exactly the client's registered ``tls_client_auth_subject_dn``
  (the parsed Names compared attribute by attribute, never a substring);
- §2.2 ``self_signed_tls_client_auth``: the certificate's public key is one of
  the client's registered ``jwks`` (RFC 7638 thumbprints compared);
- §3 certificate-bound access tokens: a client registered with
  ``tls_client_certificate_bound_access_tokens`` gets tokens whose
  ``cnf.x5t#S256`` is the SHA-256 of the certificate's DER (§3.1), and every
  resource that takes the token (userinfo, the verification API) refuses it
  unless the request comes with that same certificate (§3, ``invalid_token``);
  introspection reports the confirmation (§3.2).

A request uses a mutual-TLS method when it names its ``client_id`` (§2: REQUIRED)
and carries no other credential; which of the two applies is the client's
registration, so each method answers only for its own clients.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlmodel import Session

from idp.context import Hoviyat
from idp.http.client_certificate import ClientCertificateError, presented_certificate
from idp.oauth.client_auth import AuthenticatedClient, ClientAuthMethod
from idp.oauth.errors import OAuthError, invalid_client
from idp.pki.oauth_client_certificates import (
    ClientCertificateRefused,
    check_issued_client_certificate,
)
from idp.settings import Settings
from idp.storage.models import Client

TLS_CLIENT_AUTH = "tls_client_auth"
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
METHODS = (TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH)
THUMBPRINT_MEMBER = "x5t#S256"  # §3.1

router = APIRouter()  # no routes of its own: /token, /par and introspection authenticate


class SubjectDnError(ValueError):
    """A registered ``tls_client_auth_subject_dn`` that is not an RFC 4514 DN."""


def normalised_subject_dn(value: str) -> str:
    """The DN as stored: parsed (RFC 4514) and written back, so equal Names store equal."""
    try:
        name = x509.Name.from_rfc4514_string(value)
    except ValueError:
        raise SubjectDnError(f"{value!r} is not an RFC 4514 distinguished name") from None
    if not list(name):
        raise SubjectDnError("the subject DN is empty")
    return name.rfc4514_string()


def subject_matches(registered: str | None, certificate: x509.Certificate) -> bool:
    """§2.1.2: the certificate's subject is exactly the registered DN (every attribute,
    in order, equal; never a substring or a prefix)."""
    if not registered:
        return False
    try:
        expected = x509.Name.from_rfc4514_string(registered)
    except ValueError:
        return False
    return expected == certificate.subject


def thumbprint(certificate: x509.Certificate) -> str:
    """§3.1: base64url (no padding) of the SHA-256 of the certificate's DER."""
    digest = hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def bound_thumbprint(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.x5t#S256`` an access token is bound to; None for an unbound token."""
    cnf = claims.get("cnf")
    value = cnf.get(THUMBPRINT_MEMBER) if isinstance(cnf, dict) else None
    return value if isinstance(value, str) else None


def confirmation(dpop_jkt: str | None, certificate_thumbprint: str | None) -> dict[str, Any]:
    """The access token's ``cnf`` claim: a DPoP key (RFC 9449 §6.1), a certificate
    (§3.1), both, or nothing for a bearer token."""
    members: dict[str, str] = {}
    if dpop_jkt is not None:
        members["jkt"] = dpop_jkt
    if certificate_thumbprint is not None:
        members[THUMBPRINT_MEMBER] = certificate_thumbprint
    return {"cnf": members} if members else {}


def _presented(request: Request) -> x509.Certificate | None:
    try:
        return presented_certificate(request)
    except ClientCertificateError as exc:
        raise invalid_client(str(exc)) from None


# --- §3: binding at /token -------------------------------------------------------------------


def bind(request: Request, caller: AuthenticatedClient) -> AuthenticatedClient:
    """The caller with the certificate its tokens are bound to, if its registration asks (§3)."""
    if not caller.client.tls_client_certificate_bound_access_tokens:
        return caller
    certificate = _presented(request)
    if certificate is None:
        raise OAuthError(
            "invalid_request",
            "this client's tokens are bound to its TLS client certificate: present one (RFC 8705)",
        )
    return replace(caller, certificate_thumbprint=thumbprint(certificate))


# --- §3: where the token is used --------------------------------------------------------------


class CertificateMismatch(Exception):
    """A certificate-bound token came without its certificate (or with another)."""


def confirm(request: Request, claims: Mapping[str, Any]) -> None:
    """§3: a bound token is accepted only over a connection with its certificate."""
    expected = bound_thumbprint(claims)
    if expected is None:
        return
    try:
        certificate = presented_certificate(request)
    except ClientCertificateError as exc:
        raise CertificateMismatch(str(exc)) from None
    if certificate is None:
        raise CertificateMismatch("the access token is bound to a TLS client certificate")
    if thumbprint(certificate) != expected:
        raise CertificateMismatch("the access token is bound to another TLS client certificate")


def introspection_members(claims: Mapping[str, Any]) -> dict[str, str]:
    """§3.2: the confirmation an introspection answer reports."""
    value = bound_thumbprint(claims)
    return {THUMBPRINT_MEMBER: value} if value is not None else {}


# --- §2: client authentication -----------------------------------------------------------------


def _uses_mutual_tls(request: Request, form: Mapping[str, str]) -> bool:
    """A client_id and no other credential (§2: client_id is REQUIRED with these methods)."""
    if "client_secret" in form or "client_assertion" in form or "client_assertion_type" in form:
        return False
    if request.headers.get("authorization", "").lower().startswith("basic "):
        return False
    return bool(form.get("client_id"))


def _registered_with(
    request: Request,
    form: Mapping[str, str],
    hoviyat: Hoviyat,
    session: Session | None,
    method: str,
) -> Client | None:
    if not _uses_mutual_tls(request, form):
        return None
    directory = hoviyat.client_directory
    client_id = form["client_id"]
    client = (
        directory.lookup(hoviyat.db, client_id)
        if session is None
        else directory.get(session, client_id)
    )
    if client is None or client.token_endpoint_auth_method != method:
        return None  # another method's client, or none: "client authentication is required"
    if client.disabled:
        raise invalid_client("unknown or disabled client")
    return client


def _required(request: Request) -> x509.Certificate:
    certificate = _presented(request)
    if certificate is None:
        raise invalid_client("this client authenticates with a TLS client certificate (RFC 8705)")
    return certificate


def _tls_client_auth(
    request: Request, form: Mapping[str, str], hoviyat: Hoviyat, session: Session | None
) -> AuthenticatedClient | None:
    client = _registered_with(request, form, hoviyat, session, TLS_CLIENT_AUTH)
    if client is None:
        return None
    certificate = _required(request)
    try:
        if session is None:
            with hoviyat.db.read() as reading:
                check_issued_client_certificate(reading, certificate, datetime.now(UTC))
        else:
            check_issued_client_certificate(session, certificate, datetime.now(UTC))
    except ClientCertificateRefused as exc:
        raise invalid_client(str(exc)) from None
    if not subject_matches(client.tls_client_auth_subject_dn, certificate):
        raise invalid_client("the certificate's subject is not this client's registered subject DN")
    return AuthenticatedClient(client, TLS_CLIENT_AUTH)


def _public_key_thumbprint(certificate: x509.Certificate) -> str | None:
    key = certificate.public_key()
    try:
        imported = (ECKey if hasattr(key, "curve") else RSAKey).import_key(key)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError):
        return None  # a key type no registered JWK can be (EC and RSA only)
    return str(imported.thumbprint())


def _registered_thumbprints(client: Client) -> set[str]:
    if not client.jwks:
        return set()
    try:
        keys = KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError):
        return set()
    return {str(key.thumbprint()) for key in keys.keys}


def _self_signed_tls_client_auth(
    request: Request, form: Mapping[str, str], hoviyat: Hoviyat, session: Session | None
) -> AuthenticatedClient | None:
    client = _registered_with(request, form, hoviyat, session, SELF_SIGNED_TLS_CLIENT_AUTH)
    if client is None:
        return None
    certificate = _required(request)
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise invalid_client("the TLS client certificate is not valid now")
    presented = _public_key_thumbprint(certificate)
    if presented is None or presented not in _registered_thumbprints(client):
        raise invalid_client("the certificate's key is not one of this client's registered keys")
    return AuthenticatedClient(client, SELF_SIGNED_TLS_CLIENT_AUTH)


TLS_CLIENT_AUTH_METHOD = ClientAuthMethod(TLS_CLIENT_AUTH, _tls_client_auth)
SELF_SIGNED_METHOD = ClientAuthMethod(SELF_SIGNED_TLS_CLIENT_AUTH, _self_signed_tls_client_auth)


def metadata(_settings: Settings, _auth_methods: Sequence[str]) -> dict[str, Any]:
    """§3.3: the server binds access tokens to client certificates."""
    return {"tls_client_certificate_bound_access_tokens": True}
