"""The ``client_credentials`` grant (RFC 6749 §4.4): a back-office system's own token.

It changes nothing but its audit entry, so it is checked and signed outside
the shared write transaction; only the audit entry joins a batch.
"""

from __future__ import annotations

from typing import Any

from idp.audit.log import AuditEvent
from idp.context import Hoviyat
from idp.oauth import rfc8705, rfc8707
from idp.oauth.client_auth import AuthenticatedClient
from idp.oauth.errors import OAuthError
from idp.oauth.grants import Form, Grant
from idp.oauth.rfc9068 import issue_access_token
from idp.oauth.rfc9449 import TOKEN_TYPE
from idp.tracking import new_tracking_code


def client_credentials_grant(
    form: Form, caller: AuthenticatedClient, hoviyat: Hoviyat
) -> tuple[dict[str, Any], AuditEvent]:
    client = caller.client
    policy = hoviyat.policies.get(client.service_code)
    if policy is None:
        raise OAuthError("unauthorized_client", f"service policy {client.service_code} is gone")
    allowed = set(policy.operations)
    requested = set(form.get("scope", "").split()) or allowed
    if not requested <= allowed:
        extra = " ".join(sorted(requested - allowed))
        raise OAuthError("invalid_scope", f"policy {policy.service_code} does not allow: {extra}")
    lifetime = hoviyat.settings.access_token_ttl_seconds
    scope = sorted(requested)
    resource = rfc8707.audience(form, hoviyat.settings)
    token = issue_access_token(
        hoviyat.keyring,
        issuer=hoviyat.settings.issuer,
        client_id=client.client_id,
        subject=client.client_id,
        scope=scope,
        lifetime=lifetime,
        audience=resource,
        extra_claims={
            "service_code": client.service_code,
            "roles": list(client.roles),
            # RFC 9449 §6.1 (DPoP key), RFC 8705 §3.1 (TLS client certificate)
            **rfc8705.confirmation(caller.dpop_jkt, caller.certificate_thumbprint),
        },
    )
    event = AuditEvent(
        tracking_code=new_tracking_code(),
        event_type="token_issued",
        actor_type="client",
        actor_id=client.client_id,
        service_code=client.service_code,
        legal_basis=policy.legal_basis,
        operation="client_credentials",
        outcome="ok",
    )
    body = {
        "access_token": token,
        "token_type": "Bearer" if caller.dpop_jkt is None else TOKEN_TYPE,  # RFC 9449 §5
        "expires_in": lifetime,
        "scope": " ".join(scope),
    }
    return body, event


GRANT = Grant("client_credentials", read_only=client_credentials_grant)
