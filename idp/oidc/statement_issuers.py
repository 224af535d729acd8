"""Trusted software statement issuers: what ``hoviyat clients statement-issuer`` and
``/v1/clients/statement-issuers`` both do (RFC 7591 §2.3).

An administrator trusts an issuer for one legal entity (its national
identifier, active in the deeds registry) and one service policy that allows
``oidc.login``: the same check as an initial access token
(:func:`idp.oidc.rfc7591.check_request`). Its public keys are checked when
added (:func:`idp.oidc.software_statement.check_issuer_jwks`). Revoking an
issuer stops its statements at once; clients it registered stay, as clients
registered with a spent initial token do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from idp.audit.log import AuditEvent
from idp.oidc import rfc7591
from idp.oidc.software_statement import IssuerKeysError, check_issuer_jwks
from idp.secrets import ServerSecrets
from idp.storage import statement_issuers as store
from idp.storage.statement_issuers import StatementIssuer
from policies.service_policy import ServicePolicy

EVENT_TYPE = "dcr_statement_issuer"
MAX_ISSUER_LENGTH = 255


class IssuerError(ValueError):
    """The issuer cannot be trusted (or revoked) as asked; ``str(e)`` says why."""


class IssuerNotFound(LookupError):
    """No trusted issuer has this name."""


def check_issuer_name(issuer: str) -> str:
    if not 0 < len(issuer) <= MAX_ISSUER_LENGTH or not issuer.isprintable() or " " in issuer:
        raise IssuerError(
            f"the issuer must be 1 to {MAX_ISSUER_LENGTH} printable characters without spaces"
        )
    return issuer


def add(
    session: Session,
    *,
    issuer: str,
    jwks: Any,
    national_id: str,
    service_code: str,
    created_by: str,
) -> StatementIssuer:
    """Trust ``issuer`` for an entity :func:`rfc7591.check_request` accepted."""
    check_issuer_name(issuer)
    try:
        keys = check_issuer_jwks(jwks)
    except IssuerKeysError as error:
        raise IssuerError(str(error)) from None
    if store.get(session, issuer) is not None:
        raise IssuerError(f"issuer {issuer!r} is known already (revoked issuers stay known)")
    row = StatementIssuer(
        issuer=issuer,
        jwks=keys,
        national_id=national_id,
        service_code=service_code,
        created_at=datetime.now(UTC),
        created_by=created_by[:128],
    )
    store.add(session, row)
    return row


def revoke(session: Session, issuer: str) -> StatementIssuer:
    """Stop trusting ``issuer``: IssuerNotFound, or IssuerError if revoked already."""
    row = store.get(session, issuer)
    if row is None:
        raise IssuerNotFound(issuer)
    if not store.revoke(session, issuer, datetime.now(UTC)):
        raise IssuerError(f"issuer {issuer!r} is revoked already")
    session.refresh(row)
    return row


def summary(row: StatementIssuer) -> dict[str, Any]:
    return {
        "issuer": row.issuer,
        "national_id": row.national_id,
        "service_code": row.service_code,
        "key_ids": [key.get("kid") for key in row.jwks.get("keys", [])],
        "status": "revoked" if row.revoked_at else "trusted",
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def audit_event(
    server_secrets: ServerSecrets,
    policies: dict[str, ServicePolicy],
    row: StatementIssuer,
    operation: str,
    *,
    actor_id: str,
) -> AuditEvent:
    """The entry of an issuer trusted or revoked, naming the entity by its hash."""
    return rfc7591.audit_event(
        server_secrets,
        policies,
        event_type=EVENT_TYPE,
        operation=operation,
        national_id=row.national_id,
        service_code=row.service_code,
        actor_type="administrator",
        actor_id=actor_id,
        detail={"issuer": row.issuer},
    )
