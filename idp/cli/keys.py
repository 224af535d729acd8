"""``hoviyat keys``: token signing keys (JWKS) and their rotation.

A rotation step promotes the published ``next`` key to ``active`` and
publishes a fresh ``next``; the old active key is ``retired`` and stays in the
JWKS until the tokens it signed have expired. Relying parties cache the JWKS,
so a ``next`` key younger than that cache is not promoted unless ``--force``:
a key must be published before it signs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from idp.cli.database import read
from idp.cli.output import JsonOption, console, fail, print_json, print_table
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage.engine import Database
from idp.storage.models import TokenSigningKey
from idp.storage.token_keys import all_keys, next_key
from idp.tokens import SIGNING_ALGORITHMS
from idp.tokens.keyring import DEFAULT_ALGORITHM, rotate

keys_app = typer.Typer(help="Token signing keys: list and rotate (JWKS).", no_args_is_help=True)

# The JWKS is served with Cache-Control max-age=60 (idp.oauth.discovery).
JWKS_CACHE = timedelta(seconds=60)


_KEY_TIMES = ("created_at", "activated_at", "retired_at")


def key_summary(row: TokenSigningKey) -> dict[str, Any]:
    summary: dict[str, Any] = {"kid": row.kid, "alg": row.alg, "state": row.state}
    for name in _KEY_TIMES:
        moment = getattr(row, name)
        summary[name] = moment.isoformat() if moment else None
    return summary


@keys_app.command("list")
def list_command(json_output: bool = JsonOption) -> None:
    """Every signing key with its state (never the private half)."""
    summaries = read(lambda session: [key_summary(row) for row in all_keys(session)])
    if json_output:
        print_json(summaries)
        return
    print_table(
        "Token signing keys",
        ["kid", "alg", "state", "created", "activated", "retired"],
        [
            (s["kid"], s["alg"], s["state"], s["created_at"], s["activated_at"] or "-",
             s["retired_at"] or "-")
            for s in summaries
        ],
    )  # fmt: skip


@keys_app.command("rotate")
def rotate_command(
    alg: str = typer.Option(DEFAULT_ALGORITHM, "--alg", help="ES256, PS256 or RS256"),
    force: bool = typer.Option(
        False, "--force", help="promote a next key even if relying parties may not have it yet"
    ),
    json_output: bool = JsonOption,
) -> None:
    """Promote the published next key to active and publish a new next key."""
    if alg not in SIGNING_ALGORITHMS:
        fail(f"unsupported algorithm {alg!r}; use one of {', '.join(SIGNING_ALGORITHMS)}")
    settings = get_settings()
    secrets = load_secrets(settings.resolved_secrets_file)
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            upcoming = next_key(session, alg)
            if upcoming is not None and not force:
                age = datetime.now(UTC) - upcoming.created_at
                if age < JWKS_CACHE:
                    wait = int((JWKS_CACHE - age).total_seconds()) + 1
                    fail(
                        f"next key {upcoming.kid} was published {int(age.total_seconds())} s ago; "
                        f"relying parties cache the JWKS for {int(JWKS_CACHE.total_seconds())} s: "
                        f"retry in {wait} s or pass --force"
                    )
            result = rotate(session, secrets.key_encryption_key, alg)
    finally:
        database.dispose()
    if json_output:
        print_json({"alg": alg, **result})
        return
    console.print(f"published {result['published']} ({alg}, next)")
    if result["activated"]:
        console.print(f"activated {result['activated']}")
    if result["retired"]:
        console.print(f"retired   {result['retired']} (stays in the JWKS until its tokens expire)")
