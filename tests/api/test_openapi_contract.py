"""The OpenAPI document is a contract, and the bounds it states hold (#18).

Who may call each operation, every status it answers and in which media type,
strict date-times, bounded integers, and ``Allow`` naming every method a path
serves. ``test_schemathesis_all.py`` checks the answers against the document;
these tests check the document itself and the attacks the issue names.
"""

from __future__ import annotations

from typing import Any

import pytest
from ca_setup import initialise_ca
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixtures_app import client_token

from idp.clients import create_client
from idp.http.openapi import HANDLER_STATUSES, OAUTH_ENDPOINTS, SCOPES, declared_routes
from idp.problems import PROBLEM_MEDIA_TYPE

HUGE = "9" * 30  # beyond 64 bits: OverflowError in SQLite's driver


@pytest.fixture
def document(hoviyat_app: FastAPI) -> dict[str, Any]:
    return hoviyat_app.openapi()


@pytest.fixture
def auditor_token(hoviyat_app: FastAPI, app_client: TestClient) -> str:
    hoviyat = hoviyat_app.state.hoviyat
    with hoviyat.db.session() as session:
        made = create_client(
            session, hoviyat.secrets.client_secret_key, name="auditor",
            service_code="hoviyat-admin", roles=["auditor"], client_id="only-auditor",
        )  # fmt: skip
        secret = made.client_secret
    assert secret is not None
    return client_token(app_client, "only-auditor", secret)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_document_declares_how_callers_authenticate(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    flow = schemes["clientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"].endswith("/token")
    assert "persons.verify" in flow["scopes"]
    assert schemes["clientSecretBasic"] == {**schemes["clientSecretBasic"], "scheme": "basic"}
    assert schemes["personAccessToken"]["scheme"] == "bearer"


def test_attack_caller_reads_no_role_from_the_document_every_operation_states_its_access(
    hoviyat_app: FastAPI, document: dict[str, Any]
) -> None:
    """Each operation says who may call it, and the roles it names are the ones enforced."""
    for method, path, operation in _operations(document):
        assert "security" in operation, f"{method} {path}"
        assert "**Access:**" in operation["description"], f"{method} {path}"
    enforced = {
        (method, route.path_format): sorted(
            {
                role
                for dependency in route.dependant.dependencies
                for role in getattr(dependency.call, "required_roles", ())
            }
        )
        for route in declared_routes(hoviyat_app.routes)
        for method in route.methods or ()
    }
    for method, path, operation in _operations(document):
        roles = enforced.get((method, path)) or None
        assert operation.get("x-required-roles") == roles, f"{method} {path}"
        if roles:
            assert operation["security"] == [{"clientCredentials": []}], f"{method} {path}"
    verify = document["paths"]["/v1/persons/verify"]["post"]
    assert verify["security"] == [{"clientCredentials": ["persons.verify"]}]
    assert document["paths"]["/v1/admin/clients"]["post"]["x-required-roles"] == ["admin"]


def test_attack_undocumented_refusals_every_operation_lists_its_problem_statuses(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        for status in ("400", "413"):
            assert status in responses, f"{method} {path} lacks {status}"
        if operation.get("security") and operation["security"] != [
            {"clientSecretBasic": []},
            {},
        ]:
            assert "401" in responses, f"{method} {path} lacks 401"
        if "{" in path:
            assert "422" in responses, f"{method} {path} lacks 422"
        for status, response in responses.items():
            if status.startswith(("4", "5")) and path not in OAUTH_ENDPOINTS:
                assert PROBLEM_MEDIA_TYPE in response.get("content", {}), (
                    f"{method} {path} {status}"
                )
                assert "application/json" not in response["content"], f"{method} {path} {status}"
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_contract_tables_name_only_operations_that_exist(document: dict[str, Any]) -> None:
    served = {f"{method} {path}" for method, path, _operation in _operations(document)}
    assert set(HANDLER_STATUSES) <= served, set(HANDLER_STATUSES) - served
    assert set(SCOPES) <= served, set(SCOPES) - served


def test_document_date_times_are_strings_not_numbers(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/v1/audit/entries"]["get"]["parameters"]
    until = next(p for p in parameters if p["name"] == "until")
    assert {"type": "string", "format": "date-time"} in until["schema"]["anyOf"]


@pytest.mark.parametrize("until", ["0.5", "1700000000", "2026-01-01T00:00:00"])
def test_attack_number_or_naive_time_as_audit_date_time_is_refused(
    app_client: TestClient, auditor_token: str, until: str
) -> None:
    response = app_client.get(
        "/v1/audit/entries",
        params={"until": until},
        headers={"Authorization": f"Bearer {auditor_token}"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert "until" in response.json()["detail"]


def test_rfc3339_audit_date_time_is_accepted(app_client: TestClient, auditor_token: str) -> None:
    response = app_client.get(
        "/v1/audit/entries",
        params={"until": "2030-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {auditor_token}"},
    )
    assert response.status_code == 200, response.text


def test_attack_integer_beyond_64_bits_in_audit_cursor_is_a_422_not_a_500(
    app_client: TestClient, auditor_token: str
) -> None:
    response = app_client.get(
        f"/v1/audit/entries?after={HUGE}", headers={"Authorization": f"Bearer {auditor_token}"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert "after" in response.json()["detail"]


def test_attack_integer_beyond_64_bits_in_status_list_path_is_a_422_not_a_500(
    hoviyat_app: FastAPI, app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    initialise_ca(hoviyat_app, monkeypatch)
    response = app_client.get(f"/v1/attestations/status-lists/{HUGE}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)


def test_every_integer_parameter_of_the_document_is_bounded(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            variants = schema.get("anyOf", [schema])
            for variant in variants:
                if variant.get("type") == "integer":
                    assert "maximum" in variant, f"{method} {path} {parameter['name']}"
                    assert "minimum" in variant, f"{method} {path} {parameter['name']}"


def test_attack_options_hides_a_served_method_allow_names_every_method(
    app_client: TestClient,
) -> None:
    options = app_client.options("/v1/admin/clients")
    assert options.status_code == 204
    assert set(options.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    refused = app_client.put("/v1/admin/clients")
    assert refused.status_code == 405
    assert set(refused.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert refused.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)


@pytest.mark.parametrize("invalidity_date", [0.5, 1700000000, "0.5"])
def test_attack_number_as_revocation_invalidity_date_is_refused(
    app_client: TestClient, admin_token: str, invalidity_date: object
) -> None:
    response = app_client.post(
        "/v1/certificates/01/revoke",
        json={"reason": "keyCompromise", "invalidity_date": invalidity_date},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status_code == 422, response.text
    assert "invalidity_date" in response.json()["detail"]


def _integers(schema: dict[str, Any], components: dict[str, Any], at: str) -> list[str]:
    """Paths of integer schemas under ``schema``, with whether they are bounded."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _integers(components[name], components, f"{at}>{name}")
    found = []
    if schema.get("type") == "integer" and not {"minimum", "maximum"} <= set(schema):
        found.append(at)
    for key in ("anyOf", "oneOf", "allOf"):
        for index, variant in enumerate(schema.get(key, [])):
            found += _integers(variant, components, f"{at}.{key}[{index}]")
    for name, child in schema.get("properties", {}).items():
        found += _integers(child, components, f"{at}.{name}")
    if isinstance(schema.get("items"), dict):
        found += _integers(schema["items"], components, f"{at}[]")
    return found


def test_every_integer_in_a_request_body_is_bounded(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    unbounded = [
        where
        for method, path, operation in _operations(document)
        for media, content in operation.get("requestBody", {}).get("content", {}).items()
        for where in _integers(content["schema"], components, f"{method} {path} {media}")
    ]
    assert not unbounded, unbounded
