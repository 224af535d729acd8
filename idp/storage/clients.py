"""OAuth clients and the service policies they are bound to: the statements of
``clients`` and ``service_policies``."""

from __future__ import annotations

from typing import cast

from sqlalchemy import bindparam, select
from sqlmodel import Session

from idp.storage.models import Client, ServicePolicyRow

CLIENTS = Client.__table__  # type: ignore[attr-defined]
# A Core read, built once: /userinfo reads its client on every call.
_CLIENT_ROW = select(CLIENTS).where(CLIENTS.c.client_id == bindparam("client_id"))
_ALL_CLIENTS = select(Client).order_by(Client.created_at)  # type: ignore[arg-type]


def get_client(session: Session, client_id: str) -> Client | None:
    """The client as an ORM object (to change it, or to keep it beyond the session)."""
    return session.get(Client, client_id)


def detached_client(session: Session, client_id: str) -> Client | None:
    """The client as an ORM object that outlives the session (the client directory keeps it)."""
    client = session.get(Client, client_id)
    if client is not None:
        session.expunge(client)
    return client


def client_row(session: Session, client_id: str) -> Client | None:
    """The client as a read-only row: cheaper than the ORM object where nothing changes."""
    row = session.execute(_CLIENT_ROW, {"client_id": client_id}).first()
    return cast(Client, row) if row is not None else None


def all_clients(session: Session) -> list[Client]:
    return list(session.execute(_ALL_CLIENTS).scalars())


def add_client(session: Session, client: Client) -> None:
    session.add(client)


def remove_client(session: Session, client: Client) -> None:
    """Delete the client now (flushed), so that one of the same id can be added."""
    session.delete(client)
    session.flush()


def set_disabled(session: Session, client: Client) -> bool:
    """Disable the client; True if it was enabled until now."""
    if client.disabled:
        return False
    client.disabled = True
    session.add(client)
    session.flush()
    return True


def policy_row(session: Session, service_code: str) -> ServicePolicyRow | None:
    return session.get(ServicePolicyRow, service_code)


def save_policy_row(session: Session, row: ServicePolicyRow) -> None:
    session.add(row)
