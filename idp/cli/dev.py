"""``hoviyat dev``: development helpers; refused in production mode."""

from __future__ import annotations

import typer

from idp.cli.output import JsonOption, fail, print_json, print_table
from idp.settings import get_settings
from idp.storage.engine import Database
from idp.storage.sms_outbox import recent_messages

dev_app = typer.Typer(help="Development helpers (the SMS outbox).", no_args_is_help=True)


@dev_app.callback()
def dev_group() -> None:
    """Development helpers; a group even with one command, so ``hoviyat dev outbox`` reads right."""


@dev_app.command("outbox")
def outbox_command(
    last: bool = typer.Option(False, "--last", help="only the latest message"),
    limit: int = typer.Option(10, "--limit", min=1, max=1000, help="how many messages"),
    as_json: bool = JsonOption,
) -> None:
    """Text messages the development SMS sender kept instead of sending (one-time codes)."""
    settings = get_settings()
    if settings.is_production:
        fail("the development outbox does not exist in production mode (HOVIYAT_MODE=production)")
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            rows = recent_messages(session, 1 if last else limit)
    finally:
        database.dispose()
    messages = [
        {"id": row.id, "mobile": row.mobile, "text": row.body, "created_at": row.created_at}
        for row in rows
    ]
    if last and not messages:
        fail("the outbox is empty: no one-time code has been sent yet")
    if as_json:
        print_json(messages[0] if last else messages)
        return
    print_table(
        "Development SMS outbox",
        ("id", "mobile", "sent", "text"),
        [(m["id"], m["mobile"], m["created_at"], m["text"]) for m in messages],
    )
