"""``hoviyat serve --workers N``: one port, a socket per worker, the kernel balancing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from served import ESTABLISHED, children, free_port, listening, tcp_sockets, wait_ready

HOVIYAT = [sys.executable, "-m", "idp.cli"]


@pytest.fixture
def serve_env(tmp_path: Path, synthetic_registry_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(tmp_path / "data"),
        "HOVIYAT_DATABASE_URL": f"sqlite:///{tmp_path / 'hoviyat.db'}",
        "HOVIYAT_REGISTRY_PATH": str(synthetic_registry_path),
        "HOVIYAT_LOG_LEVEL": "WARNING",
    }
    subprocess.run([*HOVIYAT, "init", "--json"], env=env, capture_output=True, check=True)
    return env


def test_two_workers_share_the_connections_and_stop_together(
    serve_env: dict[str, str],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*HOVIYAT, "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=serve_env, stderr=subprocess.PIPE)
    clients: list[httpx.Client] = []
    try:
        wait_ready(url, process=server)
        # Both workers import the app; wait until each listens before connecting.
        deadline = time.monotonic() + 60
        while len(workers := [pid for pid in children(server.pid) if listening(pid, port)]) < 2:
            assert time.monotonic() < deadline, "two listening workers never appeared"
            time.sleep(0.2)
        for _ in range(24):  # keep-alive clients, each holding one connection
            client = httpx.Client(base_url=url, timeout=10)
            assert client.get("/.well-known/openid-configuration").status_code == 200
            clients.append(client)
        shares = [tcp_sockets(pid, port, ESTABLISHED) for pid in workers]
        assert sum(shares) == 24
        assert min(shares) > 0, f"one worker took every connection: {shares}"

        again = subprocess.run(command, env=serve_env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1
        assert again.stderr.strip().splitlines() == [
            f"hoviyat: error: cannot listen on 127.0.0.1:{port}: Address already in use"
        ]
    finally:
        for client in clients:
            client.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=40)
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers), "a worker outlived serve"
