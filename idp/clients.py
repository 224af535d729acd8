"""OAuth clients: creation and secret checking.

Client secrets are 256 random bits, shown once, and stored as HMAC-SHA256
under a server key. A slow password hash buys nothing against a random
256-bit secret and would cap the token endpoint at tens of grants a second;
the keyed digest means a stolen table alone cannot be used to test guesses.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from idp.storage import clients as store
from idp.storage.engine import Database
from idp.storage.models import Client, ServicePolicyRow
from policies.service_policy import ServicePolicy

ROLES = frozenset({"admin", "ca_operator", "auditor", "counter_operator"})


class ClientError(ValueError):
    """A client that cannot be created as asked."""


def new_secret() -> str:
    """A client secret: 256 random bits, shown once and kept only as :func:`secret_digest`."""
    return secrets.token_urlsafe(32)


def secret_digest(key: bytes, secret: str) -> str:
    # hmac.digest: OpenSSL's one-shot HMAC, several times cheaper than hmac.new.
    return hmac.digest(key, secret.encode(), "sha256").hex()


def secret_matches(key: bytes, secret: str, digest: str | None) -> bool:
    if digest is None:
        return False
    return hmac.compare_digest(secret_digest(key, secret), digest)


@dataclass(frozen=True)
class NewClient:
    client: Client
    client_secret: str | None


def create_client(
    session: Session,
    secret_key: bytes,
    *,
    name: str,
    service_code: str,
    roles: list[str] | None = None,
    client_id: str | None = None,
    with_secret: bool = True,
    **attributes: Any,
) -> NewClient:
    if store.policy_row(session, service_code) is None:
        raise ClientError(f"unknown service code {service_code!r}: see 'hoviyat policies list'")
    unknown_roles = set(roles or []) - ROLES
    if unknown_roles:
        raise ClientError(f"unknown roles {sorted(unknown_roles)}; known: {sorted(ROLES)}")
    client_id = client_id or "hv-" + secrets.token_urlsafe(12)
    if store.get_client(session, client_id) is not None:
        raise ClientError(f"client {client_id!r} exists already")
    client_secret = new_secret() if with_secret else None
    client = Client(
        client_id=client_id,
        name=name,
        service_code=service_code,
        roles=sorted(roles or []),
        secret_digest=secret_digest(secret_key, client_secret) if client_secret else None,
        **attributes,
    )
    store.add_client(session, client)
    return NewClient(client=client, client_secret=client_secret)


def client_summary(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "service_code": client.service_code,
        "roles": client.roles,
        "grant_types": client.grant_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "redirect_uris": client.redirect_uris,
        "require_pushed_authorization_requests": client.require_pushed_authorization_requests,
        "require_signed_request_object": client.require_signed_request_object,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "profile": client.profile,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "tls_client_auth_subject_dn": client.tls_client_auth_subject_dn,
        "tls_client_certificate_bound_access_tokens": (
            client.tls_client_certificate_bound_access_tokens
        ),
        "disabled": client.disabled,
        "created_at": client.created_at.isoformat(),
    }


class ClientDirectory:
    """Clients by id, each remembered for a second.

    Every token request and every API request with an access token looks its
    client up; the ORM lookup cost a fifth of a worker's time at the token
    endpoint. A client disabled, re-keyed or given other roles or another
    policy by an administrator, on any worker or host, is seen by every other
    worker within ``ttl_seconds`` (1 s): each keeps a row at most that long
    before it reads it again. The worker that made the change forgets it at once.
    """

    def __init__(self, ttl_seconds: float = 1.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, tuple[float, Client | None]] = {}

    def get(self, session: Session, client_id: str) -> Client | None:
        entry = self._remembered(client_id)
        return entry[1] if entry is not None else self._load(session, client_id)

    def lookup(self, database: Database, client_id: str) -> Client | None:
        """:meth:`get` that opens a read session only when the client is not remembered."""
        entry = self._remembered(client_id)
        if entry is not None:
            return entry[1]
        with database.read() as session:
            return self._load(session, client_id)

    def _remembered(self, client_id: str) -> tuple[float, Client | None] | None:
        entry = self._entries.get(client_id)
        if entry is not None and time.monotonic() - entry[0] < self.ttl_seconds:
            return entry
        return None

    def _load(self, session: Session, client_id: str) -> Client | None:
        client = store.detached_client(session, client_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[client_id] = (time.monotonic(), client)
        return client

    def forget(self, client_id: str) -> None:
        self._entries.pop(client_id, None)


def sync_policies(session: Session, policies: dict[str, ServicePolicy]) -> list[str]:
    """Store the loaded policies as rows; returns the codes that were added or changed."""
    changed = []
    for code, policy in policies.items():
        row = store.policy_row(session, code)
        if row is None:
            store.save_policy_row(
                session,
                ServicePolicyRow(
                    service_code=code, document=policy.to_document(), digest=policy.digest
                ),
            )
            changed.append(code)
        elif row.digest != policy.digest:
            row.document, row.digest = policy.to_document(), policy.digest
            store.save_policy_row(session, row)
            changed.append(code)
    return changed


def list_clients(session: Session) -> list[Client]:
    return store.all_clients(session)
