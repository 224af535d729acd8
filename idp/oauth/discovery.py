"""Discovery (OpenID Connect Discovery 1.0 §3, RFC 8414 §2) and the JWKS.

The metadata lists only what this application serves: the grants and
client-authentication methods it was built with, and the members each of its
features contributes (:mod:`idp.features`), so an unbuilt feature is never
advertised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from idp.context import Hoviyat, get_hoviyat
from idp.settings import Settings
from idp.tokens import SIGNING_ALGORITHMS

router = APIRouter(tags=["discovery"])

# ``contributor(settings, auth_methods)`` returns the members to merge in.
Contributor = Callable[[Settings, Sequence[str]], dict[str, Any]]


class Discovery:
    def __init__(
        self,
        grant_types: Sequence[str],
        auth_methods: Sequence[str],
        contributors: Iterable[Contributor],
    ) -> None:
        self.grant_types = list(grant_types)
        self.auth_methods = list(auth_methods)
        self.contributors = tuple(contributors)

    def metadata(self, settings: Settings) -> dict[str, Any]:
        issuer = settings.issuer
        base = issuer.rstrip("/")
        document: dict[str, Any] = {
            "issuer": issuer,
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks.json",
            "grant_types_supported": list(self.grant_types),
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
            "scopes_supported": [],
            "service_documentation": f"{base}/docs",
        }
        for contributor in self.contributors:
            for key, value in contributor(settings, self.auth_methods).items():
                if isinstance(value, list) and isinstance(document.get(key), list):
                    document[key] = sorted(set(document[key]) | set(value))
                else:
                    document[key] = value
        return document


@router.get("/.well-known/openid-configuration")
def openid_configuration(request: Request, hoviyat: Hoviyat = Depends(get_hoviyat)) -> JSONResponse:
    served: Discovery = request.app.state.discovery
    return JSONResponse(
        served.metadata(hoviyat.settings), headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server(
    request: Request, hoviyat: Hoviyat = Depends(get_hoviyat)
) -> JSONResponse:
    return openid_configuration(request, hoviyat)


@router.get("/jwks.json")
def jwks(hoviyat: Hoviyat = Depends(get_hoviyat)) -> JSONResponse:
    return JSONResponse(hoviyat.keyring.jwks(), headers={"Cache-Control": "public, max-age=60"})
