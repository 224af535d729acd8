"""``hoviyat clients``: OAuth clients bound to service policies."""

from __future__ import annotations

from pathlib import Path

import typer

from idp.cli.database import read
from idp.cli.output import JsonOption, console, fail, print_json, print_table
from idp.clients import ClientError, client_summary, create_client, list_clients
from idp.oidc.registration import SECRETLESS_METHODS, RegistrationError, oidc_attributes
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage.engine import Database

clients_app = typer.Typer(help="OAuth clients (agency apps and back-office systems).")


def _database() -> Database:
    return Database(get_settings().resolved_database_url)


@clients_app.command("create")
def create(
    name: str = typer.Option(..., help="a name people recognise"),
    service: str = typer.Option(..., "--service", help="service code of the client's policy"),
    role: list[str] = typer.Option([], "--role", help="admin, ca_operator, auditor..."),
    redirect_uri: list[str] = typer.Option([], "--redirect-uri", help="OIDC: exact, repeatable"),
    post_logout_uri: list[str] = typer.Option([], "--post-logout-redirect-uri", help="OIDC"),
    grant_type: list[str] = typer.Option([], "--grant-type", help="default from redirect URIs"),
    auth_method: str = typer.Option("client_secret_basic", "--auth-method"),
    id_token_alg: str = typer.Option("ES256", "--id-token-alg", help="ES256, PS256 or RS256"),
    sector_identifier: str | None = typer.Option(None, "--sector-identifier"),
    jwks_file: Path | None = typer.Option(None, "--jwks-file", help="private_key_jwt public keys"),
    require_par: bool = typer.Option(
        False, "--require-par", help="OIDC: authorization requests only through /par (RFC 9126)"
    ),
    require_signed: bool = typer.Option(
        False,
        "--require-signed-request-object",
        help="OIDC: authorization requests only as signed request objects (RFC 9101)",
    ),
    dpop_bound: bool = typer.Option(
        False, "--dpop-bound", help="access tokens only DPoP-bound (RFC 9449 §5.2)"
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="fapi2: held to the FAPI 2.0 Security Profile"
    ),
    backchannel_logout_uri: str | None = typer.Option(
        None, "--backchannel-logout-uri", help="OIDC: where logout tokens are POSTed"
    ),
    tls_subject_dn: str | None = typer.Option(
        None,
        "--tls-client-auth-subject-dn",
        help="tls_client_auth: the exact subject DN (RFC 4514) of its certificate (RFC 8705)",
    ),
    tls_bound: bool = typer.Option(
        False,
        "--tls-certificate-bound",
        help="access tokens bound to its TLS client certificate (RFC 8705 §3)",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Create a client; its secret is shown once and stored only as a keyed digest."""
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    database = _database()
    try:
        with database.session() as session:
            oidc = oidc_attributes(
                redirect_uris=redirect_uri, post_logout_redirect_uris=post_logout_uri,
                grant_types=grant_type, auth_method=auth_method, id_token_alg=id_token_alg,
                sector_identifier=sector_identifier, jwks_file=jwks_file,
                allow_http_loopback_sector=settings.sector_identifier_allow_http_loopback,
                require_pushed_authorization_requests=require_par,
                require_signed_request_object=require_signed,
                dpop_bound_access_tokens=dpop_bound, profile=profile,
                backchannel_logout_uri=backchannel_logout_uri,
                tls_client_auth_subject_dn=tls_subject_dn,
                tls_client_certificate_bound_access_tokens=tls_bound,
            )  # fmt: skip
            created = create_client(
                session, secrets.client_secret_key, name=name, service_code=service, roles=role,
                with_secret=auth_method not in SECRETLESS_METHODS, **oidc,
            )  # fmt: skip
            summary = client_summary(created.client)
    except (ClientError, RegistrationError) as error:
        fail(str(error))
    finally:
        database.dispose()
    summary["client_secret"] = created.client_secret
    if json_output:
        print_json(summary)
        return
    console.print(f"client_id     {summary['client_id']}")
    console.print(f"client_secret {summary['client_secret']}  (shown once: store it now)")


@clients_app.command("list")
def list_command(json_output: bool = JsonOption) -> None:
    """List clients (never their secrets)."""
    rows = read(lambda session: [client_summary(c) for c in list_clients(session)])
    if json_output:
        print_json(rows)
        return
    print_table(
        "Clients",
        ["client_id", "name", "service", "roles"],
        [(r["client_id"], r["name"], r["service_code"], ",".join(r["roles"])) for r in rows],
    )
