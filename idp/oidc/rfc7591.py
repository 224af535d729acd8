"""Dynamic client registration (RFC 7591) for agencies, with initial access tokens.

An administrator issues an initial access token (RFC 7591 §1.2, §3) for a
legal entity, named by its national identifier (valid, and active in the
deeds registry), and a loaded service policy that allows ``oidc.login``. The
token is shown once, stored as a keyed digest, expires, can be revoked while
unused (by its public id, the first digits of the digest), and registers one
client (:func:`idp.storage.registrations.consume`, a conditional UPDATE).
An administrator may instead trust a software statement issuer
(:mod:`idp.oidc.software_statement`): a statement it signed registers one
client for the entity and policy the issuer is bound to.

The agency then POSTs its metadata to ``/register``. The metadata is checked
by the same rules as an administrator's registration
(:func:`idp.oidc.registration.oidc_attributes`); the service policy and the
entity come from the token (or the statement's issuer), never from the request,
and a request that names a ``service_code`` or ``roles`` is refused, as is
metadata the policy forbids (:func:`policy_refusal`). Refusals are RFC 7591 §3.2.2
errors and change nothing: the token is spent only by a registration that
succeeds.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from idp.audit.log import AuditEvent, append, subject_hash
from idp.clients import ClientError, client_summary, create_client
from idp.entities import EntityRefused, active_entity
from idp.oauth.errors import OAuthError
from idp.oidc import outbound, software_statement
from idp.oidc.registration import SECRETLESS_METHODS, RegistrationError, oidc_attributes
from idp.oidc.software_statement import Statement
from idp.secrets import ServerSecrets
from idp.settings import Settings
from idp.storage import registrations as store
from idp.storage.models import Client
from idp.storage.registrations import InitialAccessToken, RegisteredClient
from idp.tracking import new_tracking_code
from policies.service_policy import ServicePolicy
from verifiers.registry import Registries

PATH = "/register"
INITIAL_TOKEN_PURPOSE = "dcr initial access token"  # noqa: S105
REGISTRATION_TOKEN_PURPOSE = "dcr registration access token"  # noqa: S105
EVENT_TYPE = "client_registration"
TOKEN_EVENT_TYPE = "dcr_initial_token"  # noqa: S105
DEFAULT_LIFETIME = 86_400
MAX_LIFETIME = 30 * 86_400
REQUIRED_OPERATION = "oidc.login"
# Members the client may not choose (the token decides them) or may not send (§3.1, RFC 7592 §2.2).
_FORBIDDEN = (
    "service_code",
    "roles",
    "registration_access_token",
    "registration_client_uri",
    "client_id_issued_at",
    "client_secret_expires_at",
)


class InitialTokenError(ValueError):
    """An initial access token cannot be issued as asked; ``str(e)`` says why."""


def digest(server_secrets: ServerSecrets, purpose: str, token: str) -> str:
    """The keyed digest a bearer token is stored as: a stolen table cannot test guesses."""
    return hmac.digest(server_secrets.derived_key(purpose), token.encode(), "sha256").hex()


def registration_client_uri(issuer: str, client_id: str) -> str:
    return f"{issuer.rstrip('/')}{PATH}/{client_id}"


def metadata(settings: Settings, _auth_methods: Sequence[str]) -> dict[str, Any]:
    """RFC 8414 §2: where clients register."""
    return {"registration_endpoint": settings.issuer.rstrip("/") + PATH}


# -- initial access tokens -------------------------------------------------------------


def check_request(
    registries: Registries, policies: dict[str, ServicePolicy], national_id: str, service_code: str
) -> str:
    """The canonical national identifier, if the entity and the service may get a token.

    Asks the deeds registry (raises RegistryUnavailable when it cannot answer)."""
    try:
        return active_entity(registries, policies, national_id, service_code, REQUIRED_OPERATION)
    except EntityRefused as error:
        raise InitialTokenError(str(error)) from None


def create_initial_token(
    session: Session,
    server_secrets: ServerSecrets,
    *,
    national_id: str,
    service_code: str,
    created_by: str,
    expires_in: int = DEFAULT_LIFETIME,
) -> tuple[str, InitialAccessToken]:
    """Store a token for an entity :func:`check_request` accepted; the token is returned once."""
    if not 60 <= expires_in <= MAX_LIFETIME:
        raise InitialTokenError(f"expires-in must be between 60 and {MAX_LIFETIME} seconds")
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = InitialAccessToken(
        token_digest=digest(server_secrets, INITIAL_TOKEN_PURPOSE, token),
        national_id=national_id,
        service_code=service_code,
        created_at=now,
        created_by=created_by[:128],
        expires_at=now + timedelta(seconds=expires_in),
    )
    store.add_initial_token(session, row)
    return token, row


def token_id(row: InitialAccessToken) -> str:
    """The token's public id, by which an administrator lists and revokes it."""
    return row.token_digest[: store.TOKEN_ID_LENGTH]


