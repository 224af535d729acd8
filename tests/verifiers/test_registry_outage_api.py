"""End to end: the verification API over the HTTP adapter while the registry server fails.

The issue's promise: a registry that is down yields a 503 problem with
Retry-After, never a 500 and never a wrong "no match".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api.helpers import living_person
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.oidc_support import (
    authorization_params,
    code_for,
    exchange,
    log_in,
    pkce_pair,
    register_rp,
)

from idp.settings import Settings
from verifiers.registry.synthetic import export


@pytest.fixture
def hoviyat_settings(
    tmp_path: Path, database_url: str, registry_server: Any, server_port: int
) -> Settings:
    # The app under test reaches the registry only through the http adapter.
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="http",
        registry_url=registry_server.url,
        # Long enough that a healthy answer never misses it on a loaded CI machine (0.3 s
        # did); the latency fault below is well beyond it.
        registry_timeout_seconds=1.5,
        issuer=f"http://127.0.0.1:{server_port}",
    )


def _verify(app_client: TestClient, token: str, person: dict[str, Any]) -> Any:
    return app_client.post(
        "/v1/persons/verify",
        json={"national_code": person["national_code"], "birth_date": person["birth_date"]},
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.mark.parametrize("fault", [{"error_rate": 1}, {"latency_ms": 5000}])
def test_registry_outage_is_a_503_problem_not_a_no_match(
    app_client: TestClient,
    bank_token: str,
    registry_server: Any,
    synthetic_registry_path: Path,
    fault: dict[str, Any],
) -> None:
    person = next(export(synthetic_registry_path, "persons", 1))
    healthy = _verify(app_client, bank_token, person)
    assert healthy.status_code == 200, healthy.text
    assert healthy.json()["match"] is True

    registry_server.control(**fault)
    down = _verify(app_client, bank_token, person)
    assert down.status_code == 503, down.text
    assert down.headers["content-type"].startswith("application/problem+json")
    assert int(down.headers["retry-after"]) >= 1
    assert "match" not in down.json()

    registry_server.heal()
    again = _verify(app_client, bank_token, person)
    assert again.status_code == 200, again.text
    assert again.json()["match"] is True


def test_userinfo_over_the_http_registry_answers_then_503s_in_an_outage(
    hoviyat_app: FastAPI, registry_server: Any, synthetic_registry_path: Path
) -> None:
    """userinfo reads the registry from a worker thread here: the adapter blocks."""
    assert hoviyat_app.state.hoviyat.registries.blocking
    rp = register_rp(hoviyat_app, "rp-outage")
    person = living_person(synthetic_registry_path)
    login = log_in(hoviyat_app.state.hoviyat.db, person["national_code"])
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer, follow_redirects=False) as browser:
        verifier, challenge = pkce_pair()
        code = code_for(hoviyat_app, browser, authorization_params(rp, challenge), login)
        tokens = exchange(browser, rp, code, verifier)
        assert tokens.status_code == 200, tokens.text
        bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        healthy = browser.get("/userinfo", headers=bearer)
        assert healthy.status_code == 200, healthy.text
        assert healthy.json()["sub"]

        registry_server.control(error_rate=1)
        down = browser.post("/userinfo", headers=bearer)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert int(down.headers["retry-after"]) >= 1
        registry_server.heal()
        assert browser.get("/userinfo", headers=bearer).status_code == 200
