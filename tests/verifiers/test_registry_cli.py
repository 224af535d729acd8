"""``hoviyat registry seed | export | serve`` through typer's runner and a real process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from idp.cli.registry import registry_app
from verifiers.identifiers import validate_national_code, validate_national_id
from verifiers.registry import generator

runner = CliRunner()


def test_seed_then_export(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    seeded = runner.invoke(
        registry_app,
        [
            "seed",
            "--persons",
            "30",
            "--entities",
            "4",
            "--seed",
            "5",
            "--path",
            str(path),
            "--json",
        ],
    )
    assert seeded.exit_code == 0, seeded.output
    report = json.loads(seeded.stdout)
    assert report["persons"] == 30 and report["entities"] == 4 and report["path"] == str(path)

    persons = runner.invoke(
        registry_app, ["export", "--kind", "persons", "--limit", "3", "--path", str(path)]
    )
    assert persons.exit_code == 0, persons.output
    lines = [json.loads(line) for line in persons.stdout.splitlines()]
    assert [p["national_code"] for p in lines] == [generator.national_code(5, i) for i in range(3)]
    assert all(validate_national_code(p["national_code"]) for p in lines)
    assert {"birth_date", "birth_date_jalali", "mobiles"} <= set(lines[0])

    entities = runner.invoke(
        registry_app, ["export", "--kind", "entities", "--limit", "10", "--path", str(path)]
    )
    records = [json.loads(line) for line in entities.stdout.splitlines()]
    assert len(records) == 4
    assert all(validate_national_id(e["national_id"]) for e in records)
    assert all(e["representatives"] for e in records)


def test_seed_with_progress_bar(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    result = runner.invoke(
        registry_app, ["seed", "--persons", "10", "--entities", "1", "--path", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "seeded 10 persons and 1 entities" in result.stdout
    assert path.is_file()


def test_export_without_registry_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        registry_app, ["export", "--kind", "persons", "--path", str(tmp_path / "absent.db")]
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "hoviyat registry seed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_kind_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(registry_app, ["export", "--kind", "cars", "--path", str(tmp_path)])
    assert result.exit_code != 0


def test_negative_count_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        registry_app, ["seed", "--persons", "-1", "--path", str(tmp_path / "r.db")]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "r.db").exists()


def test_serve_answers_the_contract(synthetic_registry_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "idp.cli.registry",
            "serve",
            "--port",
            str(port),
            "--path",
            str(synthetic_registry_path),
            "--error-rate",
            "0",
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "registry server exited"
                assert time.monotonic() < deadline, "registry server did not start"
                time.sleep(0.1)
        assert health.json()["persons"] == 2000
        person = generator.person(7, 11)
        answer = httpx.post(
            f"{url}/civil/persons/lookup", json={"national_code": person.national_code}
        ).json()
        assert answer["first_name"] == person.first_name
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
