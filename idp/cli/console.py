"""``hoviyat console``: the console's first administrator (issue 15)."""

from __future__ import annotations

import typer

from idp.cli.operator import cli_actor
from idp.cli.output import JsonOption, console, fail, print_json
from idp.console.bootstrap import BootstrapRefused, grant_first_admin
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage.engine import Database
from verifiers.identifiers import IdentifierError, validate_national_code

console_app = typer.Typer(help="The console at /console: its first administrator.")


@console_app.command("grant-admin")
def grant_admin(
    national_code: str = typer.Option(
        ..., "--national-code", help="the person's کد ملی (Persian or ASCII digits)"
    ),
    json_output: bool = JsonOption,
) -> None:
    """Make the first console administrator; refused once one exists (the console's
    two-person approval grants every later role)."""
    try:
        code = validate_national_code(national_code)
    except IdentifierError as error:
        fail(f"--national-code: {error}")
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            tracking_code = grant_first_admin(session, secrets.subject_pepper, code, cli_actor())
    except BootstrapRefused as error:
        fail(str(error))
    finally:
        database.dispose()
    answer = {
        "role": "admin",
        "national_code": "*******" + code[-3:],
        "tracking_code": tracking_code,
    }
    if json_output:
        print_json(answer)
        return
    console.print(
        f"console administrator granted to the holder of national code …{code[-3:]} "
        f"(tracking code {tracking_code}); sign in at {settings.issuer.rstrip('/')}/console"
    )
