"""deploy/hoviyat.service: systemd accepts every directive, and the service is confined."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "hoviyat.service"
ANALYZE = shutil.which("systemd-analyze")

pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def installed_copy(tmp_path: Path) -> Path:
    """The unit with its program swapped for one that exists here (verify checks it)."""
    copy = tmp_path / "hoviyat.service"
    copy.write_text(UNIT.read_text().replace("/opt/hoviyat/.venv/bin/hoviyat", "/bin/true"))
    return copy


def test_unit_serves_workers_with_settings_from_the_env_file() -> None:
    text = UNIT.read_text()
    assert "EnvironmentFile=/etc/hoviyat/hoviyat.env" in text
    assert re.search(r"^ExecStart=\S+/hoviyat serve .*--workers \d+", text, re.MULTILINE)
    assert re.search(r"^ExecStartPre=\S+/hoviyat db upgrade$", text, re.MULTILINE)
    assert "--host 127.0.0.1" in text  # only nginx reaches it


def test_systemd_knows_every_directive(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ANALYZE), "verify", "--man=no", str(installed_copy(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "hoviyat.service" not in result.stderr, result.stderr


def test_exposure_is_low(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", "--no-pager", str(installed_copy(tmp_path))],
        capture_output=True,
        text=True,
    )
    found = re.search(r"Overall exposure level for hoviyat.service: ([0-9.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= 2.0


def test_maintenance_timer_runs_commands_hoviyat_has(tmp_path: Path) -> None:
    service = REPO / "deploy" / "hoviyat-maintenance.service"
    timer = REPO / "deploy" / "hoviyat-maintenance.timer"
    commands = re.findall(
        r"^ExecStart=/opt/hoviyat/.venv/bin/hoviyat (.+)$", service.read_text(), re.MULTILINE
    )
    assert any(c.startswith("audit checkpoint") for c in commands)
    for command in commands:
        words = [w for w in command.split() if not w.startswith("--")][:2]
        help_run = subprocess.run(
            [sys.executable, "-m", "idp.cli", *words, "--help"], capture_output=True, text=True
        )
        assert help_run.returncode == 0, f"hoviyat {command}: {help_run.stderr}"
    (tmp_path / service.name).write_text(
        service.read_text().replace("/opt/hoviyat/.venv/bin/hoviyat", "/bin/true")
    )
    (tmp_path / timer.name).write_text(timer.read_text())
    result = subprocess.run(
        [
            str(ANALYZE),
            "verify",
            "--man=no",
            str(tmp_path / service.name),
            str(tmp_path / timer.name),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
