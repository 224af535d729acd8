"""Health, readiness, metrics and structured logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fixtures_app import free_port

from idp.app import create_app
from idp.logging import JsonFormatter
from idp.settings import Settings


def test_health_ready_and_metrics(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = app_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "writer": "ok", "registry": "ok"}
    metrics = app_client.get("/metrics")
    assert metrics.status_code == 200
    assert "hoviyat_http_requests_total" in metrics.text
    assert 'route="/readyz"' in metrics.text
    headers = app_client.get("/healthz").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_readiness_fails_when_the_registry_is_down(
    hoviyat_settings: Settings, init_report: dict[str, Any]
) -> None:
    settings = hoviyat_settings.model_copy(
        update={
            "registry_adapter": "http",
            "registry_url": f"http://127.0.0.1:{free_port()}",
            "registry_timeout_seconds": 0.5,
        }
    )
    app = create_app(settings)
    with TestClient(app) as client:
        ready = client.get("/readyz")
    app.state.hoviyat.close()
    assert ready.status_code == 503
    assert ready.headers["retry-after"]
    assert ready.json()["checks"]["registry"].startswith("unavailable")


def test_registry_outage_is_503_never_a_no_match(
    hoviyat_settings: Settings, init_report: dict[str, Any], synthetic_registry_path: Path
) -> None:
    settings = hoviyat_settings.model_copy(
        update={
            "registry_adapter": "http",
            "registry_url": f"http://127.0.0.1:{free_port()}",
            "registry_timeout_seconds": 0.5,
        }
    )
    app = create_app(settings)
    secret = {c["client_id"]: c["client_secret"] for c in init_report["demo_clients"]}
    with TestClient(app, base_url=settings.issuer) as client:
        token = client.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("demo-bank", secret["demo-bank"]),
        ).json()["access_token"]
        response = client.post(
            "/v1/persons/verify",
            json={"national_code": "0499370899"},
            headers={"Authorization": f"Bearer {token}"},
        )
    app.state.hoviyat.close()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    assert "match" not in response.json()


def test_logs_are_one_json_object_per_line(caplog: pytest.LogCaptureFixture) -> None:
    record = logging.LogRecord("hoviyat.access", logging.INFO, __file__, 1, "request", None, None)
    record.http = {"method": "GET", "route": "/healthz", "status": 200}
    line = JsonFormatter().format(record)
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["message"] == "request" and parsed["http"]["status"] == 200
