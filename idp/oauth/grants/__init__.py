"""The token endpoint's grants (RFC 6749 §4-6): one module per grant type.

Each module exposes ``GRANT``; :mod:`idp.features` lists the grants an
application serves, and nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from idp.audit.log import AuditEvent
from idp.context import Hoviyat
from idp.oauth.client_auth import AuthenticatedClient
from idp.oauth.errors import OAuthError

Form = Mapping[str, str]
# Runs inside the shared write transaction (under its own savepoint, with
# other requests' writes): what it changes and its audit entry commit together.
GrantHandler = Callable[[Form, AuthenticatedClient, Hoviyat, Session], dict[str, Any]]
# Changes nothing but its audit entry: checked and signed outside the write
# transaction, so the signature stays out of the time the write lock is held.
ReadOnlyHandler = Callable[[Form, AuthenticatedClient, Hoviyat], tuple[dict[str, Any], AuditEvent]]


@dataclass(frozen=True)
class Grant:
    grant_type: str
    handler: GrantHandler | None = None
    read_only: ReadOnlyHandler | None = None


def required(form: Form, name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"{name} is missing")
    return value
