"""The ``hoviyat`` command: every administrator's and operator's entry point."""

from __future__ import annotations

import typer

from idp.cli.clients import clients_app
from idp.cli.policies import policies_app
from idp.cli.setup import db_upgrade, init_command, serve_command
from idp.settings import get_settings

app = typer.Typer(
    name="hoviyat",
    help="Hoviyat (هویت): identity verification and PKI for e-government.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.")


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Apply every pending migration."""
    db_upgrade(get_settings())


app.command("init")(init_command)
app.command("serve")(serve_command)
app.add_typer(db_app, name="db")
app.add_typer(clients_app, name="clients")
app.add_typer(policies_app, name="policies")
