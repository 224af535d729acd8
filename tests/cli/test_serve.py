"""``hoviyat serve --workers N``: one port, a socket per worker, the kernel balancing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HOVIYAT = [sys.executable, "-m", "idp.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


def _sockets(pid: int, port: int, state: str) -> int:
    """TCP sockets of ``pid`` on local ``port`` in ``state`` (/proc/net/tcp: 01 established,
    0A listening)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state and fields[9] in inodes:
            count += 1
    return count


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "hoviyat serve exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("hoviyat serve did not become ready")


def test_two_workers_share_the_connections_and_stop_together(
    serve_env: dict[str, str],
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*HOVIYAT, "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=serve_env, stderr=subprocess.PIPE)
    clients: list[httpx.Client] = []
    try:
        _wait_ready(url, server)
        # Both workers import the app; wait until each listens before connecting.
        deadline = time.monotonic() + 60
        while (
            len(workers := [pid for pid in _children(server.pid) if _sockets(pid, port, "0A")]) < 2
        ):
            assert time.monotonic() < deadline, "two listening workers never appeared"
            time.sleep(0.2)
        for _ in range(24):  # keep-alive clients, each holding one connection
            client = httpx.Client(base_url=url, timeout=10)
            assert client.get("/.well-known/openid-configuration").status_code == 200
            clients.append(client)
        shares = [_sockets(pid, port, "01") for pid in workers]
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
