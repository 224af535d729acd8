"""``hoviyat policies``: the service policies (Article 2 service cards) in force."""

from __future__ import annotations

import typer

from idp.cli.output import JsonOption, fail, print_json, print_table
from idp.settings import get_settings
from policies.service_policy import PolicyError, load_service_policies

policies_app = typer.Typer(help="Service policies: who may ask which facts, on which legal basis.")


@policies_app.command("list")
def list_command(json_output: bool = JsonOption) -> None:
    """List the loaded service policies."""
    try:
        policies = load_service_policies(get_settings().policies_dir)
    except PolicyError as error:
        fail(str(error))
    if json_output:
        print_json([policy.to_document() for policy in policies.values()])
        return
    print_table(
        "Service policies",
        ["service_code", "title", "type", "operations"],
        [
            (p.service_code, p.title_en, p.service_type, ", ".join(sorted(p.operations)))
            for p in policies.values()
        ],
    )
