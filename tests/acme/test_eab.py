"""External account binding (RFC 8555 §7.3.4): required, one account per key, MAC checked
in constant time, and administered only by admins (CLI and API), audited with the entity.

Attacks: no EAB, a wrong MAC, an unknown or revoked kid, a key reused for a second
account (and raced from two workers), an EAB over another key than the account's,
an EAB for another URL, a nonce or another algorithm in the EAB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from acme_cast import ACME_SERVICE, active_entity_ids
from acme_client import AccountKey, AcmeClient, Eab, b64url, b64url_decode, sign_jws
from fastapi.testclient import TestClient
from sqlmodel import col, select

from idp.acme import eab
from idp.audit.log import subject_hash
from idp.context import Hoviyat
from idp.secrets_at_rest import KeyDoesNotOpen, Purpose, open_secret
from idp.storage import acme_eab
from idp.storage.models import AuditEntry
from verifiers.identifiers import national_id_check_digit

State = Callable[[], dict[str, object]]
ERR = "urn:ietf:params:acme:error:"


def problem(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["type"] == ERR + error, response.text


def _new_account_with(client: AcmeClient, binding: object) -> httpx.Response:
    payload = {"termsOfServiceAgreed": True, "externalAccountBinding": binding}
    return client.post(client.url("newAccount"), payload, use_jwk=True, check=False)


def test_attack_account_without_eab_is_refused(acme_client: AcmeClient, state: State) -> None:
    before = state()
    problem(acme_client.new_account(check=False), 400, "externalAccountRequired")
    assert state() == before


def test_attack_eab_with_a_wrong_mac_is_refused(
    acme_client: AcmeClient, eab_key: Eab, make_eab: Callable[[], Eab], state: State
) -> None:
    other = make_eab()
    before = state()
    for wrong in (other.hmac_key, b64url(b"\0" * 32), b64url(b"")):
        problem(acme_client.new_account(eab_key.kid, wrong, check=False), 403, "unauthorized")
    assert state() == before
    assert acme_client.new_account(eab_key.kid, eab_key.hmac_key).status_code == 201


def test_attack_eab_with_a_truncated_or_empty_mac_is_refused(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    binding = acme_client.eab(eab_key.kid, eab_key.hmac_key)
    mac = b64url_decode(binding["signature"])
    for cut in (mac[:16], mac[:1], b""):
        response = _new_account_with(acme_client, {**binding, "signature": b64url(cut)})
        problem(response, 403, "unauthorized")
    assert state() == before


def test_attack_unknown_eab_kid_is_refused(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    response = acme_client.new_account("no-such-kid", eab_key.hmac_key, check=False)
    problem(response, 403, "unauthorized")
    assert state() == before


def test_attack_revoked_eab_key_is_refused(
    acme_client: AcmeClient, eab_key: Eab, hoviyat: Hoviyat, state: State
) -> None:
    with hoviyat.db.session() as session:
        eab.revoke(session, eab_key.kid)
    before = state()
    response = acme_client.new_account(eab_key.kid, eab_key.hmac_key, check=False)
    problem(response, 403, "unauthorized")
    assert state() == before


def test_attack_eab_key_reused_for_a_second_account_is_refused(
    acme_account: AcmeClient, make_client: Callable[..., AcmeClient], eab_key: Eab, state: State
) -> None:
    before = state()
    second = make_client()
    response = second.new_account(eab_key.kid, eab_key.hmac_key, check=False)
    problem(response, 403, "unauthorized")
    assert state() == before


def test_attack_eab_key_raced_for_two_accounts_from_two_workers_binds_one(
    make_client: Callable[..., AcmeClient],
    make_eab: Callable[[], Eab],
    other_app: TestClient,
    hoviyat: Hoviyat,
) -> None:
    for _ in range(4):
        eab_key = make_eab()
        here = make_client()
        there = AcmeClient(other_app, here.directory_url, AccountKey.generate())
        bodies = []
        for client in (here, there):
            payload = {
                "termsOfServiceAgreed": True,
                "externalAccountBinding": client.eab(eab_key.kid, eab_key.hmac_key),
            }
            bodies.append(client.sign(client.url("newAccount"), payload, use_jwk=True))
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(client.send, client.url("newAccount"), body)
                for client, body in zip((here, there), bodies, strict=True)
            ]
            statuses = sorted(f.result().status_code for f in futures)
        assert statuses == [201, 403]
        with hoviyat.db.read() as session:
            row = acme_eab.get(session, eab_key.kid)
            assert row is not None and row.account_id is not None


def test_attack_eab_over_another_key_is_refused(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    other = AccountKey.generate()
    protected = {"alg": "HS256", "kid": eab_key.kid, "url": acme_client.url("newAccount")}
    mac_key = b64url_decode(eab_key.hmac_key)
    binding = sign_jws(None, protected, json.dumps(other.public_jwk).encode(), mac_key=mac_key)
    problem(_new_account_with(acme_client, binding), 403, "unauthorized")
    assert state() == before


def test_attack_eab_for_another_url_is_refused(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    for url in (acme_client.url("newOrder"), acme_client.url("newAccount") + "/"):
        binding = acme_client.eab(eab_key.kid, eab_key.hmac_key, url=url)
        problem(_new_account_with(acme_client, binding), 403, "unauthorized")
    assert state() == before


def _binding(client: AcmeClient, eab_key: Eab, **header: object) -> dict[str, str]:
    protected: dict[str, object] = {
        "alg": "HS256",
        "kid": eab_key.kid,
        "url": client.url("newAccount"),
    }
    protected.update(header)
    mac_key = b64url_decode(eab_key.hmac_key)
    return sign_jws(None, protected, json.dumps(client.key.public_jwk).encode(), mac_key=mac_key)


def test_attack_eab_with_a_nonce_is_malformed(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    binding = _binding(acme_client, eab_key, nonce=acme_client.new_nonce())
    problem(_new_account_with(acme_client, binding), 400, "malformed")
    assert state() == before


@pytest.mark.parametrize("alg", ["HS512", "none", "ES256", "RS256"])
def test_attack_eab_with_another_algorithm_is_refused(
    acme_client: AcmeClient, eab_key: Eab, state: State, alg: str
) -> None:
    before = state()
    binding = _binding(acme_client, eab_key, alg=alg)
    problem(_new_account_with(acme_client, binding), 400, "badSignatureAlgorithm")
    assert state() == before


@pytest.mark.parametrize(
    "binding", ["x", 1, [], {}, {"protected": "", "payload": "", "signature": "", "header": {}}]
)
def test_attack_eab_that_is_not_a_flattened_jws_is_malformed(
    acme_client: AcmeClient, eab_key: Eab, state: State, binding: object
) -> None:
    before = state()
    problem(_new_account_with(acme_client, binding), 400, "malformed")
    assert state() == before


def test_the_mac_key_is_sealed_at_rest_and_bound_to_its_kid(
    eab_key: Eab, make_eab: Callable[[], Eab], hoviyat: Hoviyat
) -> None:
    other = make_eab()
    raw = b64url_decode(eab_key.hmac_key)
    kek = hoviyat.secrets.key_encryption_key
    with hoviyat.db.read() as session:
        row = acme_eab.get(session, eab_key.kid)
        other_row = acme_eab.get(session, other.kid)
    assert row is not None and other_row is not None
    assert raw not in row.hmac_key_sealed
    assert open_secret(kek, Purpose.ACME_EAB, row.kid, row.hmac_key_sealed) == raw
    # A sealed key copied onto another key's row does not open there.
    with pytest.raises(KeyDoesNotOpen):
        open_secret(kek, Purpose.ACME_EAB, other_row.kid, row.hmac_key_sealed)


def _events(hoviyat: Hoviyat, event_type: str) -> list[AuditEntry]:
    with hoviyat.db.read() as session:
        statement = (
            select(AuditEntry)
            .where(AuditEntry.event_type == event_type)
            .order_by(col(AuditEntry.id))
        )
        return list(session.exec(statement))


# -- the admin API ---------------------------------------------------------------------

EAB_KEYS = "/v1/acme/eab-keys"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_creates_lists_and_revokes_keys_and_each_step_is_audited(
    app_client: TestClient,
    admin_token: str,
    acme_entity: str,
    hoviyat: Hoviyat,
    make_client: Callable[..., AcmeClient],
) -> None:
    created = app_client.post(
        EAB_KEYS,
        json={"national_id": acme_entity, "service_code": ACME_SERVICE},
        headers=_bearer(admin_token),
    )
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    key = created.json()
    assert key["national_id"] == acme_entity and key["service_code"] == ACME_SERVICE
    client = make_client()
    assert client.new_account(key["kid"], key["hmac_key"]).status_code == 201

    listed = app_client.get(EAB_KEYS, headers=_bearer(admin_token)).json()
    (entry,) = [k for k in listed if k["kid"] == key["kid"]]
    assert entry["status"] == "bound" and entry["account_id"]
    assert "hmac_key" not in json.dumps(listed) and key["hmac_key"] not in json.dumps(listed)

    revoked = app_client.delete(f"{EAB_KEYS}/{key['kid']}", headers=_bearer(admin_token))
    assert revoked.status_code == 200
    assert revoked.json()["account_revoked"] == entry["account_id"]
    # The account the key bound is revoked with it.
    problem(client.post_as_get(str(client.account_url), check=False), 403, "unauthorized")
    again = app_client.delete(f"{EAB_KEYS}/{key['kid']}", headers=_bearer(admin_token))
    assert again.status_code == 409

    events = _events(hoviyat, "acme_eab_key")
    assert [e.operation for e in events] == ["create", "revoke"]
    assert all(e.actor_id == "demo-admin" for e in events)
    assert all(
        e.subject_hash == subject_hash(hoviyat.secrets.subject_pepper, acme_entity) for e in events
    )


def test_attack_client_without_the_admin_role_cannot_touch_eab_keys(
    app_client: TestClient, bank_token: str, acme_entity: str, eab_key: Eab, state: State
) -> None:
    before = state()
    body = {"national_id": acme_entity, "service_code": ACME_SERVICE}
    assert app_client.post(EAB_KEYS, json=body, headers=_bearer(bank_token)).status_code == 403
    assert app_client.get(EAB_KEYS, headers=_bearer(bank_token)).status_code == 403
    response = app_client.delete(f"{EAB_KEYS}/{eab_key.kid}", headers=_bearer(bank_token))
    assert response.status_code == 403
    assert app_client.post(EAB_KEYS, json=body).status_code == 401
    assert state() == before


def _valid_but_unregistered(registry_ids: list[str]) -> str:
    for n in range(10**9, 10**9 + 1000):
        body = str(n)
        candidate = body + str(national_id_check_digit(body))
        if candidate not in registry_ids:
            return candidate
    raise AssertionError("no candidate")


def test_attack_eab_key_for_an_invalid_or_unregistered_entity_or_service_is_refused(
    app_client: TestClient,
    admin_token: str,
    acme_entity: str,
    synthetic_registry_path: Path,
    state: State,
) -> None:
    before = state()
    bad_checksum = acme_entity[:-1] + str((int(acme_entity[-1]) + 1) % 10)
    unregistered = _valid_but_unregistered(active_entity_ids(synthetic_registry_path))
    for national_id, service in (
        (bad_checksum, ACME_SERVICE),
        ("123", ACME_SERVICE),
        (unregistered, ACME_SERVICE),
        (acme_entity, "no-such-service"),
    ):
        response = app_client.post(
            EAB_KEYS,
            json={"national_id": national_id, "service_code": service},
            headers=_bearer(admin_token),
        )
        assert response.status_code == 422, response.text
        assert national_id not in response.text or national_id == "123"
    assert state() == before


def test_revoking_an_unknown_key_is_404(app_client: TestClient, admin_token: str) -> None:
    response = app_client.delete(f"{EAB_KEYS}/nope", headers=_bearer(admin_token))
    assert response.status_code == 404


# -- the CLI ------------------------------------------------------------------------------

HOVIYAT = [sys.executable, "-m", "idp.cli"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        HOVIYAT + args, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_creates_lists_and_revokes_keys(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path, acme_entity: str
) -> None:
    env = {
        **os.environ,
        "HOVIYAT_DATA_DIR": str(tmp_path / "cli-data"),
        "HOVIYAT_DATABASE_URL": database_url,
        "HOVIYAT_REGISTRY_PATH": str(synthetic_registry_path),
    }
    assert _run(["init", "--json"], env).returncode == 0
    create = ["acme", "eab", "create", "--national-id", acme_entity, "--service", ACME_SERVICE]
    created = _run([*create, "--json"], env)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert len(b64url_decode(key["hmac_key"])) == 32
    listed = json.loads(_run(["acme", "eab", "list", "--json"], env).stdout)
    assert [k["kid"] for k in listed] == [key["kid"]]
    assert key["hmac_key"] not in json.dumps(listed)
    revoked = _run(["acme", "eab", "revoke", key["kid"], "--json"], env)
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked"
    again = _run(["acme", "eab", "revoke", key["kid"]], env)
    assert again.returncode != 0 and again.stderr.count("\n") == 1

    refused = _run(
        ["acme", "eab", "create", "--national-id", "12345678901", "--service", ACME_SERVICE],
        env,
    )
    assert refused.returncode != 0 and refused.stdout == ""
    assert refused.stderr.startswith("hoviyat: error:") and refused.stderr.count("\n") == 1


def test_kids_and_mac_keys_never_begin_with_a_dash(hoviyat: Hoviyat, acme_entity: str) -> None:
    """certbot, lego and ``hoviyat acme eab revoke`` read ``--eab-kid -x…`` as an option:
    one value in 64 began with "-" (a CLI test failed on one). 300 keys, 600 values:
    a draw that allowed it would show one with probability 1 - (63/64)**600 > 0.9999."""
    with hoviyat.db.session() as session:
        for _ in range(300):
            created, _row = eab.create(
                session,
                hoviyat.secrets,
                national_id=acme_entity,
                service_code=ACME_SERVICE,
                created_by="test",
            )
            assert not created.kid.startswith("-")
            assert not created.hmac_key.startswith("-")
