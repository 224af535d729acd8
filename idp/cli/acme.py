"""``hoviyat acme eab``: external account binding keys for agencies' ACME clients.

An administrator creates a key for a legal entity (its national identifier,
checked against the deeds registry) and a service policy; the MAC key is
printed once, to be handed to the agency (certbot ``--eab-kid`` and
``--eab-hmac-key``). Creation and revocation are audited with the entity.
"""

from __future__ import annotations

import typer

from idp.acme import eab
from idp.audit.log import append
from idp.cli.database import read
from idp.cli.entities import checked_entity
from idp.cli.operator import cli_actor
from idp.cli.output import JsonOption, console, fail, print_json, print_table
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage import acme_eab
from idp.storage.engine import Database
from policies.service_policy import load_service_policies

acme_app = typer.Typer(help="The ACME server (RFC 8555).")
eab_app = typer.Typer(help="External account binding keys (RFC 8555 §7.3.4).")
acme_app.add_typer(eab_app, name="eab")


@eab_app.command("create")
def create(
    national_id: str = typer.Option(..., "--national-id", help="the legal entity's شناسه ملی"),
    service: str = typer.Option(..., "--service", help="service code of the entity's policy"),
    json_output: bool = JsonOption,
) -> None:
    """Create a key; its HMAC key is shown once and stored only encrypted."""
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    canonical, policies = checked_entity(settings, national_id, service)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            created, row = eab.create(
                session,
                secrets,
                national_id=canonical,
                service_code=service,
                created_by=cli_actor(),
            )
            event = eab.key_event(
                secrets, policies, row, "create", actor_type="administrator", actor_id=cli_actor()
            )
            append(session, event)
    finally:
        database.dispose()
    if json_output:
        print_json(created.to_json())
        return
    console.print(f"kid      {created.kid}")
    console.print(f"hmac_key {created.hmac_key}  (shown once: hand it over now)")


@eab_app.command("list")
def list_command(json_output: bool = JsonOption) -> None:
    """List keys (never their HMAC keys)."""
    rows = read(lambda session: [eab.summary(row) for row in acme_eab.list_all(session)])
    if json_output:
        print_json(rows)
        return
    print_table(
        "ACME EAB keys",
        ["kid", "national_id", "service", "status", "account", "created"],
        [
            (
                r["kid"],
                r["national_id"],
                r["service_code"],
                r["status"],
                r["account_id"] or "",
                r["created_at"],
            )
            for r in rows
        ],
    )


@eab_app.command("revoke")
def revoke(
    kid: str = typer.Argument(..., help="the key's kid"), json_output: bool = JsonOption
) -> None:
    """Revoke a key: unused, it can bind no account; bound, its account is revoked too."""
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    policies = load_service_policies(settings.policies_dir)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            row, account_id = eab.revoke(session, kid)
            event = eab.key_event(
                secrets,
                policies,
                row,
                "revoke",
                actor_type="administrator",
                actor_id=cli_actor(),
                detail={"account_id": account_id},
            )
            append(session, event)
    except eab.EabError as error:
        fail(str(error))
    finally:
        database.dispose()
    answer = {"kid": kid, "status": "revoked", "account_revoked": account_id}
    if json_output:
        print_json(answer)
        return
    console.print(f"revoked {kid}" + (f"; account {account_id} revoked" if account_id else ""))
