"""JWT Secured Authorization Response Mode (JARM, OpenID FAPI, 2022), FAPI 2.0 Message Signing.

With ``response_mode=jwt`` (or ``query.jwt``, §2.3.1) the authorization
response, a code or an error, travels as one signed JWT in the ``response``
query parameter: ``iss``, ``aud`` (the client), ``exp`` and the usual
members (§2.1). The client then knows the response came from Hoviyat, was
meant for it and was not altered in the browser. Signed with the client's
registered ID token algorithm, as its keys already verify that.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from idp.context import Hoviyat
from idp.oidc.authorize import redirect_with
from idp.oidc.id_token import sign_id_token
from idp.storage.models import Client

JWT_MODES = ("jwt", "query.jwt")  # §2.3.1; for the code flow "jwt" means query.jwt
LIFETIME_SECONDS = 600  # §2.1: short-lived, 10 minutes is the suggested bound


def signed_for(client: Client | None, response_mode: str | None) -> Client | None:
    """The client to sign the response for, when it asked for a JWT response mode."""
    return client if response_mode in JWT_MODES else None


def authorization_response(
    hoviyat: Hoviyat,
    redirect_uri: str,
    values: Mapping[str, str | None],
    signed_for: Client | None = None,
) -> str:
    """The redirect URL carrying ``values``, plain (RFC 9207 ``iss`` added) or as JARM."""
    members = {
        key: value
        for key, value in {**values, "iss": hoviyat.settings.issuer}.items()
        if value is not None
    }
    if signed_for is None:
        return redirect_with(redirect_uri, members)
    claims = {
        **members,
        "aud": signed_for.client_id,
        "exp": int(time.time()) + LIFETIME_SECONDS,
    }
    alg = signed_for.id_token_signed_response_alg
    return redirect_with(redirect_uri, {"response": sign_id_token(hoviyat.keyring, claims, alg)})
