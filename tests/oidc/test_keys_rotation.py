"""``hoviyat keys``: a key is published before it signs and stays until its tokens expire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jose import jwt as jose_jwt
from oidc_support import (
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    jwk_for,
    log_in,
    pkce_pair,
)
from typer.testing import CliRunner

from idp.cli.keys import keys_app
from idp.settings import Settings
from idp.tokens import KeyRing
from verifiers.registry.base import Person


@pytest.fixture
def cli(hoviyat_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("HOVIYAT_DATA_DIR", str(hoviyat_settings.data_dir))
    monkeypatch.setenv("HOVIYAT_DATABASE_URL", hoviyat_settings.resolved_database_url)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(keys_app, list(args))

    yield invoke


def fresh_jwks(app: FastAPI) -> dict[str, Any]:
    """The JWKS as a worker that just started (or reloaded) would publish it."""
    hoviyat = app.state.hoviyat
    return KeyRing(hoviyat.db, hoviyat.secrets.key_encryption_key).jwks()


def test_rotation_publishes_first_then_signs_and_keeps_the_old_key(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person, cli: Any
) -> None:
    listed = cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    keys = json.loads(listed.output)
    assert {k["alg"] for k in keys if k["state"] == "active"} == {"ES256", "PS256", "RS256"}
    assert all("private" not in json.dumps(k) for k in keys)
    (old_kid,) = [k["kid"] for k in keys if k["alg"] == "ES256" and k["state"] == "active"]

    verifier, challenge = pkce_pair()
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    old_tokens = exchange(asgi_browser, rp, code, verifier).json()
    old_token = old_tokens["id_token"]
    assert jose_jwt.get_unverified_header(old_token)["kid"] == old_kid

    first = cli("rotate", "--json")
    assert first.exit_code == 0, first.output
    step = json.loads(first.output)
    assert step["activated"] is None  # only published: nobody has it cached yet
    new_kid = step["published"]
    published = {k["kid"] for k in fresh_jwks(hoviyat_app)["keys"]}
    assert {old_kid, new_kid} <= published

    too_soon = cli("rotate")
    assert too_soon.exit_code != 0
    assert "--force" in too_soon.output

    second = cli("rotate", "--force", "--json")
    assert second.exit_code == 0, second.output
    step = json.loads(second.output)
    assert step["activated"] == new_kid
    assert step["retired"] == old_kid
    states = {k["kid"]: k["state"] for k in json.loads(cli("list", "--json").output)}
    assert states[old_kid] == "retired"
    assert states[new_kid] == "active"
    assert states[step["published"]] == "next"

    jwks = fresh_jwks(hoviyat_app)
    assert {old_kid, new_kid, step["published"]} <= {k["kid"] for k in jwks["keys"]}
    # A token the retired key signed still verifies against the published set...
    claims = jose_jwt.decode(
        old_token,
        jwk_for(old_token, jwks),
        algorithms=["ES256"],
        audience=rp.client_id,
        access_token=old_tokens["access_token"],
    )
    assert claims["aud"] == rp.client_id
    # ...and new tokens are signed by the promoted key.
    hoviyat = hoviyat_app.state.hoviyat
    signer = KeyRing(hoviyat.db, hoviyat.secrets.key_encryption_key)
    assert jose_jwt.get_unverified_header(signer.sign({"x": 1}))["kid"] == new_kid

    assert cli("rotate", "--alg", "HS256").exit_code != 0
