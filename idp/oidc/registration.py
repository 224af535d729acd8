"""Checks on an OIDC client's registration (OIDC Registration §2, RFC 6749 §3.1.2).

Used by ``hoviyat clients create``: what a client registers is what
``/authorize`` and ``/token`` will hold it to, so mistakes are refused here
with the rule they break, not discovered at the first login.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.oauth import rfc8705
from idp.oauth.client_auth import NONE
from idp.oidc import fapi2
from idp.oidc.rfc7523 import METHOD as PRIVATE_KEY_JWT
from idp.oidc.sector import SectorIdentifierError, check_sector_identifier
from idp.tokens import SIGNING_ALGORITHMS

# What a client may register: every grant and method idp.features can serve
# (tests/oidc/test_features.py holds the two lists together).
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    PRIVATE_KEY_JWT,
    *rfc8705.METHODS,
    NONE,
)
# Methods whose client holds no shared secret (a key or a certificate proves it,
# or, for a public client, nothing does and its DPoP key binds what it gets).
SECRETLESS_METHODS = (PRIVATE_KEY_JWT, *rfc8705.METHODS, NONE)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class RegistrationError(ValueError):
    """A client registration Hoviyat would not be able to honour."""


def _check_uri(uri: str, what: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RegistrationError(f"{what} {uri!r} must be an absolute https URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise RegistrationError(f"{what} {uri!r} must use https (http only on loopback)")
    if parts.fragment or "#" in uri:
        raise RegistrationError(f"{what} {uri!r} must not contain a fragment (RFC 6749 §3.1.2)")
    return uri


def load_jwks(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistrationError(f"cannot read JWKS file {path}: {exc}") from None
    return check_jwks(document, str(path))


def check_jwks(document: Any, path: str = "jwks") -> dict[str, Any]:
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise RegistrationError(f"{path} is not a JWKS: it needs a non-empty 'keys' list")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA"):
            raise RegistrationError(f"{path}: every key must be an EC or RSA JWK")
        if "d" in key:
            raise RegistrationError(f"{path} holds a private key: register the public half only")
    return {"keys": keys}


def oidc_attributes(
    *,
    redirect_uris: Sequence[str],
    post_logout_redirect_uris: Sequence[str],
    grant_types: Sequence[str],
    auth_method: str,
    id_token_alg: str,
    sector_identifier: str | None,
    jwks_file: Path | None = None,
    jwks: dict[str, Any] | None = None,
    allow_http_loopback_sector: bool = False,
    require_pushed_authorization_requests: bool = False,
    require_signed_request_object: bool = False,
    dpop_bound_access_tokens: bool = False,
    profile: str | None = None,
    backchannel_logout_uri: str | None = None,
    tls_client_auth_subject_dn: str | None = None,
    tls_client_certificate_bound_access_tokens: bool = False,
) -> dict[str, Any]:
    """The Client columns for this registration, or :class:`RegistrationError`.

    ``profile="fapi2"`` holds the client to the FAPI 2.0 Security Profile
    (:mod:`idp.oidc.fapi2`): refused unless it can be, and its authorization
    requests are then pushed and its access tokens DPoP-bound whatever was asked.

    With a ``sector_identifier`` its document is fetched (a blocking call of at
    most a few seconds, see :mod:`idp.oidc.sector`)."""
    grants = list(grant_types) or (
        ["authorization_code", "refresh_token"] if redirect_uris else ["client_credentials"]
    )
    unknown = sorted(set(grants) - set(GRANT_TYPES))
    if unknown:
        raise RegistrationError(f"unknown grant types {unknown}; known: {list(GRANT_TYPES)}")
    if "authorization_code" in grants and not redirect_uris:
        raise RegistrationError("the authorization_code grant needs at least one --redirect-uri")
    if require_pushed_authorization_requests and "authorization_code" not in grants:
        # RFC 9126 §6: the metadata is about authorization requests.
        raise RegistrationError("requiring pushed authorization requests needs authorization_code")
    if require_signed_request_object and "authorization_code" not in grants:
        # RFC 9101 §10.5: the metadata is about authorization requests.
        raise RegistrationError("requiring signed request objects needs authorization_code")
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise RegistrationError("refresh_token comes only with authorization_code")
    if auth_method not in AUTH_METHODS:
        raise RegistrationError(f"unknown auth method {auth_method!r}; use {sorted(AUTH_METHODS)}")
    if id_token_alg not in SIGNING_ALGORITHMS:
        raise RegistrationError(f"id token algorithm must be one of {list(SIGNING_ALGORITHMS)}")
    if jwks_file is not None:
        jwks = load_jwks(jwks_file)
    elif jwks is not None:
        jwks = check_jwks(jwks)
    if require_signed_request_object and jwks is None:
        # The request objects are verified with the client's registered keys.
        raise RegistrationError("requiring signed request objects needs the client's JWKS")
    if profile is not None:
        refusal = fapi2.registration_refusal(profile, grants, auth_method, id_token_alg)
        if refusal is not None:
            raise RegistrationError(refusal)
        require_pushed_authorization_requests = True
        if not tls_client_certificate_bound_access_tokens:
            # FAPI 2.0 §5.3.2.1: sender-constrained, by DPoP unless mTLS binding was asked.
            dpop_bound_access_tokens = True
    if auth_method == NONE:
        _check_public_client(grants, tls_client_certificate_bound_access_tokens)
        dpop_bound_access_tokens = True
    if auth_method == PRIVATE_KEY_JWT and jwks is None:
        raise RegistrationError("private_key_jwt needs --jwks-file with the client's public keys")
    subject_dn = _mutual_tls(auth_method, tls_client_auth_subject_dn, jwks)
    redirects = [_check_uri(uri, "redirect URI") for uri in redirect_uris]
    if sector_identifier is not None:
        _check_uri(sector_identifier, "sector identifier")
        try:
            check_sector_identifier(
                sector_identifier, redirects, allow_http_loopback=allow_http_loopback_sector
            )
        except SectorIdentifierError as exc:
            raise RegistrationError(str(exc)) from None
    return {
        "redirect_uris": redirects,
        "post_logout_redirect_uris": [
            _check_uri(uri, "post-logout redirect URI") for uri in post_logout_redirect_uris
        ],
        "grant_types": grants,
        "token_endpoint_auth_method": auth_method,
        "id_token_signed_response_alg": id_token_alg,
        "sector_identifier": sector_identifier,
        "jwks": jwks,
        "require_pushed_authorization_requests": require_pushed_authorization_requests,
        "require_signed_request_object": require_signed_request_object,
        "dpop_bound_access_tokens": dpop_bound_access_tokens,
        "profile": profile,
        "backchannel_logout_uri": (
            _check_uri(backchannel_logout_uri, "back-channel logout URI")
            if backchannel_logout_uri
            else None
        ),
        "tls_client_auth_subject_dn": subject_dn,
        "tls_client_certificate_bound_access_tokens": tls_client_certificate_bound_access_tokens,
    }


def _check_public_client(grants: Sequence[str], certificate_bound: bool) -> None:
    """What a public client may register: the code flow, its tokens bound to a DPoP key.

    With no credential, a stolen refresh token would be as good as the client;
    bound to the DPoP key the client made (RFC 9449 §5), it is useless without it.
    """
    if "client_credentials" in grants:
        raise RegistrationError("a public client (auth method none) cannot use client_credentials")
    if certificate_bound:
        raise RegistrationError("a public client has no certificate to bind its tokens to")


def _mutual_tls(
    auth_method: str, subject_dn: str | None, jwks: dict[str, Any] | None
) -> str | None:
    """RFC 8705 §2.1.2 and §2.2.2: what each mutual-TLS method needs; the DN normalised."""
    if auth_method == rfc8705.SELF_SIGNED_TLS_CLIENT_AUTH and jwks is None:
        raise RegistrationError(
            "self_signed_tls_client_auth needs --jwks-file with the certificate's public key"
        )
    if auth_method != rfc8705.TLS_CLIENT_AUTH:
        if subject_dn:
            raise RegistrationError("tls_client_auth_subject_dn goes only with tls_client_auth")
        return None
    if not subject_dn:
        raise RegistrationError(
            "tls_client_auth needs the subject DN of the client's certificate "
            "(--tls-client-auth-subject-dn, RFC 8705 §2.1.2)"
        )
    try:
        return rfc8705.normalised_subject_dn(subject_dn)
    except rfc8705.SubjectDnError as exc:
        raise RegistrationError(str(exc)) from None
