"""A database that cannot be reached: ACME answers a serverInternal problem with 503 and
Retry-After (and a fresh nonce, which costs no write), never a hang or a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from acme_client import AcmeClient
from fastapi.testclient import TestClient

from idp.acme.paths import AcmePaths
from idp.app import create_app
from idp.settings import Settings

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"


@pytest.fixture
def app_without_database(
    hoviyat_settings: Settings, init_report: dict[str, Any]
) -> Iterator[TestClient]:
    settings = hoviyat_settings.model_copy(update={"database_url": UNREACHABLE})
    app = create_app(settings)
    with TestClient(app, base_url=settings.issuer, raise_server_exceptions=False) as client:
        yield client
    app.state.hoviyat.close()


def test_database_down_is_a_503_acme_problem_with_retry_after(
    app_without_database: TestClient, acme_paths: AcmePaths
) -> None:
    client = AcmeClient(app_without_database, acme_paths.directory)
    assert app_without_database.get(acme_paths.directory).status_code == 200
    nonce = client.new_nonce()  # issued without the database
    response = client.send(
        acme_paths.new_account, client.sign(acme_paths.new_account, {}, nonce=nonce)
    )
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:ietf:params:acme:error:serverInternal"
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Replay-Nonce"]
