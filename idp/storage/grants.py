"""Grants and the tokens hanging off them: the statements of ``oidc_grants``,
``oidc_authorization_codes``, ``oidc_refresh_tokens`` and ``oidc_client_assertions``.

The token endpoint's hot paths use Core statements built once and given their
values at execution: ORM identity-map bookkeeping, and statements built per
request, cost the shared writer more than running them did. Single use is the
database's: a conditional ``UPDATE ... WHERE <spent> IS NULL`` and its row
count, so two workers racing on one value see exactly one winner.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from idp.storage.oidc import (
    GrantRecord,
    OidcAuthorizationCode,
    OidcClientAssertion,
    OidcGrant,
    OidcRefreshToken,
)

GRANTS = OidcGrant.__table__  # type: ignore[attr-defined]
CODES = OidcAuthorizationCode.__table__  # type: ignore[attr-defined]
REFRESH_TOKENS = OidcRefreshToken.__table__  # type: ignore[attr-defined]


def _with_grant(table: Any, key: Any) -> Any:
    """One query for a code or refresh token and its grant: the grants run in the
    shared writer, whose time every other request waits for."""
    own = [column.label(f"own_{column.name}") for column in table.c]
    return (
        select(GRANTS, *own)
        .join_from(table, GRANTS, GRANTS.c.id == table.c.grant_id)
        .where(key == bindparam("value"))
    )


_CODE_WITH_GRANT = _with_grant(CODES, CODES.c.code_hash)
_REFRESH_WITH_GRANT = _with_grant(REFRESH_TOKENS, REFRESH_TOKENS.c.token_hash)
_GRANT_BY_ID = select(GRANTS).where(GRANTS.c.id == bindparam("grant_id"))
_INSERT_GRANT = insert(GRANTS)
_INSERT_CODE = insert(CODES)
_INSERT_REFRESH_TOKEN = insert(REFRESH_TOKENS)
# Single use (RFC 6749 §4.1.2, RFC 9700 §4.14.2): the row count tells the one winner.
_SPEND_CODE = (
    update(CODES)
    .where(CODES.c.code_hash == bindparam("spent_code_hash"), CODES.c.redeemed_at.is_(None))
    .values(redeemed_at=bindparam("now", type_=CODES.c.redeemed_at.type))
)
_ROTATE_REFRESH_TOKEN = (
    update(REFRESH_TOKENS)
    .where(
        REFRESH_TOKENS.c.token_hash == bindparam("rotated_token_hash"),
        REFRESH_TOKENS.c.rotated_at.is_(None),
    )
    .values(rotated_at=bindparam("now", type_=REFRESH_TOKENS.c.rotated_at.type))
)
_ROTATED_AT = select(REFRESH_TOKENS.c.rotated_at).where(
    REFRESH_TOKENS.c.token_hash == bindparam("token_hash")
)


def _load_with_grant(
    session: Session, statement: Any, table: Any, value: str
) -> tuple[Any, GrantRecord] | None:
    row = session.execute(statement, {"value": value}).first()
    if row is None:
        return None
    own = SimpleNamespace(**{column.name: getattr(row, f"own_{column.name}") for column in table.c})
    return own, cast(GrantRecord, row)


def code_with_grant(session: Session, code_hash: str) -> tuple[Any, GrantRecord] | None:
    """The ``oidc_authorization_codes`` row of ``code_hash`` and its grant, in one query."""
    return _load_with_grant(session, _CODE_WITH_GRANT, CODES, code_hash)


def refresh_token_with_grant(session: Session, token_hash: str) -> tuple[Any, GrantRecord] | None:
    """The ``oidc_refresh_tokens`` row of ``token_hash`` and its grant, in one query."""
    return _load_with_grant(session, _REFRESH_WITH_GRANT, REFRESH_TOKENS, token_hash)


def load_grant(session: Session, grant_id: str) -> GrantRecord | None:
    row = session.execute(_GRANT_BY_ID, {"grant_id": grant_id}).first()
    return cast(GrantRecord, row) if row is not None else None


def refresh_token(session: Session, token_hash: str) -> OidcRefreshToken | None:
    return session.get(OidcRefreshToken, token_hash)


def insert_grant(session: Session, values: dict[str, Any]) -> GrantRecord:
    """Store a grant from plain values (building the model cost more than its insert)."""
    session.execute(_INSERT_GRANT, values)
    return cast(GrantRecord, SimpleNamespace(**values))


def insert_code(session: Session, values: dict[str, Any]) -> None:
    session.execute(_INSERT_CODE, values)


def insert_refresh_token(session: Session, values: dict[str, Any]) -> None:
    session.execute(_INSERT_REFRESH_TOKEN, values)


def spend_code(session: Session, code_hash: str, now: datetime) -> bool:
    """Mark the code redeemed; True for the one caller that did."""
    result = session.execute(_SPEND_CODE, {"spent_code_hash": code_hash, "now": now})
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def rotate_refresh_token(session: Session, token_hash: str, now: datetime) -> bool:
    """Mark the refresh token rotated; True for the one caller that did."""
    result = session.execute(_ROTATE_REFRESH_TOKEN, {"rotated_token_hash": token_hash, "now": now})
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def rotated_at(session: Session, token_hash: str) -> datetime | None:
    """When the refresh token was first used, read afresh (after a lost rotation race)."""
    moment: datetime | None = session.execute(_ROTATED_AT, {"token_hash": token_hash}).scalar_one()
    return moment


def revoke_grant(session: Session, grant_id: str, reason: str) -> bool:
    """Revoke a grant once; True if this call revoked it."""
    result = session.execute(
        update(OidcGrant)
        .where(OidcGrant.id == grant_id)  # type: ignore[arg-type]
        .where(OidcGrant.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def spend_assertion(session: Session, client_id: str, jti: str, expires_at: datetime) -> bool:
    """Remember a private_key_jwt assertion's ``jti`` until it expires (RFC 7523 §3 item 7).

    False if it was seen before. Expired entries are dropped on the way.
    """
    session.execute(
        delete(OidcClientAssertion).where(
            OidcClientAssertion.expires_at < datetime.now(UTC)  # type: ignore[arg-type]
        )
    )
    try:
        with session.begin_nested():
            session.add(OidcClientAssertion(client_id=client_id, jti=jti, expires_at=expires_at))
    except IntegrityError:
        return False
    return True
