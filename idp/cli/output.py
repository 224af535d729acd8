"""How commands speak: JSON for machines (``--json``), rich tables for people, one-line errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

console = Console()
JsonOption = typer.Option(False, "--json", help="print only JSON")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"hoviyat: error: {message}\n")
    raise typer.Exit(code)
