"""Worker deaths and stops under ``hoviyat serve --workers 2``, over real HTTP.

A worker killed while it starts, or while it answers, is replaced and the other keeps
answering; every verification the clients saw answered (2xx) has exactly one audit
record, never none and never two; SIGTERM under load stops everything within
:data:`idp.serving.SHUTDOWN_SECONDS` and leaves a database whose audit log exports and
verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from served import (
    HOVIYAT,
    VerificationLoad,
    hoviyat_env,
    init,
    serve,
    wait_ready,
)
from sqlalchemy import create_engine, text

from idp.audit.verify import verify_export
from idp.serving import MAX_START_FAILURES, SHUTDOWN_SECONDS


@pytest.fixture
def env(tmp_path: Path, database_url: str, synthetic_registry_path: Path) -> dict[str, str]:
    environment = hoviyat_env(tmp_path / "data", database_url, synthetic_registry_path)
    environment["HOVIYAT_DEMO_SECRET_BANK"] = init(environment)["demo-bank"]
    return environment


def _verification_records(database_url: str) -> Counter[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT tracking_code, COUNT(*) FROM audit_entries "
                    "WHERE event_type = 'verification' GROUP BY tracking_code"
                )
            ).all()
    finally:
        engine.dispose()
    return Counter({code: count for code, count in rows})


def _assert_each_acknowledged_answer_recorded_once(
    load: VerificationLoad, database_url: str
) -> None:
    records = _verification_records(database_url)
    acknowledged = [code for _, code in load.acknowledged]
    assert len(acknowledged) == len(set(acknowledged)), "a tracking code was answered twice"
    missing = [code for code in acknowledged if records[code] == 0]
    doubled = [code for code, count in records.items() if count > 1]
    assert not missing, f"{len(missing)} acknowledged verifications have no audit record"
    assert not doubled, f"{len(doubled)} verifications have more than one audit record"


def test_worker_killed_in_its_first_seconds_is_replaced_and_serve_keeps_running(
    env: dict[str, str],
) -> None:
    with serve(env) as served:
        deadline = time.monotonic() + 30
        while len(workers := served.workers()) < 2:
            assert served.process.poll() is None, served.stderr()
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)  # still importing the app: not ready yet
        wait_ready(served.url)
        ready = served.ready_workers(2, without=victim)
        assert served.process.poll() is None, served.stderr()
        # A ready worker killed within seconds of the first is replaced as well.
        os.kill(ready[0], signal.SIGKILL)
        served.ready_workers(2, without=ready[0])
        assert served.process.poll() is None, served.stderr()


def test_worker_killed_under_load_loses_and_doubles_no_acknowledged_verification(
    env: dict[str, str], database_url: str, synthetic_registry_path: Path
) -> None:
    with serve(env) as served:
        workers = served.ready_workers(2)
        load = VerificationLoad.of_bank(served, env, synthetic_registry_path, 500)
        load.start()
        try:
            time.sleep(2)
            victim, survivor = workers
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            replaced = served.ready_workers(2, without=victim)
            replaced_at = time.monotonic()
            time.sleep(1)
        finally:
            load.stop()
        assert survivor in replaced
        assert served.process.poll() is None, served.stderr()
        assert load.answered_between(killed_at, replaced_at) > 0, (
            "nothing was answered while the killed worker was being replaced"
        )
        assert load.answered_between(replaced_at, replaced_at + 1) > 0
        assert set(load.failures) <= {"ConnectError", "RemoteProtocolError", "ReadError"}, (
            load.failures
        )
    _assert_each_acknowledged_answer_recorded_once(load, database_url)


def test_worker_that_never_starts_makes_serve_give_up_saying_why(
    env: dict[str, str], tmp_path: Path
) -> None:
    # The supervisor reads no secrets; each worker's app does and cannot start without them.
    broken = {**env, "HOVIYAT_SECRETS_FILE": str(tmp_path / "missing" / "secrets.json")}
    started = time.monotonic()
    with serve(broken) as served:
        code = served.process.wait(timeout=120)
        stderr = served.stderr()
    assert code == 1
    assert stderr.strip().splitlines()[-1] == (
        f"hoviyat: error: a worker failed to start {MAX_START_FAILURES} times in a row "
        "(last exit code 1); giving up"
    )
    # Backoff between attempts: 0.5 + 1 + 2 + 4 s at least.
    assert time.monotonic() - started >= 7.5


def test_sigterm_under_load_stops_within_the_bound_leaving_a_verifiable_log(
    env: dict[str, str], database_url: str, synthetic_registry_path: Path, tmp_path: Path
) -> None:
    with serve(env) as served:
        workers = served.ready_workers(2)
        load = VerificationLoad.of_bank(served, env, synthetic_registry_path, 500)
        load.start()
        try:
            time.sleep(2)
            asked = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
            served.process.wait(timeout=SHUTDOWN_SECONDS + 10)
            took = time.monotonic() - asked
        finally:
            load.stop()
        assert took <= SHUTDOWN_SECONDS, f"serve took {took:.1f} s to stop"
        assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        assert load.acknowledged, "the load never got an answer"
    _assert_each_acknowledged_answer_recorded_once(load, database_url)
    export = tmp_path / "audit.jsonl"
    subprocess.run(
        [*HOVIYAT, "audit", "export", "--out", str(export)],
        env=env,
        check=True,
        capture_output=True,
    )
    report = verify_export(export.read_bytes().splitlines())
    assert not report.problems, report.problems
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        engine.dispose()
