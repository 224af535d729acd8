"""openid-client v6 (Node, OpenID-certified) logs a citizen in as a FAPI 2.0 client.

An independent relying party, not written here, drives the flow over real
HTTP: discovery, a pushed authorization request signed in with
private_key_jwt and bound to its DPoP key, the login, the code redeemed with a
DPoP proof, and userinfo with the DPoP-bound token; once more with JARM, which
openid-client then validates itself. The client is registered with the fapi2
profile, so Hoviyat holds it to every rule. Skipped with the reason when node
or its package cannot be had.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from node_support import node_with
from oidc_support import (
    REDIRECT_URI,
    SERVICE,
    complete,
    finish_interaction,
    log_in,
    start,
)

from idp.clients import create_client
from idp.oidc.registration import oidc_attributes
from verifiers.registry.base import Person

NODE_DIR = Path(__file__).parent / "node"
CLIENT_ID = "rp-openid-client"


def _settings(tmp_path: Path, issuer: str, client_key: ECKey, jarm: bool) -> Path:
    path = tmp_path / "rp.json"
    dpop = ECKey.generate_key("P-256")
    path.write_text(
        json.dumps(
            {
                "issuer": issuer,
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "client_key": client_key.as_dict(private=True),
                "dpop_key": dpop.as_dict(private=True),
                "jarm": jarm,
            }
        )
    )
    return path


def _run(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(NODE_DIR / "rp.mjs"), *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("jarm", [False, True], ids=["query", "jarm"])
def test_openid_client_logs_in_through_par_dpop_and_private_key_jwt(
    hoviyat_app: FastAPI, live_server: Any, citizen: Person, tmp_path: Path, jarm: bool
) -> None:
    node = node_with(NODE_DIR, "openid-client")
    hoviyat = hoviyat_app.state.hoviyat
    client_key = ECKey.generate_key("P-256", auto_kid=True)
    attributes = oidc_attributes(
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code"],
        auth_method="private_key_jwt",
        id_token_alg="ES256",
        sector_identifier=None,
        jwks={"keys": [client_key.as_dict(private=False)]},
        profile="fapi2",
    )
    with hoviyat.db.session() as session:
        create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="openid-client",
            service_code=SERVICE,
            client_id=CLIENT_ID,
            with_secret=False,
            **attributes,
        )
    settings = _settings(tmp_path, hoviyat.settings.issuer, client_key, jarm)

    started = _run(node, "start", str(settings))
    assert started.returncode == 0, started.stderr
    request = json.loads(started.stdout)
    assert "request_uri=" in request["url"] and "scope=" not in request["url"]  # pushed
    with httpx.Client(base_url=live_server.url, follow_redirects=False) as browser:
        interaction = start(browser, request["url"])
        login = log_in(hoviyat.db, citizen.national_code)
        finish_interaction(hoviyat.db, interaction, login)
        callback = complete(browser, interaction).headers["location"]
    assert ("response=" in callback) is jarm

    args = (str(settings), callback, request["verifier"], request["state"], request["nonce"])
    finished = _run(node, "finish", *args)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert result["token_type"].lower() == "dpop"
    assert result["userinfo"]["sub"] == result["sub"]
    assert result["userinfo"]["given_name"] == citizen.first_name

    # The same callback again: the code is spent, and the client is told so.
    replayed = _run(node, "finish", *args)
    assert replayed.returncode != 0
    assert "invalid_grant" in replayed.stderr, replayed.stderr
