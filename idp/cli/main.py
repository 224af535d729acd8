"""The ``hoviyat`` command: every administrator's and operator's entry point."""

from __future__ import annotations

import sys

import typer

from idp.cli.acme import acme_app
from idp.cli.attest import attest_app
from idp.cli.audit import audit_app
from idp.cli.ca import ca_app
from idp.cli.ca_status import register as register_ca_status
from idp.cli.clients import clients_app
from idp.cli.console import console_app
from idp.cli.dev import dev_app
from idp.cli.initial_tokens import initial_token_app
from idp.cli.keys import keys_app
from idp.cli.policies import policies_app
from idp.cli.reconcile import reconcile_command
from idp.cli.registry import registry_app
from idp.cli.setup import db_upgrade, init_command, serve_command
from idp.cli.statement_issuers import statement_issuer_app
from idp.private_files import restrict_umask
from idp.settings import get_settings
from idp.storage.availability import DATABASE_UNAVAILABLE

app = typer.Typer(
    name="hoviyat",
    help="Hoviyat (هویت): identity verification and PKI for e-government.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.")


@app.callback()
def _before_every_command() -> None:
    # Before anything is written: databases, keys, exports and reconciliation
    # outputs hold personal data and secrets (see idp.private_files).
    restrict_umask()


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Apply every pending migration."""
    db_upgrade(get_settings())


app.command("init")(init_command)
app.command("serve")(serve_command)
app.add_typer(db_app, name="db")
app.add_typer(clients_app, name="clients")
clients_app.add_typer(initial_token_app, name="initial-token")
clients_app.add_typer(statement_issuer_app, name="statement-issuer")
app.add_typer(policies_app, name="policies")
app.add_typer(registry_app, name="registry")
app.add_typer(ca_app, name="ca")
app.add_typer(audit_app, name="audit")
app.add_typer(dev_app, name="dev")
app.add_typer(keys_app, name="keys")
app.add_typer(attest_app, name="attest")
app.add_typer(acme_app, name="acme")
app.add_typer(console_app, name="console")
app.command("reconcile")(reconcile_command)
register_ca_status(ca_app)


def main() -> None:
    """The console script: a database that cannot be reached is one line, not a traceback."""
    try:
        app()
    except DATABASE_UNAVAILABLE as error:
        sys.stderr.write(
            f"hoviyat: error: the database cannot be reached ({type(error).__name__}); "
            "check HOVIYAT_DATABASE_URL and that the database is running\n"
        )
        sys.exit(1)
