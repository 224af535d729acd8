"""Registry fixtures: a small synthetic registry seeded once per session, and a
registry server over it on a loopback port (real uvicorn, background thread).

Registered as a plugin in ``tests/conftest.py``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from verifiers.registry.server import create_registry_app
from verifiers.registry.synthetic import SyntheticRegistry, seed

SYNTHETIC_SEED = 7
SYNTHETIC_PERSONS = 2_000
SYNTHETIC_ENTITIES = 300


@pytest.fixture(scope="session")
def synthetic_registry_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry") / "registry.db"
    seed(path, persons=SYNTHETIC_PERSONS, entities=SYNTHETIC_ENTITIES, seed=SYNTHETIC_SEED)
    return path


@dataclass
class RegistryServer:
    """A running registry server: ``url`` to point an adapter at, ``control`` to inject faults."""

    url: str
    client: httpx.Client

    def control(self, **changes: Any) -> dict[str, Any]:
        """POST /_control (``latency_ms``, ``error_rate``, ``error_status``); the new state."""
        response = self.client.post(f"{self.url}/_control", json=changes)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        """The fault settings in force and ``requests``, the registry requests served so far."""
        return self.client.get(f"{self.url}/_control").json()

    def heal(self) -> None:
        self.control(latency_ms=0, error_rate=0, error_status=503)


@pytest.fixture(scope="session")
def _registry_server_session(synthetic_registry_path: Path) -> Iterator[RegistryServer]:
    registry = SyntheticRegistry(synthetic_registry_path)
    app = create_registry_app(registry, seed=SYNTHETIC_SEED)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("registry server did not start")
        time.sleep(0.01)
    # One client for the control calls: a new httpx client per call costs an SSL context.
    with httpx.Client(timeout=5) as client:
        yield RegistryServer(url=f"http://127.0.0.1:{port}", client=client)
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()
    registry.close()


@pytest.fixture
def registry_server(_registry_server_session: RegistryServer) -> Iterator[RegistryServer]:
    """The session's registry server, healthy at the start and end of each test."""
    _registry_server_session.heal()
    yield _registry_server_session
    _registry_server_session.heal()
