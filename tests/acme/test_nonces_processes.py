"""Single use across processes: ``hoviyat serve --workers 2`` in a subprocess over the
test database, and the same signed request sent at once over several connections.

The kernel hands the connections to either worker process; whichever worker gets
each, exactly one use of a nonce, and exactly one account per EAB key, succeeds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from acme_cast import ACME_SERVICE
from acme_client import AccountKey, AcmeClient
from served import HOVIYAT, Served, children, hoviyat_env, init, wait_ready

PORTS = range(18150, 18200)  # this part's share of 18100-18199


def _port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 18150-18199")


@contextmanager
def _serve(env: dict[str, str], port: int) -> Iterator[Served]:
    command = [*HOVIYAT, "serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        yield Served(f"http://127.0.0.1:{port}", port, process)
    finally:
        workers = children(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in workers:  # the processes this test started, by their ids
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def served_acme(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path, acme_entity: str
) -> Iterator[tuple[str, dict[str, str]]]:
    port = _port()
    url = f"http://127.0.0.1:{port}"
    env = hoviyat_env(tmp_path / "data", database_url, synthetic_registry_path, HOVIYAT_ISSUER=url)
    init(env)
    with _serve(env, port) as served:
        wait_ready(served.url, process=served.process)
        served.ready_workers(2)
        yield served.url, env


def _eab(env: dict[str, str], national_id: str) -> tuple[str, str]:
    command = ["acme", "eab", "create", "--national-id", national_id, "--service", ACME_SERVICE]
    done = subprocess.run([*HOVIYAT, *command, "--json"], env=env, capture_output=True, check=True)
    key = json.loads(done.stdout)
    return key["kid"], key["hmac_key"]


def _send_at_once(url: str, target: str, body: dict[str, str], times: int) -> list[int]:
    def send(_: int) -> int:
        # A connection each, so that both worker processes take some.
        with httpx.Client(base_url=url, timeout=30) as http:
            response = http.post(
                target,
                content=json.dumps(body).encode(),
                headers={"Content-Type": "application/jose+json"},
            )
            return response.status_code

    with ThreadPoolExecutor(times) as pool:
        return sorted(pool.map(send, range(times)))


def test_attack_nonce_and_eab_key_replayed_across_worker_processes_are_used_once(
    served_acme: tuple[str, dict[str, str]], acme_entity: str
) -> None:
    # One server for both attacks: starting one costs most of the test's time.
    url, env = served_acme
    _replay_nonces(url, env, acme_entity)
    _race_eab_keys(url, env, acme_entity)


def _replay_nonces(url: str, env: dict[str, str], acme_entity: str) -> None:
    kid, hmac_key = _eab(env, acme_entity)
    with httpx.Client(base_url=url, timeout=30) as http:
        client = AcmeClient(http, f"{url}/acme/infrastructure/directory")
        assert client.new_account(kid, hmac_key).status_code == 201
        account_url = str(client.account_url)
        for _ in range(5):
            body = client.sign(account_url, None)
            assert _send_at_once(url, account_url, body, 6) == [200, 400, 400, 400, 400, 400]


def _race_eab_keys(url: str, env: dict[str, str], acme_entity: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(3):
            kid, hmac_key = _eab(env, acme_entity)
            clients = [
                AcmeClient(http, f"{url}/acme/infrastructure/directory", AccountKey.generate())
                for _ in range(4)
            ]
            new_account = clients[0].url("newAccount")
            bodies = [
                c.sign(
                    new_account,
                    {
                        "termsOfServiceAgreed": True,
                        "externalAccountBinding": c.eab(kid, hmac_key),
                    },
                    use_jwk=True,
                )
                for c in clients
            ]

            def send(body: dict[str, str]) -> int:
                with httpx.Client(base_url=url, timeout=30) as own:
                    return own.post(
                        new_account,
                        content=json.dumps(body).encode(),
                        headers={"Content-Type": "application/jose+json"},
                    ).status_code

            with ThreadPoolExecutor(4) as pool:
                statuses = sorted(pool.map(send, bodies))
            assert statuses == [201, 403, 403, 403]
