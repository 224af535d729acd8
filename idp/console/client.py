"""The console as a client of Hoviyat's own OpenID Connect provider.

``hoviyat init`` (and the development setup) registers ``hoviyat-console``:
code flow with PKCE, redirect URI ``<issuer>/console/callback``, service policy
``hoviyat-console`` (OIDC login at substantial or higher, releasing the name
and national code). Its secret is derived from the server secrets
(:meth:`ServerSecrets.derived_key`), so every worker and host knows it without
a file of its own, and it changes only with the secrets.
"""

from __future__ import annotations

import base64

from sqlmodel import Session

from idp.clients import create_client, secret_digest
from idp.secrets import ServerSecrets
from idp.settings import Settings
from idp.storage import clients as client_store

CLIENT_ID = "hoviyat-console"
SERVICE_CODE = "hoviyat-console"
CALLBACK_PATH = "/console/callback"


def client_secret(secrets: ServerSecrets) -> str:
    return (
        base64.urlsafe_b64encode(secrets.derived_key("console client secret")).decode().rstrip("=")
    )


def redirect_uri(settings: Settings) -> str:
    return settings.issuer.rstrip("/") + CALLBACK_PATH


def ensure_console_client(session: Session, settings: Settings, secrets: ServerSecrets) -> bool:
    """Register the console client, or bring its redirect URI and secret up to date.

    True when something was written. Run after the service policies are synced.
    """
    digest = secret_digest(secrets.client_secret_key, client_secret(secrets))
    uris = [redirect_uri(settings)]
    client = client_store.get_client(session, CLIENT_ID)
    if client is None:
        client = create_client(
            session,
            secrets.client_secret_key,
            name="Hoviyat console",
            service_code=SERVICE_CODE,
            client_id=CLIENT_ID,
            with_secret=False,
            grant_types=["authorization_code"],
            redirect_uris=uris,
        ).client
    elif client.secret_digest == digest and client.redirect_uris == uris:
        return False
    client.secret_digest = digest
    client.redirect_uris = uris
    client_store.add_client(session, client)
    return True