def token_summary(row: InitialAccessToken) -> dict[str, Any]:
    """A token as listed: never the token, which is not kept."""
    if row.revoked_at is not None:
        status = "revoked"
    elif row.used_at is not None:
        status = "used"
    elif row.expires_at <= datetime.now(UTC):
        status = "expired"
    else:
        status = "unused"
    return {
        "id": token_id(row),
        "national_id": row.national_id,
        "service_code": row.service_code,
        "status": status,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "expires_at": row.expires_at.isoformat(),
        "used_at": row.used_at.isoformat() if row.used_at else None,
        "client_id": row.client_id,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


class TokenNotFound(LookupError):
    """No initial access token has this id."""


def revoke_initial_token(session: Session, token_id_: str) -> InitialAccessToken:
    """Revoke an unused token: TokenNotFound, or InitialTokenError if used or revoked."""
    row = store.find_initial_token(session, token_id_)
    if row is None:
        raise TokenNotFound(token_id_)
    now = datetime.now(UTC)
    if not store.revoke_initial_token(session, row.token_digest, now):
        raise InitialTokenError("the initial access token is used or revoked already")
    session.refresh(row)
    return row


def audit_event(
    server_secrets: ServerSecrets,
    policies: dict[str, ServicePolicy],
    *,
    event_type: str,
    operation: str,
    national_id: str,
    service_code: str,
    actor_type: str,
    actor_id: str,
    detail: dict[str, Any],
) -> AuditEvent:
    """An entry naming the entity by its hash, never its identifier."""
    policy = policies.get(service_code)
    return AuditEvent(
        tracking_code=new_tracking_code(),
        event_type=event_type,
        actor_type=actor_type,
        actor_id=actor_id,
        service_code=service_code,
        legal_basis=policy.legal_basis if policy else None,
        operation=operation,
        subject_hash=subject_hash(server_secrets.subject_pepper, national_id),
        outcome="ok",
        detail=detail,
    )


# -- client metadata (§2) --------------------------------------------------------------


class ClientMetadata(BaseModel):
    """The members Hoviyat honours; others are ignored (§2: "MUST ignore")."""

    model_config = ConfigDict(extra="ignore", strict=True)

    redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, max_length=20)
    grant_types: list[str] = Field(default_factory=list, max_length=3)
    response_types: list[Literal["code"]] | None = Field(default=None, max_length=1)
    token_endpoint_auth_method: str = Field(default="client_secret_basic", max_length=64)
    id_token_signed_response_alg: str = Field(default="ES256", max_length=16)
    jwks: dict[str, Any] | None = None
    client_name: str | None = Field(default=None, min_length=1, max_length=200)
    sector_identifier_uri: str | None = Field(default=None, max_length=255)
    profile: Literal["fapi2"] | None = None
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    require_pushed_authorization_requests: bool = False
    dpop_bound_access_tokens: bool = False
    client_id: str | None = Field(default=None, max_length=64)
    client_secret: str | None = Field(default=None, max_length=200)


def invalid_metadata(description: str) -> OAuthError:
    return OAuthError("invalid_client_metadata", description)


