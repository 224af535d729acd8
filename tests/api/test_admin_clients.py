"""The admin API for clients: create, read, list, disable; admins only; audited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from idp.app import create_app
from idp.settings import Settings
from idp.storage.models import AuditEntry


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_creates_an_oidc_client_that_can_then_be_disabled(
    app_client: TestClient, admin_token: str
) -> None:
    created = app_client.post(
        "/v1/admin/clients",
        json={
            "name": "Tax portal",
            "service_code": "demo-tax-portal",
            "redirect_uris": ["https://tax.example/callback"],
        },
        headers=_auth(admin_token),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert len(body["client_secret"]) >= 43
    client_id = body["client_id"]

    read = app_client.get(f"/v1/admin/clients/{client_id}", headers=_auth(admin_token)).json()
    assert read["redirect_uris"] == ["https://tax.example/callback"]
    assert "client_secret" not in read
    listed = app_client.get("/v1/admin/clients", headers=_auth(admin_token)).json()
    assert client_id in {c["client_id"] for c in listed}

    disabled = app_client.post(f"/v1/admin/clients/{client_id}/disable", headers=_auth(admin_token))
    assert disabled.status_code == 200, disabled.text

    assert disabled.json()["disabled"] is True
    with app_client.app.state.hoviyat.db.read() as session:  # type: ignore[attr-defined]
        operations = [
            e.operation
            for e in session.exec(
                select(AuditEntry).where(AuditEntry.event_type == "client_changed")
            )
        ]
    assert operations == ["create", "disable"]


def test_bad_registrations_and_non_admins_are_refused(
    app_client: TestClient, admin_token: str, bank_token: str
) -> None:
    plain_http = app_client.post(
        "/v1/admin/clients",
        json={
            "name": "x",
            "service_code": "demo-tax-portal",
            "redirect_uris": ["http://evil.example/cb"],
        },
        headers=_auth(admin_token),
    )
    assert plain_http.status_code == 422
    assert plain_http.json()["type"].endswith("/invalid-client-registration")
    unknown_service = app_client.post(
        "/v1/admin/clients",
        json={"name": "x", "service_code": "nope"},
        headers=_auth(admin_token),
    )
    assert unknown_service.status_code == 422 and "nope" in unknown_service.json()["detail"]
    assert app_client.get("/v1/admin/clients", headers=_auth(bank_token)).status_code == 403
    assert app_client.get("/v1/admin/clients/ghost", headers=_auth(admin_token)).status_code == 404


def test_a_disabled_client_gets_no_more_tokens(app_client: TestClient, admin_token: str) -> None:
    created = app_client.post(
        "/v1/admin/clients",
        json={"name": "Back office", "service_code": "demo-match-only"},
        headers=_auth(admin_token),
    ).json()
    credentials = (created["client_id"], created["client_secret"])
    grant = {"grant_type": "client_credentials"}
    assert app_client.post("/token", data=grant, auth=credentials).status_code == 200
    app_client.post(f"/v1/admin/clients/{created['client_id']}/disable", headers=_auth(admin_token))
    refused = app_client.post("/token", data=grant, auth=credentials)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_admin_api_can_be_switched_off(hoviyat_settings: Settings, admin_token: str) -> None:
    # HOVIYAT_ADMIN_API=false: the feature's row is left out, its paths are unknown.
    app = create_app(hoviyat_settings.model_copy(update={"admin_api": False}))
    try:
        with TestClient(app, base_url=hoviyat_settings.issuer) as client:
            listed = client.get("/v1/admin/clients", headers=_auth(admin_token))
            assert listed.status_code == 404
            assert "/v1/admin/clients" not in client.get("/openapi.json").json()["paths"]
    finally:
        app.state.hoviyat.close()
