"""What an application serves: one table, read by ``create_app(settings)``.

Each row is a feature: the router that declares its FastAPI routes, the
grants and client-authentication methods it adds to /token, its direct
routes (the busiest exact paths answered before FastAPI's router,
:mod:`idp.http.direct`), and the members it adds to the discovery document.
A row with a ``switch`` is served only when that boolean setting is true
(node-oidc-provider's ``features`` is the model). Nothing registers itself on
import: a module is served because a row lists it.

Order matters: routes are matched in it, and /ocsp is the busiest path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter

from idp.acme import router as acme
from idp.attestations import pages as attestation_pages
from idp.counters import citizen_pages as counter_confirm_pages
from idp.http import (
    admin_clients,
    admin_registration,
    attestations,
    audit,
    certificates,
    health,
    oidc,
    reconciliations,
    registration,
    revocation,
)
from idp.http.direct import DirectRoute, Handler
from idp.login import pages as login_pages
from idp.oauth import discovery, rfc8705, rfc9449, token_endpoint
from idp.oauth.client_auth import (
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    PUBLIC_CLIENT,
    ClientAuthMethod,
)
from idp.oauth.discovery import Contributor
from idp.oauth.grants import Grant, authorization_code, client_credentials, refresh_token
from idp.oidc import rfc7591
from idp.oidc.rfc7523 import PRIVATE_KEY_JWT
from idp.settings import Settings
from idp.verification import routes as verification


@dataclass(frozen=True)
class Feature:
    name: str
    router: APIRouter
    # A boolean Settings field; None: always served.
    switch: str | None = None
    grants: tuple[Grant, ...] = ()
    client_auth: tuple[ClientAuthMethod, ...] = ()
    direct: tuple[DirectRoute, ...] = ()
    metadata: Contributor | None = None


def _get_and_post(path: str, handler: Handler) -> tuple[DirectRoute, DirectRoute]:
    return DirectRoute("GET", path, handler), DirectRoute("POST", path, handler)


FEATURES: tuple[Feature, ...] = (
    Feature(
        "ocsp",
        revocation.router,
        direct=(DirectRoute("POST", "/ocsp", revocation.ocsp_post),),
    ),
    Feature("health", health.router),
    Feature(
        "token",
        token_endpoint.router,
        grants=(client_credentials.GRANT,),
        client_auth=(CLIENT_SECRET_BASIC, CLIENT_SECRET_POST),
        direct=(DirectRoute("POST", "/token", token_endpoint.token_direct),),
        # RFC 9449 §5.1: /token takes DPoP proofs, so every grant above can bind its tokens.
        metadata=rfc9449.metadata,
    ),
    # RFC 8555: agency servers' TLS certificates; an account needs an EAB key (§7.3.4).
    # Early in the table: its routes take path parameters (no direct route), and
    # FastAPI tries routes in order, so each ACME POST skipped ~80 routes' regexes.
    Feature("acme", acme.router),
    Feature("discovery", discovery.router),
    # RFC 8705: mutual-TLS client authentication (the certificate forwarded by the
    # trusted proxy) and certificate-bound access tokens, at /token, /par, introspection.
    Feature(
        "mutual-tls",
        rfc8705.router,
        # Without a trusted proxy no certificate can arrive: nothing to serve or advertise.
        switch="client_certificates_forwarded",
        client_auth=(rfc8705.TLS_CLIENT_AUTH_METHOD, rfc8705.SELF_SIGNED_METHOD),
        metadata=rfc8705.metadata,
    ),
    Feature(
        "verification",
        verification.router,
        direct=(
            DirectRoute("POST", "/v1/persons/verify", verification.verify_person),
            DirectRoute("POST", "/v1/mobile/verify", verification.verify_mobile),
            DirectRoute("POST", "/v1/legal-entities/verify", verification.verify_entity),
        ),
    ),
    Feature("audit", audit.router),
    Feature(
        "login",
        login_pages.router,
        direct=(
            DirectRoute("GET", "/login", login_pages.login_page_direct),
            DirectRoute("POST", "/login/identify", login_pages.identify_direct),
        ),
    ),
    Feature(
        "openid-connect",
        oidc.router,
        grants=(authorization_code.GRANT, refresh_token.GRANT),
        # Public clients exist for the code flow only (idp.oidc.registration).
        client_auth=(PRIVATE_KEY_JWT, PUBLIC_CLIENT),
        direct=(
            *_get_and_post("/authorize", oidc.authorize_direct),
            *_get_and_post("/userinfo", oidc.userinfo_direct),
        ),
        metadata=oidc.metadata,
    ),
    # RFC 7591 / 7592: agencies register clients with an administrator's initial access token
    # or a trusted issuer's software statement; discovery names the endpoint only when served.
    Feature(
        "dynamic-registration",
        registration.router,
        switch="dynamic_registration",
        metadata=rfc7591.metadata,
    ),
    Feature("certificates", certificates.router),
    Feature("attestations", attestations.router),
    Feature("attestation-pages", attestation_pages.router),
    # The citizen confirms presence at a service counter on their own phone (public page).
    Feature("counter-confirm", counter_confirm_pages.router),
    Feature("reconciliations", reconciliations.router),
    Feature("admin-clients", admin_clients.router, switch="admin_api"),
    # Initial access tokens and trusted software statement issuers (RFC 7591), by API.
    Feature("admin-registration", admin_registration.router, switch="admin_api"),
)


def enabled(settings: Settings, features: Iterable[Feature] = FEATURES) -> tuple[Feature, ...]:
    """The rows ``settings`` switch on, in table order."""
    return tuple(
        feature
        for feature in features
        if feature.switch is None or bool(getattr(settings, feature.switch))
    )


def grants(features: Iterable[Feature]) -> list[Grant]:
    return [grant for feature in features for grant in feature.grants]


def client_auth_methods(features: Iterable[Feature]) -> list[ClientAuthMethod]:
    return [method for feature in features for method in feature.client_auth]


def direct_routes(features: Iterable[Feature]) -> list[DirectRoute]:
    return [route for feature in features for route in feature.direct]


def contributors(features: Iterable[Feature]) -> list[Contributor]:
    return [feature.metadata for feature in features if feature.metadata is not None]
