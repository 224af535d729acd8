"""Every JSON request model refuses fields it does not know (issue #12, #18).

A caller who sends ``validity_days`` or ``roles`` believes it has an effect; a
model that drops it silently gives the caller something it did not ask for.
The walk below covers every route of the app, so a new lax model fails here.
Form bodies (``/token``, ``/authorize``, the login pages) are not walked:
RFC 6749 §3.1 requires OAuth servers to ignore unrecognised parameters.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from ca_setup import initialise_ca
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from idp.features import FEATURES
from idp.http.schema import StrictModel


def _routes() -> Iterator[APIRoute]:
    for feature in FEATURES:
        for route in feature.router.routes:
            if isinstance(route, APIRoute):
                yield route


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models(field.annotation)
        return
    if typing.get_origin(annotation) is not None or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            yield from _models(argument)


def _request_models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for route in _routes():
        annotations = [
            param.field_info.annotation
            for param in route.dependant.body_params
            # a form: RFC 6749 §3.1
            if getattr(param.field_info, "media_type", "application/json") == "application/json"
        ]
        # A route that reads its JSON body itself after authenticating (the verifications).
        annotations.append(getattr(route.endpoint, "body_model", None))
        for annotation in annotations:
            for model in _models(annotation):
                found[f"{model.__module__}.{model.__qualname__}"] = model
    return found


def test_the_walk_finds_the_request_models_it_must_judge() -> None:
    names = set(_request_models())
    # One model per family, so a walk that silently finds nothing fails.
    for expected in (
        "idp.verification.schemas.PersonVerifyRequest",
        "idp.http.admin_clients.ClientRegistration",
        "idp.http.attestations.AttestationIn",
        "idp.http.attestations.RevokeIn",
        "idp.http.certificates.CertificateRequestIn",
        "idp.http.certificates.SubjectIn",
    ):
        assert expected in names, sorted(names)


@pytest.mark.parametrize("name", sorted(_request_models()))
def test_attack_unknown_field_in_any_request_model_is_refused(name: str) -> None:
    model = _request_models()[name]
    assert issubclass(model, StrictModel), f"{name} must derive from idp.http.schema.StrictModel"
    assert model.model_config.get("extra") == "forbid", f"{name} must forbid unknown fields"


def test_attack_validity_days_sent_to_attestation_verify_is_refused_not_ignored(
    hoviyat_app: FastAPI,
    app_client: TestClient,
    bank_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    initialise_ca(hoviyat_app, monkeypatch)
    response = app_client.post(
        "/v1/attestations/verify",
        json={"attestation": "x" * 20, "validity_days": 3650},
        headers={"Authorization": f"Bearer {bank_token}"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "validity_days" in response.json()["detail"]


def test_attack_roles_smuggled_into_attestation_revoke_body_are_refused(
    app_client: TestClient, bank_token: str
) -> None:
    response = app_client.post(
        "/v1/attestations/no-such-attestation/revoke",
        json={"reason": "holder request", "roles": ["admin"]},
        headers={"Authorization": f"Bearer {bank_token}"},
    )
    assert response.status_code == 422, response.text
    assert "roles" in response.json()["detail"]
