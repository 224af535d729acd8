"""``hoviyat init``, ``db upgrade`` and ``serve``: from nothing to a running service."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from idp.cli.output import console, fail, print_json
from idp.clients import create_client, sync_policies
from idp.console.client import ensure_console_client
from idp.logging import configure_logging
from idp.private_files import private_folder, tighten_sqlite, tighten_tree
from idp.secrets import ensure_secrets
from idp.settings import Settings, get_settings
from idp.storage.clients import get_client, remove_client
from idp.storage.engine import Database
from idp.storage.migrate import upgrade
from idp.tokens.keyring import ensure_signing_keys
from policies.service_policy import load_service_policies

DEMO_CLIENTS: tuple[dict[str, Any], ...] = (
    {"client_id": "demo-bank", "name": "Demo bank back office", "service_code": "demo-bank-kyc"},
    {
        "client_id": "demo-registry",
        "name": "Demo match-only registry",
        "service_code": "demo-match-only",
    },
    {
        "client_id": "demo-portal",
        "name": "Demo tax portal (OpenID Connect)",
        "service_code": "demo-tax-portal",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["http://127.0.0.1:9000/callback"],
        "post_logout_redirect_uris": ["http://127.0.0.1:9000/"],
    },
    {
        "client_id": "demo-admin",
        "name": "Demo administrator",
        "service_code": "hoviyat-admin",
        "roles": ["admin", "ca_operator", "auditor"],
    },
)
DEFAULT_PERSONS, DEFAULT_ENTITIES, DEFAULT_SEED = 10_000, 1_000, 1


def db_upgrade(settings: Settings) -> None:
    private_folder(settings.data_dir)
    upgrade(settings.resolved_database_url)
    tighten_sqlite(settings.resolved_database_url)


def _demo_credentials_file(settings: Settings) -> Path:
    return settings.data_dir / "demo-clients.json"


def _ensure_demo_clients(settings: Settings, database: Database, key: bytes) -> list[dict]:
    """Development only: the demo secrets are kept in a 0600 file so re-runs can show them."""
    path = _demo_credentials_file(settings)
    saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    shown = []
    with database.session() as session:
        for spec in DEMO_CLIENTS:
            client_id = str(spec["client_id"])
            existing = get_client(session, client_id)
            if existing is None or client_id not in saved:
                if existing is not None:
                    remove_client(session, existing)
                created = create_client(session, key, **spec)
                saved[client_id] = created.client_secret or ""
            shown.append(
                {
                    "client_id": client_id,
                    "client_secret": saved[client_id],
                    "service_code": spec["service_code"],
                }
            )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(saved, handle)
    return shown


def initialise(settings: Settings, *, seed_registry: bool = True) -> dict[str, Any]:
    """Idempotent: creates only what is missing and reports what exists."""
    report: dict[str, Any] = {"data_dir": str(settings.data_dir.resolve())}
    private_folder(settings.data_dir)
    secrets = ensure_secrets(settings.resolved_secrets_file)
    db_upgrade(settings)
    report["database"] = settings.resolved_database_url.split("@")[-1]
    registry_path = settings.resolved_registry_path
    if settings.registry_adapter == "synthetic" and seed_registry and not registry_path.exists():
        from verifiers.registry.synthetic import seed

        seed(registry_path, persons=DEFAULT_PERSONS, entities=DEFAULT_ENTITIES, seed=DEFAULT_SEED)
        report["registry_seeded"] = {"persons": DEFAULT_PERSONS, "entities": DEFAULT_ENTITIES}
    report["registry"] = settings.registry_adapter
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as session:
            report["policies_changed"] = sync_policies(
                session, load_service_policies(settings.policies_dir)
            )
            report["signing_keys_created"] = ensure_signing_keys(
                session, secrets.key_encryption_key
            )
            # The console signs in through our own OIDC login (issue 15).
            report["console_client_changed"] = ensure_console_client(session, settings, secrets)
        if not settings.is_production:
            report["demo_clients"] = _ensure_demo_clients(
                settings, database, secrets.client_secret_key
            )
    finally:
        database.dispose()
    # What this run made, and what an earlier version left readable by all.
    tighten_tree(settings.data_dir)
    tighten_sqlite(settings.resolved_database_url)
    return report


def init_command(json_output: bool = typer.Option(False, "--json", help="print only JSON")) -> None:
    """Create the embedded default (idempotent): database, registry, keys, demo clients."""
    report = initialise(get_settings())
    if json_output:
        print_json(report)
        return
    console.print(f"[bold]Hoviyat initialised[/] in {report['data_dir']}")
    for client in report.get("demo_clients", []):
        console.print(
            f"  demo client [cyan]{client['client_id']}[/] ({client['service_code']}): "
            f"secret [yellow]{client['client_secret']}[/]",
            soft_wrap=True,
        )


def serve_command(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="TCP port"),
    workers: int = typer.Option(1, min=1, help="worker processes"),
) -> None:
    """Serve the API, OpenID Connect provider and pages with uvicorn."""
    from idp.http.connection_guard import ConnectionLimits
    from idp.serving import ServeOptions, WorkersFailed, serve

    settings = get_settings()
    # The supervisor's own errors (a port in use) go to the same JSON log.
    configure_logging(settings.log_level)
    tighten_tree(settings.data_dir)
    tighten_sqlite(settings.resolved_database_url)
    if workers > 1:
        metrics_dir = private_folder(settings.data_dir / "metrics")
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir.resolve()))
    options = ServeOptions(host, port, workers, ConnectionLimits(), tuple(settings.trusted_proxies))
    try:
        serve(options)
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}")
    except WorkersFailed as error:
        fail(str(error))
