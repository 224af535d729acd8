"""Dynamic client registration management (RFC 7592): read, update and delete.

Each call carries the client's registration access token as a Bearer token.
It is stored only as a keyed digest, compared in constant time, and rotated
by every read and update (RFC 7592 §3 lets the server issue a new one; with
only a digest kept, the answer could not hold the old one): the rotation is
a conditional UPDATE on the old digest, so a token is good for one call even
across workers and hosts. Deleting (§2.3) disables the client, which then
gets no tokens, and voids the registration token.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from idp.audit.log import append
from idp.clients import secret_digest
from idp.oidc.rfc7591 import (
    EVENT_TYPE,
    REGISTRATION_TOKEN_PURPOSE,
    ClientMetadata,
    audit_event,
    client_information,
    digest,
    invalid_metadata,
    invalid_token,
    needs_secret,
    policy_refusal,
)
from idp.secrets import ServerSecrets
from idp.storage import clients as client_store
from idp.storage import registrations as store
from idp.storage.models import Client
from idp.storage.registrations import RegisteredClient
from policies.service_policy import ServicePolicy

_REFUSED = "the registration access token is not valid for this client"


def _authorized(
    session: Session, server_secrets: ServerSecrets, client_id: str, token: str
) -> tuple[RegisteredClient, Client, str]:
    """The registration and client the token opens, and the token's digest; 401 otherwise.

    §2.1: an unknown client and a wrong token get the same 401."""
    presented = digest(server_secrets, REGISTRATION_TOKEN_PURPOSE, token)
    row = store.get_registered(session, client_id)
    stored = row.registration_token_digest if row is not None else None
    if row is None or stored is None or not hmac.compare_digest(presented, stored):
        raise invalid_token(_REFUSED)
    client = client_store.get_client(session, client_id)
    if client is None or client.disabled:
        raise invalid_token(_REFUSED)
    return row, client, presented


def _rotate(
    session: Session, server_secrets: ServerSecrets, row: RegisteredClient, old: str
) -> str:
    new = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    new_digest = digest(server_secrets, REGISTRATION_TOKEN_PURPOSE, new)
    if not store.rotate(session, row.client_id, old, new_digest, now):
        raise invalid_token(_REFUSED)  # another call spent it first
    row.registration_token_digest, row.updated_at = new_digest, now
    return new


def _audit(
    session: Session,
    server_secrets: ServerSecrets,
    policies: dict[str, ServicePolicy],
    row: RegisteredClient,
    client: Client,
    operation: str,
) -> None:
    append(
        session,
        audit_event(
            server_secrets,
            policies,
            event_type=EVENT_TYPE,
            operation=operation,
            national_id=row.national_id,
            service_code=client.service_code,
            actor_type="client",
            actor_id=client.client_id,
            detail={"client_id": client.client_id},
        ),
    )


def read(
    session: Session, server_secrets: ServerSecrets, issuer: str, client_id: str, token: str
) -> dict[str, Any]:
    """§2.1: the client's information, with a new registration access token."""
    row, client, old = _authorized(session, server_secrets, client_id, token)
    new = _rotate(session, server_secrets, row, old)
    return {**client_information(client, row, issuer), "registration_access_token": new}


def update(
    session: Session,
    server_secrets: ServerSecrets,
    policies: dict[str, ServicePolicy],
    issuer: str,
    client_id: str,
    token: str,
    *,
    meta: ClientMetadata,
    columns: dict[str, Any],
) -> dict[str, Any]:
    """§2.2: replace the metadata by ``columns`` (already checked); a client that now
    needs a secret and had none gets one, shown in this answer only."""
    row, client, old = _authorized(session, server_secrets, client_id, token)
    refusal = policy_refusal(policies.get(client.service_code), columns)
    if refusal is not None:
        raise invalid_metadata(refusal)
    if meta.client_id != client_id:
        raise invalid_metadata("client_id must be this client's (RFC 7592 §2.2)")
    if meta.client_secret is not None and not hmac.compare_digest(
        secret_digest(server_secrets.client_secret_key, meta.client_secret),
        client.secret_digest or "",
    ):
        raise invalid_metadata("client_secret is not this client's (RFC 7592 §2.2)")
    new_secret = None
    if not needs_secret(columns["token_endpoint_auth_method"]):
        client.secret_digest = None
    elif client.secret_digest is None:
        new_secret = secrets.token_urlsafe(32)
        client.secret_digest = secret_digest(server_secrets.client_secret_key, new_secret)
    for name, value in columns.items():
        setattr(client, name, value)
    if meta.client_name is not None:
        client.name = meta.client_name
    session.add(client)
    session.flush()
    new = _rotate(session, server_secrets, row, old)
    _audit(session, server_secrets, policies, row, client, "update")
    answer = {**client_information(client, row, issuer), "registration_access_token": new}
    if new_secret is not None:
        answer["client_secret"] = new_secret
    return answer


def delete(
    session: Session,
    server_secrets: ServerSecrets,
    policies: dict[str, ServicePolicy],
    client_id: str,
    token: str,
) -> None:
    """§2.3: disable the client and void its registration access token."""
    row, client, old = _authorized(session, server_secrets, client_id, token)
    if not store.rotate(session, client_id, old, None, datetime.now(UTC)):
        raise invalid_token(_REFUSED)
    client_store.set_disabled(session, client)
    _audit(session, server_secrets, policies, row, client, "delete")