def parse_document(body: bytes) -> dict[str, Any]:
    """The request's JSON object, or an ``invalid_client_metadata`` refusal (§3.2.2)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise invalid_metadata("the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise invalid_metadata("the body must be a JSON object")
    return document


def check_metadata(document: dict[str, Any]) -> ClientMetadata:
    """The members Hoviyat honours, or an ``invalid_client_metadata`` refusal."""
    chosen = sorted(set(_FORBIDDEN) & set(document))
    if chosen:
        raise invalid_metadata(f"{chosen} are not the client's to choose")
    try:
        return ClientMetadata.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise invalid_metadata(f"{where}: {first['msg']}") from None


def parse_metadata(body: bytes) -> tuple[ClientMetadata, dict[str, Any]]:
    """The metadata of an update (RFC 7592 §2.2), which takes no software statement."""
    document = parse_document(body)
    if "software_statement" in document:
        raise OAuthError(
            "unapproved_software_statement", "a software statement is accepted only at /register"
        )
    return check_metadata(document), document


def policy_refusal(policy: ServicePolicy | None, columns: dict[str, Any]) -> str | None:
    """Why the client's service policy forbids this metadata, or None.

    Every grant needs an operation the policy allows: the code flow ``oidc.login``,
    client credentials a back-office operation (a token a policy could not use is
    a token no one should hold)."""
    if policy is None:
        return "the service policy is no longer loaded"
    if not policy.allows(REQUIRED_OPERATION):
        return f"service policy {policy.service_code!r} does not allow {REQUIRED_OPERATION}"
    back_office = policy.operations - {REQUIRED_OPERATION}
    if "client_credentials" in columns["grant_types"] and not back_office:
        return (
            f"service policy {policy.service_code!r} allows no back-office operation, "
            "so no client_credentials grant"
        )
    return None


def check_outbound(
    meta: ClientMetadata, allow_http_loopback_sector: bool, allow_loopback: bool
) -> None:
    """The URLs Hoviyat will call for this client must not lead inside its network
    (:mod:`idp.oidc.outbound`); resolves names, so a blocking call."""
    targets = (
        (meta.backchannel_logout_uri, allow_loopback),
        (meta.sector_identifier_uri, allow_loopback or allow_http_loopback_sector),
    )
    for url, loopback in targets:
        if url is None:
            continue
        try:
            outbound.check_url(url, allow_loopback=loopback)
        except outbound.OutboundRefused as error:
            raise invalid_metadata(str(error)) from None


def attributes(
    meta: ClientMetadata, allow_http_loopback_sector: bool, allow_loopback: bool = False
) -> dict[str, Any]:
    """The Client columns, checked as an administrator's registration is, and the URLs
    Hoviyat will call checked against SSRF (a blocking call: names are resolved and a
    sector identifier is fetched, so run it in a worker thread)."""
    check_outbound(meta, allow_http_loopback_sector, allow_loopback)
    try:
        return oidc_attributes(
            redirect_uris=meta.redirect_uris,
            post_logout_redirect_uris=meta.post_logout_redirect_uris,
            grant_types=meta.grant_types,
            auth_method=meta.token_endpoint_auth_method,
            id_token_alg=meta.id_token_signed_response_alg,
            sector_identifier=meta.sector_identifier_uri,
            jwks=meta.jwks,
            allow_http_loopback_sector=allow_http_loopback_sector,
            require_pushed_authorization_requests=meta.require_pushed_authorization_requests,
            dpop_bound_access_tokens=meta.dpop_bound_access_tokens,
            profile=meta.profile,
            backchannel_logout_uri=meta.backchannel_logout_uri,
        )
    except RegistrationError as error:
        text = str(error)
        if text.startswith("redirect URI") or "needs at least one --redirect-uri" in text:
            raise OAuthError("invalid_redirect_uri", text) from None
        raise invalid_metadata(text) from None


def needs_secret(auth_method: str) -> bool:
    # The same rule as an administrator's registration: a key or a certificate is no secret.
    return auth_method not in SECRETLESS_METHODS


def client_information(client: Client, row: RegisteredClient, issuer: str) -> dict[str, Any]:
    """The client information response (§3.2.1, RFC 7592 §3) without the two tokens."""
    summary = client_summary(client)
    information: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(row.created_at.timestamp()),
        "registration_client_uri": registration_client_uri(issuer, client.client_id),
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "require_pushed_authorization_requests": summary["require_pushed_authorization_requests"],
        "dpop_bound_access_tokens": summary["dpop_bound_access_tokens"],
    }
    optional = {
        "jwks": client.jwks,
        "sector_identifier_uri": client.sector_identifier,
        "profile": client.profile,
        "backchannel_logout_uri": client.backchannel_logout_uri,
    }
    information.update({key: value for key, value in optional.items() if value is not None})
    if client.secret_digest is not None:
        # §3.2.1: required with a secret; 0, it does not expire.
        information["client_secret_expires_at"] = 0
    return information


def invalid_token(description: str) -> OAuthError:
    # RFC 6750 §3.1, as RFC 7591 §3 and RFC 7592 §2 ask of a bad bearer token.
    return OAuthError(
        "invalid_token",
        description,
        status=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _binding(
    session: Session,
    server_secrets: ServerSecrets,
    initial_token: str | None,
    statement: Statement | None,
    now: datetime,
) -> tuple[str, str, InitialAccessToken | None]:
    """The entity and policy the client is tied to: the initial token's or the statement
    issuer's (both must agree when both are presented); spends what was presented."""
    token = None
    if initial_token is not None:
        token = store.consume(
            session, digest(server_secrets, INITIAL_TOKEN_PURPOSE, initial_token), now
        )
        if token is None:
            raise invalid_token("the initial access token is unknown, expired or spent")
    if statement is not None:
        if token is not None and (token.national_id, token.service_code) != (
            statement.national_id,
            statement.service_code,
        ):
            raise software_statement.unapproved(
                "the statement's issuer is bound to another entity or policy than the token"
            )
        software_statement.spend(session, statement)
        return statement.national_id, statement.service_code, token
    if token is None:
        raise invalid_token("an initial access token or a software statement is required")
    return token.national_id, token.service_code, token


