"""An EAB key needs the deeds registry's word on the entity: when the registry cannot
answer, creation is a 503 with Retry-After that stores nothing, and works again once
the registry is back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from acme_cast import ACME_SERVICE
from fastapi.testclient import TestClient

from idp.settings import Settings

EAB_KEYS = "/v1/acme/eab-keys"


@pytest.fixture
def hoviyat_settings(
    tmp_path: Path, database_url: str, registry_server: Any, server_port: int
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="http",
        registry_url=registry_server.url,
        issuer=f"http://127.0.0.1:{server_port}",
    )


def test_registry_down_is_503_with_retry_after_and_nothing_stored_then_recovers(
    app_client: TestClient,
    admin_token: str,
    acme_entity: str,
    registry_server: Any,
    state: Callable[[], dict[str, object]],
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    body = {"national_id": acme_entity, "service_code": ACME_SERVICE}
    before = state()
    registry_server.control(error_rate=1.0, error_status=503)
    response = app_client.post(EAB_KEYS, json=body, headers=headers)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert acme_entity not in response.text
    assert state() == before
    registry_server.heal()
    assert app_client.post(EAB_KEYS, json=body, headers=headers).status_code == 201
