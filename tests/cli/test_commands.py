"""The ``hoviyat`` command as an administrator runs it: a real process per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HOVIYAT = [sys.executable, "-m", "idp.cli"]


def run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        HOVIYAT + args, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"hoviyat {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str, synthetic_registry_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(tmp_path / "data"),
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_REGISTRY_PATH": str(synthetic_registry_path),
    }


def test_init_is_idempotent_and_json_only(cli_env: dict[str, str]) -> None:
    first = json.loads(run(["init", "--json"], cli_env).stdout)
    second = json.loads(run(["init", "--json"], cli_env).stdout)
    assert first["signing_keys_created"], "the first run creates signing keys"
    assert second["signing_keys_created"] == [] and second["policies_changed"] == []
    assert first["demo_clients"] == second["demo_clients"], "a re-run reuses what exists"
    secrets = Path(cli_env["HOVIYAT_DATA_DIR"]) / "secrets.json"
    assert secrets.stat().st_mode & 0o077 == 0, "the secrets file is private"


def test_clients_and_policies(cli_env: dict[str, str]) -> None:
    run(["init", "--json"], cli_env)
    created = json.loads(
        run(
            ["clients", "create", "--name", "Tax office", "--service", "demo-tax-portal", "--json"],
            cli_env,
        ).stdout
    )
    assert len(created["client_secret"]) >= 43, "at least 256 bits of secret"
    listed = json.loads(run(["clients", "list", "--json"], cli_env).stdout)
    assert created["client_id"] in {c["client_id"] for c in listed}
    assert all("client_secret" not in c and "secret_digest" not in c for c in listed)
    policies = json.loads(run(["policies", "list", "--json"], cli_env).stdout)
    assert {"demo-bank-kyc", "demo-tax-portal"} <= {p["service_code"] for p in policies}

    refused = run(
        ["clients", "create", "--name", "x", "--service", "no-such", "--json"], cli_env, check=False
    )
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "no-such" in refused.stderr
