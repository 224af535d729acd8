"""ACME accounts (RFC 8555 §7.3) through a real client: creation with EAB, reading,
updating, deactivation, key rollover, with every key type."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from acme_client import AcmeClient, Eab


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
