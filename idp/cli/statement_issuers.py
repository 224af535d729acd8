"""``hoviyat clients statement-issuer``: issuers of software statements an administrator trusts.

A statement signed by a trusted issuer registers one client at ``/register``
without an initial access token (RFC 7591 §2.3), for the legal entity (its
national identifier, checked against the deeds registry) and the service
policy the issuer is bound to here. Adding and revoking are audited with the
entity (by its hash); the same service answers ``/v1/clients/statement-issuers``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from idp.audit.log import append
from idp.cli.entities import checked_entity
from idp.cli.operator import cli_actor
from idp.cli.output import JsonOption, console, fail, print_json
from idp.oidc import rfc7591, statement_issuers
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage import statement_issuers as store
from idp.storage.engine import Database
from policies.service_policy import load_service_policies

statement_issuer_app = typer.Typer(
    help="Trusted issuers of software statements for dynamic registration (RFC 7591 §2.3)."
)


def _read_jwks(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"cannot read the JWKS file {path}: {exc}")


def _show(summary: dict[str, Any], json_output: bool) -> None:
    if json_output:
        print_json(summary)
        return
    for name, value in summary.items():
        console.print(f"{name:<13} {value}")


@statement_issuer_app.command("add")
def add(
    issuer: str = typer.Option(..., "--issuer", help="the iss of its statements"),
    jwks_file: Path = typer.Option(..., "--jwks-file", help="its public keys (a JWKS)"),
    national_id: str = typer.Option(..., "--national-id", help="the legal entity's شناسه ملی"),
    service: str = typer.Option(..., "--service", help="service code of its clients' policy"),
    json_output: bool = JsonOption,
) -> None:
    """Trust an issuer's statements for a legal entity and a service policy."""
    settings = get_settings()
    jwks = _read_jwks(jwks_file)
    secrets = load_secrets(settings.resolved_secrets_file)
    canonical, policies = checked_entity(settings, national_id, service, rfc7591.REQUIRED_OPERATION)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            row = statement_issuers.add(
                session,
                issuer=issuer,
                jwks=jwks,
                national_id=canonical,
                service_code=service,
                created_by=cli_actor(),
            )
            event = statement_issuers.audit_event(
                secrets, policies, row, "add", actor_id=cli_actor()
            )
            append(session, event)
            summary = statement_issuers.summary(row)
    except statement_issuers.IssuerError as error:
        fail(str(error))
    finally:
        database.dispose()
    _show(summary, json_output)


@statement_issuer_app.command("list")
def list_command(json_output: bool = JsonOption) -> None:
    """Every issuer, trusted or revoked."""
    settings = get_settings()
    database = Database(settings.resolved_database_url)
    try:
        with database.read() as session:
            rows = [statement_issuers.summary(row) for row in store.list_all(session)]
    finally:
        database.dispose()
    if json_output:
        print_json(rows)
        return
    for row in rows:
        console.print(f"{row['status']:<8} {row['service_code']:<24} {row['issuer']}")


@statement_issuer_app.command("revoke")
def revoke(
    issuer: str = typer.Option(..., "--issuer", help="the issuer to stop trusting"),
    json_output: bool = JsonOption,
) -> None:
    """Stop trusting an issuer: its statements are refused from now on."""
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    policies = load_service_policies(settings.policies_dir)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            row = statement_issuers.revoke(session, issuer)
            event = statement_issuers.audit_event(
                secrets, policies, row, "revoke", actor_id=cli_actor()
            )
            append(session, event)
            summary = statement_issuers.summary(row)
    except statement_issuers.IssuerNotFound:
        fail(f"no statement issuer {issuer!r}")
    except statement_issuers.IssuerError as error:
        fail(str(error))
    finally:
        database.dispose()
    _show(summary, json_output)
