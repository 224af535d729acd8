"""Hoviyat's files are private under the usual umask 022: another local account reads
none of the database, its WAL and SHM, secrets, CA keys, reconciliation outputs
(national codes) or exports."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
from served import free_port, wait_ready

from verifiers.registry.synthetic import SyntheticRegistry

HOVIYAT = [sys.executable, "-m", "idp.cli"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HOVIYAT, *args], env=env, umask=0o022, capture_output=True, text=True, check=True
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _legacy_csv(path: Path, registry: Path) -> None:
    source = SyntheticRegistry(registry)
    try:
        people = [person for person, _ in source.iter_persons(5)]
    finally:
        source.close()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["national_code", "first_name", "last_name", "father_name", "birth_date", "postal_code"]
        )
        for person in people:
            writer.writerow([person.national_code, person.first_name, person.last_name, "", "", ""])


def _serve_and_write(env: dict[str, str], secret: str, database: Path) -> None:
    """``hoviyat serve --workers 2`` under umask 022; a grant written, the WAL and SHM
    it left (SQLite removes them at the last close) checked while it runs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*HOVIYAT, "serve", "--port", str(port), "--workers", "2"],
        env={**env, "HOVIYAT_ISSUER": url},
        umask=0o022,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(url, process=server)
        granted = httpx.post(
            f"{url}/token",
            data={"grant_type": "client_credentials"},
            auth=("demo-bank", secret),
            timeout=10,
        )
        assert granted.status_code == 200
        for companion in (Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert _mode(companion) == 0o600, f"{companion} {oct(_mode(companion))}"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_attack_local_user_cannot_read_data_files_created_under_umask_022(
    tmp_path: Path, synthetic_registry_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    leftover = data / "left-by-an-earlier-version.csv"
    leftover.write_text("national_code\n0499370899\n")
    leftover.chmod(0o644)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")}
    env.update(
        HOVIYAT_DATA_DIR=str(data),
        HOVIYAT_REGISTRY_PATH=str(synthetic_registry_path),
        HOVIYAT_LOG_LEVEL="WARNING",
    )
    report = json.loads(_run(["init", "--json"], env).stdout)
    secret = next(
        c["client_secret"] for c in report["demo_clients"] if c["client_id"] == "demo-bank"
    )
    _run(["ca", "init", "--json"], env)
    legacy = tmp_path / "legacy.csv"
    _legacy_csv(legacy, synthetic_registry_path)
    output = tmp_path / "reconciled.csv"
    _run(["reconcile", str(legacy), "--out", str(output), "--json"], env)
    export = tmp_path / "audit.jsonl"
    _run(["audit", "export", "--out", str(export)], env)
    _serve_and_write(env, secret, data / "hoviyat.db")

    readable = []
    for folder, folders, files in os.walk(data):
        for name in folders:
            if _mode(Path(folder, name)) != 0o700:
                readable.append(f"{Path(folder, name)} {oct(_mode(Path(folder, name)))}")
        for name in files:
            if _mode(Path(folder, name)) != 0o600:
                readable.append(f"{Path(folder, name)} {oct(_mode(Path(folder, name)))}")
    assert _mode(data) == 0o700
    assert not readable, readable
    assert any((data / "ca").iterdir()), "ca init made no key files"
    assert _mode(output) == 0o600
    assert _mode(export) == 0o600
