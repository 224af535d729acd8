"""ACME accounts (RFC 8555 §7.3) through a real client: creation with EAB, reading,
updating, deactivation, key rollover, with every key type."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from acme_cast import ACME_SERVICE
from acme_client import AccountKey, AcmeClient, Eab, sign_jws
from fastapi.testclient import TestClient
from sqlmodel import col, select

from idp.acme.paths import AcmePaths
from idp.audit.log import subject_hash
from idp.context import Hoviyat
from idp.storage import acme_accounts, acme_eab
from idp.storage.acme_accounts import AcmeAccountRow
from idp.storage.acme_eab import AcmeEabKey
from idp.storage.models import AuditEntry
from policies.certificate_profiles import load_profiles


@pytest.mark.parametrize("alg", ["ES256", "ES384", "RS256", "EdDSA"])
def test_an_account_is_created_with_eab_for_every_key_type(
    make_client: Callable[..., AcmeClient], eab_key: Eab, alg: str
) -> None:
    client = make_client(alg)
    response = client.new_account(eab_key.kid, eab_key.hmac_key)
    assert response.status_code == 201
    assert response.headers["Location"] == client.account_url
    assert response.headers["Replay-Nonce"]
    body = response.json()
    assert body["status"] == "valid"
    assert body["orders"] == client.account_url + "/orders"
    assert client.account()["status"] == "valid"


def test_the_same_key_gets_its_existing_account_with_200(acme_account: AcmeClient) -> None:
    url = acme_account.account_url
    response = acme_account.new_account(only_return_existing=True)
    assert response.status_code == 200
    assert response.headers["Location"] == url


State = Callable[[], dict[str, object]]
ERR = "urn:ietf:params:acme:error:"


def problem(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["type"] == ERR + error, response.text


def test_the_directory_lists_every_resource_eab_required_and_the_profiles(
    app_client: TestClient, acme_paths: AcmePaths
) -> None:
    response = app_client.get(acme_paths.directory)
    assert response.status_code == 200
    body = response.json()
    assert body["newNonce"] == acme_paths.new_nonce
    assert body["newAccount"] == acme_paths.new_account
    assert body["newOrder"] == acme_paths.new_order
    assert body["revokeCert"] == acme_paths.revoke_cert
    assert body["keyChange"] == acme_paths.key_change
    assert body["renewalInfo"] == acme_paths.renewal_info
    assert body["meta"]["externalAccountRequired"] is True
    profiles = load_profiles()
    assert body["meta"]["profiles"] == {
        name: profiles[name].description for name in ("tls-server", "tls-server-short")
    }


def test_the_directory_urls_use_the_public_base_whatever_the_host(
    app_client: TestClient, acme_paths: AcmePaths
) -> None:
    response = app_client.get(acme_paths.directory, headers={"Host": "evil.example"})
    assert response.json()["newAccount"] == acme_paths.new_account


def test_contacts_are_updated(acme_account: AcmeClient) -> None:
    contact = ["mailto:a@tax.example.com", "mailto:b.c+d@tax.example.com"]
    body = acme_account.update_account({"contact": contact}).json()
    assert body["contact"] == contact
    assert acme_account.account()["contact"] == contact


@pytest.mark.parametrize(
    ("contact", "error"),
    [
        (["tel:+982100000000"], "unsupportedContact"),
        (["mailto:a@tax.example.com,b@tax.example.com"], "invalidContact"),
        (["mailto:a@tax.example.com?subject=x"], "invalidContact"),
        (["mailto:not-an-address"], "invalidContact"),
        (["mailto:a@[127.0.0.1]"], "invalidContact"),
        (["mailto:" + "a" * 250 + "@x.example"], "invalidContact"),
        ([f"mailto:a{i}@tax.example.com" for i in range(5)], "invalidContact"),
        ([1], "invalidContact"),
        ("mailto:a@tax.example.com", "malformed"),
    ],
)
def test_attack_bad_contacts_are_refused_and_change_nothing(
    acme_account: AcmeClient, state: State, contact: object, error: str
) -> None:
    before = state()
    problem(acme_account.update_account({"contact": contact}, check=False), 400, error)
    assert state() == before


def test_attack_bad_contacts_refuse_a_new_account(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    response = acme_client.new_account(
        eab_key.kid, eab_key.hmac_key, contact=["tel:+98"], check=False
    )
    problem(response, 400, "unsupportedContact")
    assert state() == before


def test_attack_terms_agreed_that_is_not_a_boolean_is_malformed(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    url = acme_client.url("newAccount")
    payload = {
        "termsOfServiceAgreed": "yes",
        "externalAccountBinding": acme_client.eab(eab_key.kid, eab_key.hmac_key),
    }
    problem(acme_client.post(url, payload, use_jwk=True, check=False), 400, "malformed")
    assert state() == before


def test_only_return_existing_for_an_unknown_key_creates_nothing(
    acme_client: AcmeClient, eab_key: Eab, state: State
) -> None:
    before = state()
    response = acme_client.new_account(
        eab_key.kid, eab_key.hmac_key, only_return_existing=True, check=False
    )
    problem(response, 400, "accountDoesNotExist")
    assert state() == before


def test_attack_new_account_signed_with_a_kid_is_malformed(
    acme_account: AcmeClient, eab_key: Eab
) -> None:
    response = acme_account.post(acme_account.url("newAccount"), {}, check=False)
    problem(response, 400, "malformed")


def test_deactivation_is_final_and_audited(
    acme_account: AcmeClient, hoviyat: Hoviyat, acme_entity: str
) -> None:
    assert acme_account.deactivate().json()["status"] == "deactivated"
    problem(acme_account.deactivate(check=False), 403, "unauthorized")
    events = acme_events(hoviyat)
    assert [e.operation for e in events] == ["create", "create", "deactivate"]
    deactivated = events[-1]
    assert deactivated.event_type == "acme_account"
    assert deactivated.subject_hash == subject_hash(hoviyat.secrets.subject_pepper, acme_entity)
    assert deactivated.service_code == ACME_SERVICE
    assert deactivated.actor_id == str(acme_account.account_url).rsplit("/", 1)[1]


@pytest.mark.parametrize("status", ["valid", "revoked", "pending", 1])
def test_attack_status_other_than_deactivated_is_malformed(
    acme_account: AcmeClient, state: State, status: object
) -> None:
    before = state()
    problem(acme_account.update_account({"status": status}, check=False), 400, "malformed")
    assert state() == before


def test_attack_one_account_cannot_read_or_change_another(
    acme_account: AcmeClient,
    make_client: Callable[..., AcmeClient],
    make_eab: Callable[[], Eab],
    state: State,
) -> None:
    intruder = make_client()
    eab = make_eab()
    intruder.new_account(eab.kid, eab.hmac_key)
    before = state()
    victim = str(acme_account.account_url)
    problem(intruder.post_as_get(victim, check=False), 403, "unauthorized")
    problem(intruder.post(victim, {"status": "deactivated"}, check=False), 403, "unauthorized")
    assert state() == before


def test_attack_deactivated_accounts_key_gets_no_account_from_new_account(
    acme_account: AcmeClient, make_eab: Callable[[], Eab], state: State
) -> None:
    acme_account.deactivate()
    eab = make_eab()
    before = state()
    problem(acme_account.new_account(only_return_existing=True, check=False), 403, "unauthorized")
    problem(acme_account.new_account(eab.kid, eab.hmac_key, check=False), 403, "unauthorized")
    assert state() == before


def acme_events(hoviyat: Hoviyat) -> list[AuditEntry]:
    with hoviyat.db.read() as session:
        statement = (
            select(AuditEntry)
            .where(col(AuditEntry.event_type).like("acme%"))
            .order_by(col(AuditEntry.id))
        )
        return list(session.exec(statement))


def test_account_creation_is_audited_with_the_entity(
    acme_account: AcmeClient, hoviyat: Hoviyat, acme_entity: str, eab_key: Eab
) -> None:
    key_created, account_created = acme_events(hoviyat)
    assert (key_created.event_type, key_created.operation) == ("acme_eab_key", "create")
    assert (account_created.event_type, account_created.operation) == ("acme_account", "create")
    expected = subject_hash(hoviyat.secrets.subject_pepper, acme_entity)
    assert key_created.subject_hash == account_created.subject_hash == expected
    assert account_created.detail["eab_kid"] == eab_key.kid
    assert acme_entity not in json.dumps(account_created.detail)


@pytest.mark.parametrize(
    ("old", "new"), [("ES256", "EdDSA"), ("EdDSA", "RS256"), ("RS256", "ES384")]
)
def test_key_rollover_moves_the_account_to_the_new_key(
    make_client: Callable[..., AcmeClient], eab_key: Eab, hoviyat: Hoviyat, old: str, new: str
) -> None:
    client = make_client(old)
    client.new_account(eab_key.kid, eab_key.hmac_key)
    old_key, new_key = client.key, AccountKey.generate(new)
    response = client.key_change(new_key)
    assert response.status_code == 200
    assert response.json()["key"] == new_key.public_jwk
    assert client.account()["status"] == "valid"  # signed by the new key
    url = str(client.account_url)
    stale = client.send(url, client.sign(url, None, key=old_key))
    # The old key no longer opens the account: its signature does not verify with the
    # new key, or its algorithm does not even suit the new key's type.
    assert stale.status_code == 400
    assert stale.json()["type"] in (ERR + "malformed", ERR + "badPublicKey")
    assert client.new_account(only_return_existing=True).headers["Location"] == url
    assert acme_events(hoviyat)[-1].operation == "key_change"


def test_attack_rollover_to_a_key_in_use_is_a_conflict_naming_its_account(
    acme_account: AcmeClient,
    make_client: Callable[..., AcmeClient],
    make_eab: Callable[[], Eab],
    state: State,
) -> None:
    other = make_client()
    eab = make_eab()
    other.new_account(eab.kid, eab.hmac_key)
    before = state()
    response = acme_account.key_change(other.key, check=False)
    problem(response, 409, "conflict")
    assert response.headers["Location"] == other.account_url
    assert state() == before


def _rollover(client: AcmeClient, inner: dict[str, str]) -> httpx.Response:
    return client.post(client.url("keyChange"), json.dumps(inner).encode(), check=False)


def test_attack_rollover_inner_jws_with_another_url_is_refused(
    acme_account: AcmeClient, state: State
) -> None:
    before = state()
    new_key = AccountKey.generate()
    inner = acme_account.key_change_body(new_key, inner_url=acme_account.url("newAccount"))
    problem(_rollover(acme_account, inner), 400, "malformed")
    assert state() == before


def test_attack_rollover_with_the_wrong_old_key_is_refused(
    acme_account: AcmeClient, state: State
) -> None:
    before = state()
    new_key = AccountKey.generate()
    inner = acme_account.key_change_body(new_key, old_key=AccountKey.generate().public_jwk)
    problem(_rollover(acme_account, inner), 403, "unauthorized")
    assert state() == before


def test_attack_rollover_for_another_account_is_refused(
    acme_account: AcmeClient, state: State
) -> None:
    before = state()
    new_key = AccountKey.generate()
    other_url = str(acme_account.account_url)[:-2] + "xx"
    inner = acme_account.key_change_body(new_key, account=other_url)
    problem(_rollover(acme_account, inner), 400, "malformed")
    assert state() == before


def test_attack_rollover_inner_jws_not_signed_by_the_new_key_is_refused(
    acme_account: AcmeClient, state: State
) -> None:
    before = state()
    new_key, forger = AccountKey.generate(), AccountKey.generate()
    url = acme_account.url("keyChange")
    header = {"alg": "ES256", "jwk": new_key.public_jwk, "url": url}
    payload = {"account": acme_account.account_url, "oldKey": acme_account.key.public_jwk}
    inner = sign_jws(forger, header, json.dumps(payload).encode())
    problem(_rollover(acme_account, inner), 400, "malformed")
    assert state() == before


def test_attack_rollover_inner_jws_with_a_kid_is_refused(
    acme_account: AcmeClient, state: State
) -> None:
    before = state()
    new_key = AccountKey.generate()
    url = acme_account.url("keyChange")
    header = {"alg": "ES256", "kid": acme_account.account_url, "url": url}
    payload = {"account": acme_account.account_url, "oldKey": acme_account.key.public_jwk}
    inner = sign_jws(new_key, header, json.dumps(payload).encode())
    problem(_rollover(acme_account, inner), 400, "malformed")
    assert state() == before


def test_attack_rollover_to_the_same_key_is_refused(acme_account: AcmeClient, state: State) -> None:
    before = state()
    inner = acme_account.key_change_body(acme_account.key)
    problem(_rollover(acme_account, inner), 400, "malformed")
    assert state() == before


def test_attack_one_key_raced_with_two_eab_keys_makes_one_account_and_binds_one_key(
    make_client: Callable[..., AcmeClient],
    make_eab: Callable[[], Eab],
    other_app: TestClient,
    hoviyat: Hoviyat,
) -> None:
    for _ in range(4):
        here = make_client()
        there = AcmeClient(other_app, here.directory_url, here.key)
        keys = [make_eab(), make_eab()]
        bodies = [
            client.sign(
                client.url("newAccount"),
                {"externalAccountBinding": client.eab(key.kid, key.hmac_key)},
                use_jwk=True,
            )
            for client, key in zip((here, there), keys, strict=True)
        ]
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(client.send, client.url("newAccount"), body)
                for client, body in zip((here, there), bodies, strict=True)
            ]
            responses = [f.result() for f in futures]
        assert sorted(r.status_code for r in responses) == [200, 201]
        assert responses[0].headers["Location"] == responses[1].headers["Location"]
        with hoviyat.db.read() as session:
            bound = [acme_eab.get(session, key.kid) for key in keys]
        assert sorted(row.account_id is not None for row in bound if row) == [False, True]


def test_a_second_insert_of_a_key_is_refused_by_the_database(hoviyat: Hoviyat) -> None:
    now = datetime.now(UTC)
    with hoviyat.db.session() as session:
        for kid in ("k1", "k2"):
            acme_eab.insert(
                session,
                AcmeEabKey(
                    kid=kid,
                    national_id="1",
                    service_code=ACME_SERVICE,
                    hmac_key_sealed=b"x",
                    created_at=now,
                    created_by="test",
                ),
            )
        rows = [
            AcmeAccountRow(
                id=f"a{i}",
                ca="infrastructure",
                status="valid",
                jwk={},
                jwk_thumbprint="same",
                eab_key_id=f"k{i}",
                national_id="1",
                service_code=ACME_SERVICE,
                created_at=now,
                updated_at=now,
            )
            for i in (1, 2)
        ]
        assert acme_accounts.insert(session, rows[0])
        assert not acme_accounts.insert(session, rows[1])
    with hoviyat.db.read() as session:
        assert acme_accounts.get(session, "a2") is None
        assert acme_accounts.by_thumbprint(session, "same") is not None
