"""``hoviyat clients initial-token``: initial access tokens for dynamic registration (RFC 7591 §3).

An administrator creates a token for a legal entity (its national identifier,
checked against the deeds registry) and a service policy that allows
``oidc.login``; it is printed once, to be handed to the agency, which
registers one client with it at ``/register`` before it expires. The creation
is audited with the entity (by its hash).
"""

from __future__ import annotations

import getpass

import typer

from idp.audit.log import append
from idp.cli.entities import checked_entity
from idp.cli.output import JsonOption, console, fail, print_json
from idp.oidc import rfc7591
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage.engine import Database

initial_token_app = typer.Typer(help="Initial access tokens for dynamic registration (RFC 7591).")


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


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
                created_by=_operator(),
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
                actor_id=_operator(),
                detail={"expires_at": row.expires_at.isoformat()},
            )
            append(session, event)
    except rfc7591.InitialTokenError as error:
        fail(str(error))
    finally:
        database.dispose()
    answer = {
        "initial_access_token": token,
        "service_code": service,
        "expires_at": row.expires_at.isoformat(),
        "registration_endpoint": settings.issuer.rstrip("/") + rfc7591.PATH,
    }
    if json_output:
        print_json(answer)
        return
    console.print(f"initial_access_token {token}  (shown once: hand it over now)")
    console.print(f"expires_at           {answer['expires_at']}")
    console.print(f"registration         {answer['registration_endpoint']}")
