"""Fixtures for a whole Hoviyat: settings, the app over ASGI, and a live server on loopback.

Everything is real: ``hoviyat init``'s own code prepares the data directory
(secrets, policies, signing keys, demo clients) on the test database and the
session's synthetic registry.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.app import create_app
from idp.cli.setup import initialise
from idp.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_port() -> int:
    return free_port()


@pytest.fixture
def hoviyat_settings(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path, server_port: int
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="synthetic",
        registry_path=synthetic_registry_path,
        issuer=f"http://127.0.0.1:{server_port}",
    )


@pytest.fixture
def init_report(hoviyat_settings: Settings) -> dict[str, Any]:
    return initialise(hoviyat_settings)


@pytest.fixture
def demo_clients(init_report: dict[str, Any]) -> dict[str, str]:
    """client_id → client_secret of the demo clients ``hoviyat init`` made."""
    return {c["client_id"]: c["client_secret"] for c in init_report["demo_clients"]}


@pytest.fixture
def hoviyat_app(hoviyat_settings: Settings, init_report: dict[str, Any]) -> Iterator[FastAPI]:
    app = create_app(hoviyat_settings)
    yield app
    app.state.hoviyat.close()


@pytest.fixture
def app_client(hoviyat_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(hoviyat_app, base_url=hoviyat_app.state.hoviyat.settings.issuer) as client:
        yield client


def client_token(
    client: TestClient | httpx.Client, client_id: str, secret: str, scope: str | None = None
) -> str:
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    response = client.post("/token", data=data, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def bank_token(app_client: TestClient, demo_clients: dict[str, str]) -> str:
    return client_token(app_client, "demo-bank", demo_clients["demo-bank"])


@pytest.fixture
def admin_token(app_client: TestClient, demo_clients: dict[str, str]) -> str:
    return client_token(app_client, "demo-admin", demo_clients["demo-admin"])


class LiveServer:
    def __init__(self, app: FastAPI, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(hoviyat_app: FastAPI, server_port: int) -> Iterator[LiveServer]:
    """The app served by uvicorn on loopback at its issuer URL."""
    with LiveServer(hoviyat_app, server_port) as server:
        yield server
