"""The whole API against its own OpenAPI document, with every schemathesis check (#18).

Every operation of the document, on both stores, with each kind of caller:
no token, a back-office verification client, and clients holding only
``admin``, only ``ca_operator`` or only ``auditor``. Cases are valid and
invalid requests generated from the document; every built-in check runs
(status codes, media types, headers and bodies as documented, no 5xx, valid
data accepted, invalid data rejected, authentication enforced, 405 with
``Allow`` for methods not served). Runs are derandomized, so a failure here
is the same failure on the next run.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from ca_setup import initialise_ca
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixtures_app import client_token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from idp.clients import create_client

TOKEN_KINDS = ("none", "verification", "admin", "ca_operator", "auditor")

# Refusals of schema-valid requests whose rule lives in data the document
# cannot state: check digits, what the registry or the log holds, which
# clients, profiles, service codes and interactions exist, and "at least one
# of" across optional parameters. Each is a documented status of its
# operation; any other refusal of valid data fails the run.
REFUSED_BY_DATA: dict[str, frozenset[int]] = {
    "POST /v1/persons/verify": frozenset({422}),  # check digits
    "POST /v1/mobile/verify": frozenset({422}),
    "POST /v1/legal-entities/verify": frozenset({422}),
    "POST /v1/legal-entities/{national_id}/representatives/verify": frozenset({422}),
    "GET /v1/identifiers/validate": frozenset({400}),  # none of the three given
    "GET /v1/audit/entries": frozenset({422}),  # national code filter: check digits
    "GET /v1/audit/export": frozenset({422}),
    "GET /v1/audit/proofs/inclusion": frozenset({400}),  # beyond the log's size
    "GET /v1/audit/proofs/consistency": frozenset({400}),
    "GET /v1/certificates/{serial}": frozenset({400}),  # serial 0
    "POST /v1/certificates/{serial}/revoke": frozenset({400}),  # serial 0, unknown reason
    "POST /v1/certificates": frozenset({400, 422}),  # unknown profile, CSR contents
    "POST /v1/admin/clients": frozenset({422}),  # unknown service code or role
    "POST /v1/acme/eab-keys": frozenset({422}),  # check digit, unregistered entity, service
    "POST /v1/clients/initial-tokens": frozenset({422}),  # as for EAB keys
    "POST /v1/clients/statement-issuers": frozenset({422}),  # as above, and the JWKS's keys
    "POST /v1/reconciliations": frozenset({422}),  # the CSV's contents
    "GET /authorize": frozenset({400}),  # unknown client or redirect URI (RFC 6749 §4.1.2.1)
    "POST /authorize": frozenset({400}),
    "GET /authorize/complete": frozenset({400}),  # unknown interaction
    "GET /logout": frozenset({400}),
    "POST /logout": frozenset({400}),
    "POST /token": frozenset({400}),  # unsupported grant, unknown code
    "POST /introspect": frozenset({400}),
    "POST /revoke": frozenset({400}),
    "POST /par": frozenset({400}),  # parameters /authorize would refuse (RFC 9126 §2.3)
    "POST /v1/attestations/verify": frozenset({400}),  # not an SD-JWT
    "POST /v1/attestations/shares": frozenset({400}),
}
NUL_REFUSED = "problems/invalid-characters"
EXAMPLES_FOR_FITTING_CALLER = 25
EXAMPLES_FOR_OTHER_CALLERS = 5


@pytest.fixture
def tokens(
    hoviyat_app: FastAPI,
    app_client: TestClient,
    demo_clients: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict:
    """An access token per kind of caller, each client holding one role only; the CA made."""
    initialise_ca(hoviyat_app, monkeypatch)
    hoviyat = hoviyat_app.state.hoviyat
    secrets = {}
    with hoviyat.db.session() as session:
        for role in ("admin", "ca_operator", "auditor"):
            made = create_client(
                session,
                hoviyat.secrets.client_secret_key,
                name=f"only {role}",
                service_code="hoviyat-admin",
                roles=[role],
                client_id=f"only-{role.replace('_', '-')}",
            )
            secrets[role] = (made.client.client_id, made.client_secret)
    found: dict[str, str | None] = {"none": None}
    found["verification"] = client_token(app_client, "demo-bank", demo_clients["demo-bank"])
    for role, (client_id, secret) in secrets.items():
        found[role] = client_token(app_client, client_id, secret)
    return found


def _fits(operation: schemathesis.APIOperation, kind: str) -> bool:
    """Whether ``kind`` of caller is the one the operation is for (it gets the most cases)."""
    definition = operation.definition.raw
    roles = definition.get("x-required-roles")
    if roles:
        return kind in roles
    schemes = {name for requirement in definition.get("security", []) for name in requirement}
    if "clientCredentials" in schemes:
        return kind == "verification"
    return kind == "none"


def _accepts_valid_data(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """``positive_data_acceptance``, but for the refusals listed in :data:`REFUSED_BY_DATA`."""
    if response.status_code in REFUSED_BY_DATA.get(case.operation.label, frozenset()):
        return None
    if response.status_code == 400 and NUL_REFUSED in response.text:
        return None  # the front door's documented 400 for a NUL byte, on every operation
    return positive_data_acceptance(ctx, response, case)


def _all_checks() -> list[Any]:
    load_all_checks()
    checks = list(CHECKS.get_all())
    return [_accepts_valid_data if c is positive_data_acceptance else c for c in checks]


@pytest.mark.parametrize("kind", TOKEN_KINDS)
def test_every_operation_answers_as_its_openapi_document_says(
    hoviyat_app: FastAPI, tokens: dict[str, str | None], kind: str
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", hoviyat_app)
    token = tokens[kind]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    checks = _all_checks()
    failures: list[str] = []
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # Ok | Err: an Err raises here
        cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes))
        examples = (
            EXAMPLES_FOR_FITTING_CALLER if _fits(operation, kind) else EXAMPLES_FOR_OTHER_CALLERS
        )

        @given(case=cases)
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            sent = {**dict(case.headers or {}), **headers} if headers else None
            response = case.call(headers=sent)
            case.validate_response(response, checks=checks, headers=sent)

        try:
            run()
        except (Exception, BaseExceptionGroup) as failure:  # all in one report
            failures.append(f"{operation.label}: {type(failure).__name__}: {str(failure)[:1500]}")
    assert not failures, "\n\n".join(failures)