def register(
    session: Session,
    server_secrets: ServerSecrets,
    policies: dict[str, ServicePolicy],
    issuer: str,
    *,
    initial_token: str | None,
    meta: ClientMetadata,
    columns: dict[str, Any],
    statement: Statement | None = None,
) -> tuple[dict[str, Any], str]:
    """Spend the initial token or the statement's jti and create the client: the §3.2.1
    answer and the client id. The entity and policy never come from ``meta``."""
    now = datetime.now(UTC)
    national_id, service_code, token = _binding(
        session, server_secrets, initial_token, statement, now
    )
    refusal = policy_refusal(policies.get(service_code), columns)
    if refusal is not None:
        # The policy may also have been unloaded or narrowed since the token was issued.
        raise invalid_metadata(refusal)
    try:
        created = create_client(
            session,
            server_secrets.client_secret_key,
            name=meta.client_name or "dynamically registered client",
            service_code=service_code,
            with_secret=needs_secret(columns["token_endpoint_auth_method"]),
            **columns,
        )
    except ClientError as error:
        raise invalid_metadata(str(error)) from None
    client_id = created.client.client_id
    registration_token = secrets.token_urlsafe(32)
    row = RegisteredClient(
        client_id=client_id,
        national_id=national_id,
        registration_token_digest=digest(
            server_secrets, REGISTRATION_TOKEN_PURPOSE, registration_token
        ),
        created_at=now,
        updated_at=now,
    )
    session.flush()
    store.add_registered(session, row)
    if token is not None:
        store.record_client(session, token, client_id)
    detail: dict[str, Any] = {"client_id": client_id}
    if statement is not None:
        detail["software_statement_issuer"] = statement.issuer
    append(
        session,
        audit_event(
            server_secrets,
            policies,
            event_type=EVENT_TYPE,
            operation="register",
            national_id=national_id,
            service_code=service_code,
            actor_type="client",
            actor_id=client_id,
            detail=detail,
        ),
    )
    answer = client_information(created.client, row, issuer)
    answer["registration_access_token"] = registration_token
    if created.client_secret is not None:
        answer["client_secret"] = created.client_secret
    return answer, client_id
