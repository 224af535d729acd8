"""JWT responses for token introspection (RFC 9701): FAPI 2.0 Message Signing.

A resource server that sends ``Accept: application/token-introspection+jwt``
gets the RFC 7662 answer signed by Hoviyat (§5), so it can keep it as
non-repudiable evidence of what the issuer said about a token. Signed with the
calling client's registered ID token algorithm: one per-client choice of
algorithm, as the client's keys were already chosen to verify it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from idp.context import Hoviyat
from idp.oidc.id_token import sign_id_token
from idp.storage.models import Client

MEDIA_TYPE = "application/token-introspection+jwt"  # §4, §5
JWS_TYPE = "token-introspection+jwt"  # §5: the typ header


def wanted(accept: str) -> bool:
    """§4: the resource server asks for it by media type in Accept (parameters ignored)."""
    offered = (part.split(";")[0].strip().lower() for part in accept.split(","))
    return MEDIA_TYPE in offered


def signed_introspection(hoviyat: Hoviyat, client: Client, answer: Mapping[str, Any]) -> str:
    """§5: ``iss``, ``aud`` (the caller), ``iat`` and the answer in ``token_introspection``."""
    claims = {
        "iss": hoviyat.settings.issuer,
        "aud": client.client_id,
        "iat": int(time.time()),
        "token_introspection": dict(answer),
    }
    return sign_id_token(hoviyat.keyring, claims, client.id_token_signed_response_alg, JWS_TYPE)
