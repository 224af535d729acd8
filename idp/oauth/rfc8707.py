"""Resource indicators (RFC 8707): which API an access token is for, in its ``aud``.

A token is good at one resource: Hoviyat's own API (``<issuer>/v1``: the
verification API, userinfo and the operator API; the default) or one agency
API the deployment lists in ``HOVIYAT_RESOURCE_SERVERS``. A token minted for an
agency's API carries that API's URI alone, so neither Hoviyat nor another
agency accepts it (§1: audience-restricted tokens cannot be replayed at other
resource servers).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from idp.oauth.errors import OAuthError
from idp.oauth.rfc9068 import api_audience
from idp.settings import Settings

INVALID_TARGET = "invalid_target"  # §2


def known_resources(settings: Settings) -> frozenset[str]:
    return frozenset({api_audience(settings.issuer), *settings.resource_servers})


def resource_of(params: Mapping[str, str], settings: Settings) -> str | None:
    """The ``resource`` a request names (§2), checked; None when it names none."""
    value = params.get("resource")
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    # §2: an absolute URI without a fragment component.
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in value:
        raise OAuthError(
            INVALID_TARGET, "resource must be an absolute URI without a fragment (RFC 8707 §2)"
        )
    if value not in known_resources(settings):
        raise OAuthError(INVALID_TARGET, "resource is not a resource server this issuer serves")
    return value


def audience(params: Mapping[str, str], settings: Settings, authorized: str | None = None) -> str:
    """The ``aud`` of the access token a /token request gets.

    ``authorized``: the resource the authorization request named, if any; the
    token request may repeat it but not widen it to another (§2.2).
    """
    requested = resource_of(params, settings)
    if authorized is not None and requested not in (None, authorized):
        raise OAuthError(
            INVALID_TARGET, "resource differs from the one the authorization request named"
        )
    return requested or authorized or api_audience(settings.issuer)
