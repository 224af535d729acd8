"""Discovery (OpenID Connect Discovery 1.0 §3, RFC 8414 §2) and the JWKS.

The metadata lists only what this server does: other modules contribute
their endpoints and values through :func:`contribute`, so an unbuilt feature
is never advertised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from idp.context import Hoviyat, get_hoviyat
from idp.oauth.client_auth import supported_methods
from idp.oauth.token_endpoint import supported_grants
from idp.tokens import SIGNING_ALGORITHMS

router = APIRouter(tags=["discovery"])

Contributor = Callable[[str], dict[str, Any]]
_CONTRIBUTORS: list[Contributor] = []


def contribute(contributor: Contributor) -> None:
    """Add metadata: ``contributor(issuer)`` returns the members to merge in."""
    _CONTRIBUTORS.append(contributor)


def metadata(issuer: str) -> dict[str, Any]:
    base = issuer.rstrip("/")
    document: dict[str, Any] = {
        "issuer": issuer,
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks.json",
        "grant_types_supported": supported_grants(),
        "token_endpoint_auth_methods_supported": supported_methods(),
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "scopes_supported": [],
        "service_documentation": f"{base}/docs",
    }
    for contributor in _CONTRIBUTORS:
        for key, value in contributor(issuer).items():
            if isinstance(value, list) and isinstance(document.get(key), list):
                document[key] = sorted(set(document[key]) | set(value))
            else:
                document[key] = value
    return document


@router.get("/.well-known/openid-configuration")
def openid_configuration(hoviyat: Hoviyat = Depends(get_hoviyat)) -> JSONResponse:
    return JSONResponse(
        metadata(hoviyat.settings.issuer), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server(hoviyat: Hoviyat = Depends(get_hoviyat)) -> JSONResponse:
    return openid_configuration(hoviyat)


@router.get("/jwks.json")
def jwks(hoviyat: Hoviyat = Depends(get_hoviyat)) -> JSONResponse:
    return JSONResponse(hoviyat.keyring.jwks(), headers={"Cache-Control": "public, max-age=60"})
