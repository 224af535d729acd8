"""``hoviyat clients initial-token``: initial access tokens for dynamic registration (RFC 7591 §3).

An administrator creates a token for a legal entity (its national identifier,
checked against the deeds registry) and a service policy that allows
``oidc.login``; it is printed once, to be handed to the agency, which
registers one client with it at ``/register`` before it expires. ``list``
shows every token by its public id (never the token), ``revoke`` withdraws an
unused one. Creation and revocation are audited with the entity (by its hash);
``/v1/clients/initial-tokens`` does the same over HTTP.
"""

from __future__ import annotations

import typer

from idp.audit.log import append
from idp.cli.entities import checked_entity
from idp.cli.operator import cli_actor
from idp.cli.output import JsonOption, console, fail, print_json
from idp.oidc import rfc7591
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage import registrations
from idp.storage.engine import Database
from policies.service_policy import load_service_policies

initial_token_app = typer.Typer(help="Initial access tokens for dynamic registration (RFC 7591).")


@initial_token_app.command("create")
def create(
    national_id: str = typer.Option(..., "--national-id", help="the legal entity's شناسه ملی"),
    service: str = typer.Option(..., "--service", help="service code of the client's policy"),
    expires_in: int = typer.Option(rfc7591.DEFAULT_LIFETIME, "--expires-in", help="seconds"),
    json_output: bool = JsonOption,
) -> None:
    """Create a single-use token; it is shown once and stored only as a keyed digest."""
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    canonical, policies = checked_entity(settings, national_id, service, rfc7591.REQUIRED_OPERATION)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            token, row = rfc7591.create_initial_token(
                session,
                secrets,
                national_id=canonical,
                service_code=service,
                created_by=cli_actor(),
                expires_in=expires_in,
            )
            event = rfc7591.audit_event(
                secrets,
                policies,
                event_type=rfc7591.TOKEN_EVENT_TYPE,
                operation="create",
                national_id=canonical,
                service_code=service,
                actor_type="administrator",
                actor_id=cli_actor(),
                detail={"expires_at": row.expires_at.isoformat()},
            )
            append(session, event)
    except rfc7591.InitialTokenError as error:
        fail(str(error))
    finally:
        database.dispose()
    answer = {
        "initial_access_token": token,
        "id": rfc7591.token_id(row),
        "service_code": service,
        "expires_at": row.expires_at.isoformat(),
        "registration_endpoint": settings.issuer.rstrip("/") + rfc7591.PATH,
    }
    if json_output:
        print_json(answer)
        return
    console.print(f"initial_access_token {token}  (shown once: hand it over now)")
    console.print(f"id                   {rfc7591.token_id(row)}  (to list or revoke it)")
    console.print(f"expires_at           {answer['expires_at']}")
    console.print(f"registration         {answer['registration_endpoint']}")


@initial_token_app.command("list")
def list_command(json_output: bool = JsonOption) -> None:
    """Every token's state and public id, never the token (only its digest is kept)."""
    settings = get_settings()
    database = Database(settings.resolved_database_url)
    try:
        with database.read() as session:
            rows = [
                rfc7591.token_summary(row) for row in registrations.list_initial_tokens(session)
            ]
    finally:
        database.dispose()
    if json_output:
        print_json(rows)
        return
    for row in rows:
        console.print(
            f"{row['id']}  {row['status']:<8} {row['service_code']:<24} {row['expires_at']}"
        )


@initial_token_app.command("revoke")
def revoke(
    token_id: str = typer.Argument(..., help="the token's id, from 'list'"),
    json_output: bool = JsonOption,
) -> None:
    """Revoke an unused token: it registers no client from now on."""
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    policies = load_service_policies(settings.policies_dir)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            row = rfc7591.revoke_initial_token(session, token_id)
            event = rfc7591.audit_event(
                secrets,
                policies,
                event_type=rfc7591.TOKEN_EVENT_TYPE,
                operation="revoke",
                national_id=row.national_id,
                service_code=row.service_code,
                actor_type="administrator",
                actor_id=cli_actor(),
                detail={"id": token_id},
            )
            append(session, event)
            summary = rfc7591.token_summary(row)
    except rfc7591.TokenNotFound:
        fail(f"no initial access token {token_id!r}")
    except rfc7591.InitialTokenError as error:
        fail(str(error))
    finally:
        database.dispose()
    if json_output:
        print_json(summary)
        return
    console.print(f"revoked {token_id}")
