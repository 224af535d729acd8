"""The database goes away under ``hoviyat serve --workers 2``, over real HTTP.

While the store refuses connections (PostgreSQL) or is locked by another process
(SQLite), every request is answered within a bound, as success or as a 503
problem with Retry-After, never a hang and never a 500; ``/readyz`` says the
database or the writer is unavailable; once the store is back the same server
answers again without a restart, and every verification it acknowledged has
exactly one audit record. SIGTERM during the outage stops within the stated
bound.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from served import VerificationLoad, hoviyat_env, init, serve
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from test_serve_faults import _assert_each_acknowledged_answer_recorded_once

from idp.serving import SHUTDOWN_SECONDS

PG_URL = os.environ.get("HOVIYAT_TEST_DATABASE_URL", "")
WRITE_TIMEOUT = 3.0
# A request may wait for the write timeout, plus a pool or connect timeout (5 s)
# on the read it made first, plus scheduling on a busy 2-core machine.
ANSWER_BOUND = WRITE_TIMEOUT + 5 + 4


class ThrowawayPostgres:
    """A database of this test's own, so refusing its connections disturbs nobody else."""

    def __init__(self, server_url: str) -> None:
        self.name = f"hv_fault_{os.getpid()}_{int(time.monotonic() * 1000)}"
        self.admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        self._run(f'CREATE DATABASE "{self.name}"')
        plain = make_url(server_url).set(database=self.name, query={})
        self.url = plain.render_as_string(hide_password=False)

    def _run(self, *statements: str) -> None:
        with self.admin.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))

    def refuse_connections(self) -> None:
        self._run(
            f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()",
        )

    def allow_connections(self) -> None:
        self._run(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def drop(self) -> None:
        self.allow_connections()
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    if not PG_URL:
        pytest.skip("HOVIYAT_TEST_DATABASE_URL is unset: the PostgreSQL outage is not staged")
    database = ThrowawayPostgres(PG_URL)
    try:
        yield database
    finally:
        database.drop()


def _environment(tmp_path: Path, database_url: str, registry: Path) -> dict[str, str]:
    env = hoviyat_env(
        tmp_path / "data",
        database_url,
        registry,
        HOVIYAT_WRITE_TIMEOUT_SECONDS=str(WRITE_TIMEOUT),
    )
    env["HOVIYAT_DEMO_SECRET_BANK"] = init(env)["demo-bank"]
    return env


def _readiness(url: str) -> tuple[int, dict[str, object]]:
    answer = httpx.get(f"{url}/readyz", timeout=ANSWER_BOUND)
    return answer.status_code, answer.json()


def _wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _token_grant(url: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{url}/token",
        data={"grant_type": "client_credentials"},
        auth=("demo-bank", secret),
        timeout=ANSWER_BOUND + 20,
    )


def _outage_is_answered_and_recovered(
    env: dict[str, str], database_url: str, registry: Path, start: object, end: object
) -> None:
    with serve(env) as served:
        served.ready_workers(2)
        secret = env["HOVIYAT_DEMO_SECRET_BANK"]
        load = VerificationLoad.of_bank(served, env, registry, 300)
        load.start()
        try:
            time.sleep(1.5)
            start()  # type: ignore[operator]
            outage_began = time.monotonic()
            # A grant during the outage: bounded, and a 503 problem, not a hang or a 500.
            began = time.monotonic()
            grant = _token_grant(served.url, secret)
            assert time.monotonic() - began < ANSWER_BOUND + 1
            assert grant.status_code in (200, 503), grant.text
            if grant.status_code == 503:
                assert grant.headers["content-type"].startswith("application/problem+json")
                assert grant.headers["retry-after"]
            _wait_until(
                lambda: _readiness(served.url)[0] == 503,
                ANSWER_BOUND * 2,
                "/readyz kept saying ready while writes could not commit",
            )
            _status, body = _readiness(served.url)
            checks = body["checks"]
            assert isinstance(checks, dict)
            assert checks["database"] != "ok" or checks["writer"] != "ok", body
            time.sleep(max(0.0, 6 - (time.monotonic() - outage_began)))
            end()  # type: ignore[operator]
            restored = time.monotonic()
            _wait_until(
                lambda: _readiness(served.url)[0] == 200,
                30,
                "/readyz never said ready again after the database came back",
            )
            _wait_until(
                lambda: load.answered_between(restored, time.monotonic()) > 10,
                30,
                "no verification succeeded after the database came back",
            )
            assert _token_grant(served.url, secret).status_code == 200
        finally:
            load.stop()
        assert served.process.poll() is None, served.stderr()
    assert load.longest_wait < ANSWER_BOUND, f"a request waited {load.longest_wait:.1f} s"
    assert "500" not in load.failures, load.failures
    assert set(load.failures) <= {"503"}, load.failures
    assert load.failures.get("503", 0) > 0, "the outage was never felt: the test staged nothing"
    assert load.refusals_without_retry_after == 0
    _assert_each_acknowledged_answer_recorded_once(load, database_url)


def test_postgres_refusing_connections_gets_503s_then_recovers_without_restart(
    tmp_path: Path, postgres: ThrowawayPostgres, synthetic_registry_path: Path
) -> None:
    env = _environment(tmp_path, postgres.url, synthetic_registry_path)
    _outage_is_answered_and_recovered(
        env,
        postgres.url,
        synthetic_registry_path,
        postgres.refuse_connections,
        postgres.allow_connections,
    )


class SqliteLock:
    """Another process's exclusive transaction on the database file, held until released."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._release = threading.Event()
        self._held = threading.Event()
        self._thread: threading.Thread | None = None

    def _hold(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            self._held.set()
            self._release.wait(60)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    def take(self) -> None:
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()
        assert self._held.wait(30), "could not take the SQLite lock"

    def release(self) -> None:
        self._release.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def test_sqlite_file_locked_by_another_process_gets_503s_then_recovers_without_restart(
    tmp_path: Path, synthetic_registry_path: Path
) -> None:
    database_file = tmp_path / "data" / "hoviyat.db"
    database_url = f"sqlite:///{database_file}"
    env = _environment(tmp_path, database_url, synthetic_registry_path)
    lock = SqliteLock(str(database_file))
    _outage_is_answered_and_recovered(
        env, database_url, synthetic_registry_path, lock.take, lock.release
    )


def test_sigterm_during_a_database_outage_stops_within_the_bound(
    tmp_path: Path, postgres: ThrowawayPostgres, synthetic_registry_path: Path
) -> None:
    env = _environment(tmp_path, postgres.url, synthetic_registry_path)
    with serve(env) as served:
        served.ready_workers(2)
        load = VerificationLoad.of_bank(served, env, synthetic_registry_path, 100)
        load.start()
        try:
            time.sleep(1)
            postgres.refuse_connections()
            time.sleep(2)
            began = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
            try:
                served.process.wait(timeout=SHUTDOWN_SECONDS + 5)
            except subprocess.TimeoutExpired:
                pytest.fail(f"hoviyat serve still running {SHUTDOWN_SECONDS + 5} s after SIGTERM")
            stopped_in = time.monotonic() - began
        finally:
            load.stop()
    assert stopped_in <= SHUTDOWN_SECONDS + 1, f"stopped in {stopped_in:.1f} s"
    assert served.process.returncode is not None
