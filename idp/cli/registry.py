"""``hoviyat registry``: seed, export and serve the synthetic registry.

``seed`` writes the embedded registry the default adapter reads; ``export``
prints records as JSON lines so anyone can pick test identities; ``serve``
runs the registry server (:mod:`verifiers.registry.server`) for the ``http``
adapter, with optional latency and error injection.
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from idp.cli.output import JsonOption, fail, print_json
from idp.cli.setup import DEFAULT_ENTITIES, DEFAULT_PERSONS, DEFAULT_SEED
from idp.settings import get_settings

registry_app = typer.Typer(
    help="The synthetic registry: seed it, export test identities, serve it over HTTP.",
    no_args_is_help=True,
)

PathOption = typer.Option(
    None, "--path", help="registry file; default HOVIYAT_REGISTRY_PATH or <data_dir>/registry.db"
)


class Kind(StrEnum):
    persons = "persons"
    entities = "entities"


def _path(path: Path | None) -> Path:
    return path or get_settings().resolved_registry_path


@registry_app.command("seed")
def seed_command(
    persons: int = typer.Option(DEFAULT_PERSONS, "--persons", min=0, help="number of persons"),
    entities: int = typer.Option(DEFAULT_ENTITIES, "--entities", min=0, help="number of entities"),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", min=0, help="same seed, same registry"),
    path: Path | None = PathOption,
    as_json: bool = JsonOption,
) -> None:
    """Generate the registry deterministically from --seed, replacing the file whole."""
    from verifiers.registry.synthetic import seed as seed_registry

    target = _path(path)
    started = time.perf_counter()
    try:
        if as_json:
            seed_registry(target, persons=persons, entities=entities, seed=seed)
        else:
            with Progress(
                TextColumn("seeding"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            ) as progress:
                task = progress.add_task("seed", total=persons + entities)
                seed_registry(
                    target,
                    persons=persons,
                    entities=entities,
                    seed=seed,
                    progress=lambda done: progress.update(task, completed=done),
                )
    except (ValueError, OSError) as exc:
        fail(f"cannot seed {target}: {exc}")
    report = {
        "path": str(target),
        "persons": persons,
        "entities": entities,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if as_json:
        print_json(report)
    else:
        typer.echo(
            f"seeded {persons} persons and {entities} entities (seed {seed}) "
            f"into {target} in {report['seconds']} s"
        )


@registry_app.command("export")
def export_command(
    kind: Annotated[Kind, typer.Option("--kind", help="persons or entities")],
    limit: int = typer.Option(10, "--limit", min=0, help="how many records, from the first"),
    path: Path | None = PathOption,
) -> None:
    """Print records as JSON lines (dates ISO plus *_jalali)."""
    from verifiers.registry.synthetic import export

    target = _path(path)
    try:
        for record in export(target, kind.value, limit):
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except FileNotFoundError as exc:
        fail(str(exc))
    except BrokenPipeError:
        # `... | head` closed the pipe: the reader has what it wanted.
        sys.stderr.close()


@registry_app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8100, "--port", min=0, max=65535),
    latency_ms: float = typer.Option(0.0, "--latency-ms", min=0, help="delay added to each call"),
    error_rate: float = typer.Option(
        0.0, "--error-rate", min=0, max=1, help="share of calls that fail with 503"
    ),
    control: bool = typer.Option(
        True, "--control/--no-control", help="expose POST /_control to change faults at runtime"
    ),
    path: Path | None = PathOption,
) -> None:
    """Serve the registry over the HTTP contract the http adapter speaks."""
    import uvicorn

    from verifiers.registry.server import create_registry_app
    from verifiers.registry.synthetic import SyntheticRegistry

    try:
        registry = SyntheticRegistry(_path(path))
    except FileNotFoundError as exc:
        fail(str(exc))
    app = create_registry_app(
        registry, latency_ms=latency_ms, error_rate=error_rate, control=control
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    # ``python -m idp.cli.registry ...`` runs the sub-app on its own.
    registry_app()
