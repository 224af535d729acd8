"""Attacks on the JWS every ACME POST carries (RFC 8555 §6.2-6.4).

Each refusal is the ACME problem the RFC names and changes nothing.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator

import pytest
from acme_client import AccountKey, AcmeClient, b64url, sign_jws
from fastapi.testclient import TestClient
from joserfc import jwk

from idp.acme.paths import AcmePaths
from idp.acme.requests import MAX_BODY_BYTES
from idp.acme.settings import AcmeSettings
from idp.app import create_app
from idp.context import build_hoviyat
from idp.settings import Settings

ERR = "urn:ietf:params:acme:error:"
State = Callable[[], dict[str, object]]


def refused(response: object, status: int, error: str) -> dict[str, object]:
    assert hasattr(response, "status_code")
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert (response.status_code, body["type"]) == (status, ERR + error), body  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "application/problem+json"  # type: ignore[attr-defined]
    return body


def test_attack_url_of_another_resource_is_refused(acme_account: AcmeClient, state: State) -> None:
    before = state()
    url = str(acme_account.account_url)
    body = acme_account.sign(acme_account.url("newOrder"), {"contact": []})
    refused(acme_account.send(url, body), 403, "unauthorized")
    assert state() == before


def test_attack_url_with_the_request_host_instead_of_the_public_base_is_refused(
    acme_account: AcmeClient, state: State
) -> None:
    before = state()
    url = str(acme_account.account_url)
    # What a client behind a spoofed Host would sign: the same path on another origin.
    spoofed = url.replace("http://127.0.0.1", "http://evil.example")
    refused(acme_account.send(url, acme_account.sign(spoofed, None)), 403, "unauthorized")
    assert state() == before


def test_attack_both_kid_and_jwk_is_malformed(acme_account: AcmeClient, state: State) -> None:
    before = state()
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None, protected={"jwk": acme_account.key.public_jwk})
    refused(acme_account.send(url, body), 400, "malformed")
    assert state() == before


def test_attack_neither_kid_nor_jwk_is_malformed(acme_account: AcmeClient, state: State) -> None:
    before = state()
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None, protected={"kid": None})
    refused(acme_account.send(url, body), 400, "malformed")
    assert state() == before


def test_attack_jwk_where_a_kid_is_required_is_malformed(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None, use_jwk=True)
    refused(acme_account.send(url, body), 400, "malformed")


def _unsigned(protected: dict[str, object], payload: bytes = b"") -> dict[str, str]:
    return {
        "protected": b64url(json.dumps(protected).encode()),
        "payload": b64url(payload),
        "signature": "",
    }


def test_attack_alg_none_is_refused(acme_account: AcmeClient, state: State) -> None:
    before = state()
    url = str(acme_account.account_url)
    header = {"alg": "none", "kid": url, "nonce": acme_account.new_nonce(), "url": url}
    body = refused(acme_account.send(url, _unsigned(header)), 400, "badSignatureAlgorithm")
    assert "none" not in body["algorithms"]  # type: ignore[operator]
    assert state() == before


def test_attack_hs256_with_the_public_key_as_secret_is_refused(
    acme_client: AcmeClient, state: State
) -> None:
    # The classic confusion: a MAC keyed with the (public) account key.
    before = state()
    url = acme_client.url("newAccount")
    key = acme_client.key
    header = {"alg": "HS256", "jwk": key.public_jwk, "nonce": acme_client.new_nonce(), "url": url}
    body = sign_jws(None, header, b"{}", mac_key=json.dumps(key.public_jwk).encode())
    refused(acme_client.send(url, body), 400, "badSignatureAlgorithm")
    header["jwk"] = {"kty": "oct", "k": b64url(b"secret")}
    header["nonce"] = acme_client.new_nonce()
    body = sign_jws(None, header, b"{}", mac_key=b"secret")
    refused(acme_client.send(url, body), 400, "badSignatureAlgorithm")
    assert state() == before


def test_attack_rsa_1024_account_key_is_refused(
    acme_client: AcmeClient, eab_key: object, state: State
) -> None:
    before = state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the small key: that is the attack
        acme_client.key = AccountKey("RS256", jwk.RSAKey.generate_key(1024))
    response = acme_client.new_account(check=False)
    body = refused(response, 400, "badPublicKey")
    assert "1024" in str(body["detail"])
    assert state() == before


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("ES256", lambda: jwk.ECKey.generate_key("P-384")),
        ("ES384", lambda: jwk.ECKey.generate_key("P-256")),
        ("RS256", lambda: jwk.ECKey.generate_key("P-256")),
        ("EdDSA", lambda: jwk.ECKey.generate_key("P-256")),
    ],
)
def test_attack_key_that_does_not_suit_its_alg_is_refused(
    acme_client: AcmeClient, alg: str, key: Callable[[], object]
) -> None:
    url = acme_client.url("newAccount")
    generated = key()
    header = {
        "alg": alg,
        "jwk": generated.as_dict(private=False),  # type: ignore[attr-defined]
        "nonce": acme_client.new_nonce(),
        "url": url,
    }
    body = _unsigned(header, b"{}")
    body["signature"] = b64url(b"\0" * 64)
    refused(acme_client.send(url, body), 400, "badPublicKey")


def test_attack_jwk_carrying_the_private_key_is_refused(acme_client: AcmeClient) -> None:
    url = acme_client.url("newAccount")
    private = dict(acme_client.key.key.as_dict(private=True))
    body = acme_client.sign(url, {}, use_jwk=True, protected={"jwk": private})
    refused(acme_client.send(url, body), 400, "badPublicKey")


def test_attack_signature_by_another_key_is_refused(acme_account: AcmeClient, state: State) -> None:
    before = state()
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None, key=AccountKey.generate("ES256"))
    refused(acme_account.send(url, body), 400, "malformed")
    assert state() == before


def test_attack_payload_changed_after_signing_is_refused(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, {"contact": ["mailto:a@tax.example.com"]})
    body["payload"] = b64url(json.dumps({"status": "deactivated"}).encode())
    refused(acme_account.send(url, body), 400, "malformed")
    assert acme_account.account()["status"] == "valid"


def test_attack_kid_of_an_unknown_account_is_refused(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    for kid in (url + "x", url.rsplit("/", 1)[0] + "/nobody", "https://evil.example/acct/1", "1"):
        body = acme_account.sign(url, None, protected={"kid": kid})
        refused(acme_account.send(url, body), 400, "accountDoesNotExist")


@pytest.fixture
def two_ca_client(
    hoviyat_settings: Settings, init_report: object
) -> Iterator[tuple[TestClient, AcmePaths, AcmePaths]]:
    """An app serving two issuing CAs over ACME (infrastructure and organisations)."""
    acme = AcmeSettings(profiles=["tls-server", "entity-seal"])
    app = create_app(hoviyat_settings, build_hoviyat(hoviyat_settings, acme_settings=acme))
    base = hoviyat_settings.issuer
    with TestClient(app, base_url=base) as client:
        yield client, AcmePaths(base, "infrastructure"), AcmePaths(base, "organisations")
    app.state.hoviyat.close()


def test_attack_kid_of_another_cas_account_is_refused(
    two_ca_client: tuple[TestClient, AcmePaths, AcmePaths],
    make_eab: Callable[[], object],
) -> None:
    client, infrastructure, organisations = two_ca_client
    account = AcmeClient(client, infrastructure.directory)
    eab = make_eab()
    assert account.new_account(eab.kid, eab.hmac_key).status_code == 201  # type: ignore[attr-defined]
    account_id = str(account.account_url).rsplit("/", 1)[1]
    other = AcmeClient(client, organisations.directory, account.key, account.account_url)
    # The account's own URL as kid, at the other CA: not an account URL of that server.
    url = organisations.new_order
    body = other.sign(url, None, protected={"kid": account.account_url})
    refused(other.send(url, body), 400, "accountDoesNotExist")
    # The same id under the other CA's prefix: the account is not that CA's.
    body = other.sign(url, None, protected={"kid": organisations.account(account_id)})
    refused(other.send(url, body), 400, "accountDoesNotExist")
    # And the key cannot open a second account there.
    eab2 = make_eab()
    response = other.new_account(eab2.kid, eab2.hmac_key, check=False)  # type: ignore[attr-defined]
    refused(response, 403, "unauthorized")
    # The new-account path of the other CA does not hand it the first CA's account.
    lookup = other.new_account(only_return_existing=True, check=False)
    refused(lookup, 403, "unauthorized")


def test_attack_deactivated_account_is_refused(acme_account: AcmeClient, state: State) -> None:
    assert acme_account.deactivate().json()["status"] == "deactivated"
    before = state()
    response = acme_account.post_as_get(str(acme_account.account_url), check=False)
    refused(response, 403, "unauthorized")
    response = acme_account.update_account({"contact": []}, check=False)
    refused(response, 403, "unauthorized")
    assert state() == before


def test_attack_oversized_body_is_refused_unread(acme_account: AcmeClient, state: State) -> None:
    before = state()
    url = str(acme_account.account_url)
    big = {"contact": ["mailto:a@tax.example.com"], "pad": "x" * MAX_BODY_BYTES}
    response = acme_account.send(url, acme_account.sign(url, big))
    refused(response, 413, "malformed")
    # Streamed without a Content-Length, the bound holds too.
    chunks = iter([b"{" + b" " * 1024] * 80)
    streamed = acme_account.http.post(
        url, content=chunks, headers={"Content-Type": "application/jose+json"}
    )
    refused(streamed, 413, "malformed")
    assert state() == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "", "application/jose", "multipart/x"]
)
def test_attack_wrong_content_type_is_refused(
    acme_account: AcmeClient, content_type: str, state: State
) -> None:
    before = state()
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None)
    refused(acme_account.send(url, body, content_type=content_type), 415, "malformed")
    assert state() == before


def test_content_type_parameters_are_accepted(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None)
    response = acme_account.send(url, body, content_type="application/jose+json; charset=utf-8")
    assert response.status_code == 200


def test_attack_general_serialization_and_unprotected_header_are_malformed(
    acme_account: AcmeClient,
) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None)
    general = {
        "payload": body["payload"],
        "signatures": [{"protected": body["protected"], "signature": body["signature"]}],
    }
    refused(acme_account.send(url, general), 400, "malformed")
    body = acme_account.sign(url, None)
    refused(acme_account.send(url, {**body, "header": {"kid": "x"}}), 400, "malformed")


def test_attack_compact_serialization_is_malformed(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None)
    compact = f"{body['protected']}.{body['payload']}.{body['signature']}".encode()
    refused(acme_account.send(url, compact), 400, "malformed")


def test_attack_duplicate_header_members_are_malformed(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    key = acme_account.key
    nonce = acme_account.new_nonce()
    # Two "url" members: one for a check that reads the first, one for the last.
    raw = (
        f'{{"alg":"{key.alg}","kid":"{acme_account.account_url}","nonce":"{nonce}",'
        f'"url":"{url}","url":"{acme_account.url("newOrder")}"}}'
    ).encode()
    body = sign_jws(key, raw, b"")
    refused(acme_account.send(url, body), 400, "malformed")


@pytest.mark.parametrize("extra", [{"crit": ["exp"], "exp": 1}, {"b64": False, "crit": ["b64"]}])
def test_attack_critical_extensions_are_malformed(
    acme_account: AcmeClient, extra: dict[str, object]
) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None, protected=extra)
    refused(acme_account.send(url, body), 400, "malformed")


def test_attack_payload_that_is_not_an_object_is_malformed(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    for payload in (b"[]", b"1", b"null", b'"x"', b"{", b"\xff", b'{"a": NaN}'):
        body = acme_account.sign(url, payload)
        refused(acme_account.send(url, body), 400, "malformed")


def test_post_as_get_reads_the_account(acme_account: AcmeClient) -> None:
    response = acme_account.post_as_get(str(acme_account.account_url))
    assert response.status_code == 200
    assert response.json()["status"] == "valid"
    assert response.headers["Replay-Nonce"]


def test_attack_get_on_a_post_resource_is_an_acme_problem(
    app_client: TestClient, acme_paths: AcmePaths
) -> None:
    response = app_client.get(acme_paths.new_account)
    refused(response, 405, "malformed")


def test_attack_unknown_ca_is_a_404_acme_problem(
    app_client: TestClient, hoviyat_settings: Settings
) -> None:
    for ca in ("persons", "root", "nope", "..%2f"):
        paths = AcmePaths(hoviyat_settings.issuer, ca)
        refused(app_client.get(paths.directory), 404, "malformed")
        assert app_client.head(paths.new_nonce).status_code == 404
        refused(app_client.post(paths.new_account, content=b"{}"), 404, "malformed")


def test_options_and_405_under_acme_name_every_method_served(
    app_client: TestClient, acme_paths: AcmePaths
) -> None:
    options = app_client.options(acme_paths.new_nonce)
    assert options.status_code == 204
    assert {"GET", "HEAD", "OPTIONS"} <= set(options.headers["Allow"].replace(" ", "").split(","))
    response = app_client.delete(acme_paths.new_nonce)
    refused(response, 405, "malformed")
    assert "HEAD" in response.headers["Allow"] and "GET" in response.headers["Allow"]


def test_attack_bodies_the_front_door_refuses_get_acme_problems_under_acme(
    app_client: TestClient, acme_paths: AcmePaths, hoviyat_settings: Settings
) -> None:
    huge = b"{" + b" " * hoviyat_settings.max_body_bytes + b"}"
    headers = {"Content-Type": "application/jose+json"}
    response = app_client.post(acme_paths.new_account, content=huge, headers=headers)
    refused(response, 413, "malformed")
    assert response.headers["Replay-Nonce"]
    response = app_client.post(acme_paths.new_account + "?a=%00", content=b"{}", headers=headers)
    refused(response, 400, "malformed")
    # Elsewhere the front door's own RFC 9457 problems are unchanged.
    elsewhere = app_client.post("/v1/persons/verify", content=huge, headers=headers)
    assert elsewhere.status_code == 413
    assert elsewhere.json()["type"].startswith("https://hoviyat.ir/problems/")
