"""``hoviyat clients create`` with OIDC options, as an administrator runs it (a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from joserfc.jwk import ECKey
from sector_server import SectorServer
from sqlmodel import select
from typer.testing import CliRunner

from idp.cli.clients import clients_app
from idp.cli.setup import initialise
from idp.settings import Settings
from idp.storage.engine import Database
from idp.storage.models import Client


def hoviyat(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def cli_env(hoviyat_settings: Settings) -> dict[str, str]:
    initialise(hoviyat_settings)
    return {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(hoviyat_settings.data_dir),
        "HOVIYAT_DATABASE_URL": hoviyat_settings.resolved_database_url,
        "HOVIYAT_REGISTRY_PATH": str(hoviyat_settings.resolved_registry_path),
    }


def test_clients_create_registers_an_oidc_client(
    cli_env: dict[str, str], tmp_path: Path, database_url: str
) -> None:
    key = ECKey.generate_key("P-256", auto_kid=True)
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    # The sector's document lists both redirect URIs (OIDC Core §8.1).
    sector_doc = json.dumps(["https://tax.example/cb", "https://tax.example/cb2"]).encode()
    env = {**cli_env, "HOVIYAT_SECTOR_IDENTIFIER_ALLOW_HTTP_LOOPBACK": "true"}
    with SectorServer(sector_doc) as sector:
        created = hoviyat(
            ["clients", "create", "--name", "Tax app", "--service", "demo-tax-portal",
             "--redirect-uri", "https://tax.example/cb", "--redirect-uri", "https://tax.example/cb2",
             "--post-logout-redirect-uri", "https://tax.example/bye",
             "--auth-method", "private_key_jwt", "--jwks-file", str(jwks_file),
             "--id-token-alg", "RS256", "--sector-identifier", sector.url, "--json"],
            env,
        )  # fmt: skip
    assert created.returncode == 0, created.stderr
    client_id = json.loads(created.stdout)["client_id"]
    database = Database(database_url)
    try:
        with database.read() as session:
            client = session.exec(select(Client).where(Client.client_id == client_id)).one()
    finally:
        database.dispose()
    assert client.redirect_uris == ["https://tax.example/cb", "https://tax.example/cb2"]
    assert client.post_logout_redirect_uris == ["https://tax.example/bye"]
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.token_endpoint_auth_method == "private_key_jwt"
    assert client.secret_digest is None  # no secret for a key-authenticated client
    assert client.id_token_signed_response_alg == "RS256"
    assert client.sector_identifier == sector.url
    assert client.jwks is not None and client.jwks["keys"][0]["kid"] == key.kid


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--redirect-uri", "http://tax.example/cb"], "https"),
        (["--redirect-uri", "https://tax.example/cb#frag"], "fragment"),
        (["--grant-type", "authorization_code"], "redirect-uri"),
        (["--grant-type", "implicit", "--redirect-uri", "https://a.example/cb"], "grant types"),
        (["--redirect-uri", "https://a.example/cb", "--id-token-alg", "HS256"], "algorithm"),
        (["--redirect-uri", "https://a.example/cb", "--auth-method", "private_key_jwt"], "jwks"),
        (["--redirect-uri", "https://a.example/cb", "--auth-method", "bogus"], "auth method"),
        # A public client (none) is for the code flow only, its tokens DPoP-bound.
        (["--auth-method", "none", "--grant-type", "client_credentials"], "client_credentials"),
    ],
)
def test_clients_create_refuses_what_it_could_not_honour(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    # In-process (the real command function) to keep the many cases fast.
    for name in ("HOVIYAT_DATA_DIR", "HOVIYAT_DATABASE_URL", "HOVIYAT_REGISTRY_PATH"):
        monkeypatch.setenv(name, cli_env[name])
    result = CliRunner().invoke(
        clients_app, ["create", "--name", "x", "--service", "demo-tax-portal", *extra]
    )
    assert result.exit_code != 0
    assert message in result.output.lower()
    assert len(result.output.strip().splitlines()) == 1
