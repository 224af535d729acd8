"""``hoviyat reconcile IN.csv --out OUT.csv``: legacy records against the registry, offline.

The run is done as an operator under a service policy (``--service``): the
policy decides which registry fields may be filled in, and every row is
audited under its legal basis. Interrupted (Ctrl-C, a registry outage, a
crash), the same command resumes after the last row in OUT.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from idp.cli.operator import cli_actor
from idp.cli.output import console, fail, print_json
from idp.context import registry_options
from idp.reconciliation.config import ReconciliationSettings
from idp.reconciliation.engine import OPERATION, Reconciler, RunProgress
from idp.reconciliation.legacy_csv import LegacyFormatError, check_header
from idp.secrets import load_secrets
from idp.settings import get_settings
from idp.storage.engine import Database
from idp.tracking import new_tracking_code
from policies.service_policy import PolicyError, load_service_policies
from verifiers.registry import RegistryUnavailable, open_registries

DEFAULT_SERVICE = "demo-bank-kyc"


def reconcile_command(
    source: Annotated[
        Path, typer.Argument(metavar="IN.csv", help="legacy records, with a header row")
    ],
    out: Annotated[Path, typer.Option("--out", help="where the reconciled rows are written")],
    service: Annotated[
        str, typer.Option("--service", help="service code whose policy applies")
    ] = DEFAULT_SERVICE,
    resume: Annotated[
        bool,
        typer.Option("--resume/--no-resume", help="continue after the rows OUT.csv already holds"),
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="print only JSON")] = False,
) -> None:
    """Reconcile a legacy CSV against the civil registry, resuming an interrupted run."""
    settings = get_settings()
    reconciliation = ReconciliationSettings()
    try:
        policies = load_service_policies(settings.policies_dir)
    except PolicyError as exc:
        fail(str(exc))
    policy = policies.get(service)
    if policy is None:
        fail(f"unknown service {service!r}; see: hoviyat policies list")
    if not policy.allows(OPERATION):
        fail(f"service policy {service!r} does not allow operation {OPERATION!r}")
    if not source.is_file():
        fail(f"{source} is not a readable file")
    if out.resolve() == source.resolve():
        fail("--out must not be the input file")
    try:
        check_header(source)
        secrets = load_secrets(settings.resolved_secrets_file)
        registries = open_registries(settings.registry_adapter, registry_options(settings))
    except LegacyFormatError as exc:
        fail(str(exc))
    except (OSError, ValueError, RegistryUnavailable) as exc:
        fail(f"cannot start: {exc}; has 'hoviyat init' been run with these settings?")
    database = Database(settings.resolved_database_url)
    reconciler = Reconciler(
        db=database,
        civil=registries.civil,
        policy=policy,
        pepper=secrets.subject_pepper,
        actor_type="operator",
        actor_id=cli_actor(),
        batch_size=reconciliation.batch_size,
        max_rows_per_subject=reconciliation.max_rows_per_subject,
    )
    job_tracking_code = new_tracking_code()
    bar = Progress(
        TextColumn("[bold]reconcile"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:>10,} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=json_output,
    )
    try:
        with bar:
            task = bar.add_task("reconcile", total=source.stat().st_size, rows=0)

            def show(progress: RunProgress) -> None:
                bar.update(task, completed=progress.bytes_read, rows=progress.rows)

            report = reconciler.run(
                source,
                out,
                job_tracking_code=job_tracking_code,
                resume=resume,
                on_progress=show,
            )
    except RegistryUnavailable as outage:
        fail(
            f"the {outage.registry} registry cannot answer ({outage}); "
            "finished rows are saved in the output: run the same command again to resume"
        )
    except LegacyFormatError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; finished rows are saved: run the same command again to resume", 130)
    except OSError as exc:
        fail(f"{exc.filename or out}: {exc.strerror or exc}")
    finally:
        registries.close()
        database.dispose()
    summary = {
        "job_tracking_code": report.job_tracking_code,
        "service_code": policy.service_code,
        "output": str(out),
        "rows": report.rows,
        "needs_review": report.needs_review,
        "resumed_after_row": report.resumed_after_row,
    }
    if json_output:
        print_json(summary)
        return
    console.print(
        f"[bold]{report.rows:,}[/] rows reconciled into {out} "
        f"({report.needs_review:,} need review); job tracking code "
        f"[cyan]{report.job_tracking_code}[/]"
        + (f", resumed after row {report.resumed_after_row:,}" if report.resumed_after_row else "")
    )
