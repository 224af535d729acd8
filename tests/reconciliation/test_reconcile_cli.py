"""``hoviyat reconcile`` through typer, on a data directory made by ``hoviyat init``'s code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from idp.cli.reconcile import reconcile_command
from idp.reconciliation.sample import write_sample
from idp.settings import Settings

cli = typer.Typer()
cli.command()(reconcile_command)


@pytest.fixture
def environment(
    hoviyat_settings: Settings, init_report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    monkeypatch.setenv("HOVIYAT_DATA_DIR", str(hoviyat_settings.data_dir))
    monkeypatch.setenv("HOVIYAT_DATABASE_URL", hoviyat_settings.resolved_database_url)
    monkeypatch.setenv("HOVIYAT_REGISTRY_PATH", str(hoviyat_settings.resolved_registry_path))
    yield hoviyat_settings


@pytest.fixture
def legacy_file(tmp_path: Path, synthetic_registry_path: Path) -> Path:
    path = tmp_path / "legacy.csv"
    write_sample(synthetic_registry_path, path, 700, persons=300)
    return path


def test_reconcile_writes_every_row_and_a_json_summary(
    environment: Settings, legacy_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, [str(legacy_file), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 700 and summary["service_code"] == "demo-bank-kyc"
    assert 0 < summary["needs_review"] < 700
    assert len(out.read_text(encoding="utf-8").splitlines()) == 701

    again = CliRunner().invoke(cli, [str(legacy_file), "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    resumed = json.loads(again.stdout)
    assert resumed["resumed_after_row"] == 700 and resumed["rows"] == 700
    assert resumed["job_tracking_code"] != summary["job_tracking_code"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--service", "no-such-service"], "unknown service"),
        (["--service", "demo-match-only"], "does not allow operation 'reconciliations.create'"),
    ],
)
def test_policy_problems_are_one_line_errors(
    environment: Settings, legacy_file: Path, tmp_path: Path, arguments: list[str], message: str
) -> None:
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, [str(legacy_file), "--out", str(out), *arguments])
    assert result.exit_code != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_file_without_header_and_foreign_output_are_refused(
    environment: Settings, legacy_file: Path, tmp_path: Path
) -> None:
    headless = tmp_path / "headless.csv"
    headless.write_text("0499370899,علی\n", encoding="utf-8")
    result = CliRunner().invoke(cli, [str(headless), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code != 0 and "header" in result.stderr

    precious = tmp_path / "precious.csv"
    precious.write_text("keep me\n")
    refused = CliRunner().invoke(cli, [str(legacy_file), "--out", str(precious)])
    assert refused.exit_code != 0 and "not a reconciliation output" in refused.stderr
    assert precious.read_text() == "keep me\n"


def test_missing_registry_is_a_one_line_error(
    environment: Settings, legacy_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOVIYAT_REGISTRY_PATH", str(tmp_path / "no-registry.db"))
    result = CliRunner().invoke(cli, [str(legacy_file), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code != 0
    assert "cannot start" in result.stderr and len(result.stderr.strip().splitlines()) == 1
