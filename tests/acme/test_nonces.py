"""Replay-Nonce (RFC 8555 §6.5, §7.2): issued without a write, spent once on any worker.

Attacks: a replayed nonce (same app, and another app over the same database
as another worker or host would be), a forged nonce, an expired one, one from
another deployment's secret, a re-spelling of a valid nonce.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from acme_client import AcmeClient
from fastapi.testclient import TestClient

from idp.acme.nonces import Nonces
from idp.acme.paths import AcmePaths
from idp.acme.problems import AcmeProblem
from idp.context import Hoviyat
from idp.secrets import ServerSecrets
from idp.storage import acme_nonces

BAD_NONCE = "urn:ietf:params:acme:error:badNonce"


def test_new_nonce_head_is_200_and_get_is_204_never_cached(
    app_client: TestClient, acme_paths: AcmePaths
) -> None:
    head = app_client.head(acme_paths.new_nonce)
    get = app_client.get(acme_paths.new_nonce)
    assert (head.status_code, get.status_code) == (200, 204)
    for response in (head, get):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Link"] == f'<{acme_paths.directory}>;rel="index"'
    assert head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"]


def test_a_nonce_is_base64url_without_padding(
    app_client: TestClient, acme_paths: AcmePaths
) -> None:
    nonce = app_client.head(acme_paths.new_nonce).headers["Replay-Nonce"]
    assert "=" not in nonce and "+" not in nonce and "/" not in nonce
    base64.urlsafe_b64decode(nonce + "==")


def test_issuing_nonces_writes_nothing(
    app_client: TestClient, acme_paths: AcmePaths, hoviyat: Hoviyat
) -> None:
    for _ in range(5):
        app_client.head(acme_paths.new_nonce)
    with hoviyat.db.read() as session:
        assert acme_nonces.prune(session, datetime.now(UTC) + timedelta(days=2)) == 0


def test_attack_replayed_nonce_is_refused_with_a_fresh_one(
    acme_account: AcmeClient, state: Callable[[], dict[str, object]]
) -> None:
    url = acme_account.account_url
    assert url is not None
    body = acme_account.sign(url, {"contact": ["mailto:a@tax.example.com"]})
    first = acme_account.send(url, body)
    assert first.status_code == 200
    before = state()
    replay = acme_account.send(url, body)
    assert replay.status_code == 400
    assert replay.headers["Content-Type"] == "application/problem+json"
    assert replay.json()["type"] == BAD_NONCE
    assert replay.headers["Replay-Nonce"], "badNonce carries a fresh nonce (§6.5)"
    assert state() == before


def test_a_client_retries_bad_nonce_once_with_the_nonce_it_was_given(
    acme_account: AcmeClient,
) -> None:
    acme_account.nonce = acme_account.new_nonce()
    spent = acme_account.nonce
    acme_account.post_as_get(str(acme_account.account_url))
    acme_account.nonce = spent  # as a client holding a stale nonce would
    response = acme_account.post_as_get(str(acme_account.account_url))
    assert response.status_code == 200


def test_attack_nonce_replayed_on_another_worker_is_refused(
    acme_account: AcmeClient, other_app: TestClient
) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None)
    assert acme_account.send(url, body).status_code == 200
    other = AcmeClient(other_app, acme_account.directory_url, acme_account.key, url)
    replay = other.send(url, body)
    assert replay.status_code == 400 and replay.json()["type"] == BAD_NONCE


def test_a_nonce_issued_by_one_worker_is_accepted_by_another(
    acme_account: AcmeClient, other_app: TestClient
) -> None:
    other = AcmeClient(other_app, acme_account.directory_url, acme_account.key)
    other.account_url = acme_account.account_url
    nonce = acme_account.new_nonce()  # from the first app
    url = str(acme_account.account_url)
    assert other.send(url, other.sign(url, None, nonce=nonce)).status_code == 200


def test_attack_the_same_nonce_raced_on_two_workers_is_accepted_once(
    acme_account: AcmeClient, other_app: TestClient
) -> None:
    url = str(acme_account.account_url)
    other = AcmeClient(other_app, acme_account.directory_url, acme_account.key, url)
    for _ in range(5):
        body = acme_account.sign(url, None)
        with ThreadPoolExecutor(4) as pool:
            sends = [
                pool.submit(client.send, url, body)
                for client in (acme_account, other, acme_account, other)
            ]
            statuses = sorted(f.result().status_code for f in sends)
        assert statuses == [200, 400, 400, 400]


def _forged(nonce: str, position: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(nonce + "=="))
    raw[position] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("position", [0, 17, 30, 39])
def test_attack_forged_nonce_is_refused(acme_account: AcmeClient, position: int) -> None:
    url = str(acme_account.account_url)
    forged = _forged(acme_account.new_nonce(), position)
    response = acme_account.send(url, acme_account.sign(url, None, nonce=forged))
    assert response.status_code == 400 and response.json()["type"] == BAD_NONCE


def test_attack_expired_nonce_is_refused(acme_account: AcmeClient, hoviyat: Hoviyat) -> None:
    nonces = Nonces(hoviyat.secrets, hoviyat.acme_settings.nonce_lifetime_seconds)
    stale = nonces.new(now=time.time() - hoviyat.acme_settings.nonce_lifetime_seconds - 1)
    url = str(acme_account.account_url)
    response = acme_account.send(url, acme_account.sign(url, None, nonce=stale))
    assert response.status_code == 400 and response.json()["type"] == BAD_NONCE
    assert "expired" in response.json()["detail"]


def test_attack_nonce_of_another_deployment_is_refused(acme_account: AcmeClient) -> None:
    stranger = Nonces(ServerSecrets(b"a" * 32, b"b" * 32, b"c" * 32), 3600).new()
    url = str(acme_account.account_url)
    response = acme_account.send(url, acme_account.sign(url, None, nonce=stranger))
    assert response.status_code == 400 and response.json()["type"] == BAD_NONCE


@pytest.mark.parametrize("nonce", ["", "x", "A" * 54, "A" * 300, "!" * 54])
def test_attack_nonce_that_is_not_ours_is_refused(acme_account: AcmeClient, nonce: str) -> None:
    url = str(acme_account.account_url)
    response = acme_account.send(url, acme_account.sign(url, None, nonce=nonce or "-"))
    assert response.status_code == 400 and response.json()["type"] == BAD_NONCE


def test_attack_missing_nonce_is_bad_nonce(acme_account: AcmeClient) -> None:
    url = str(acme_account.account_url)
    body = acme_account.sign(url, None, protected={"nonce": None})
    response = acme_account.send(url, body)
    assert response.status_code == 400 and response.json()["type"] == BAD_NONCE


def test_attack_respelled_nonce_is_not_a_second_nonce() -> None:
    nonces = Nonces(ServerSecrets(b"a" * 32, b"b" * 32, b"c" * 32), 3600)
    nonce = nonces.new()
    nonces.check(nonce)
    # The last character carries 2 unused bits: flipping them spells the same bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(nonce[-1])
    for other in {alphabet[(last & ~0b11) | bits] for bits in range(4)} - {nonce[-1]}:
        with pytest.raises(AcmeProblem) as refused:
            nonces.check(nonce[:-1] + other)
        assert refused.value.error == "badNonce"


def test_spent_nonces_are_swept_after_they_expire(hoviyat: Hoviyat) -> None:
    nonces = Nonces(hoviyat.secrets, 60)
    now = time.time()
    spent = [nonces.check(nonces.new(now=now), now=now) for _ in range(3)]
    with hoviyat.db.session() as session:
        for nonce in spent:
            assert acme_nonces.spend(session, nonce.nonce_id, nonce.expires_at)
        assert not acme_nonces.spend(session, spent[0].nonce_id, spent[0].expires_at)
    with hoviyat.db.session() as session:
        assert acme_nonces.prune(session, datetime.now(UTC)) == 0
        assert acme_nonces.prune(session, datetime.now(UTC) + timedelta(seconds=61)) == 3


def test_every_acme_problem_carries_a_nonce_the_index_link_and_no_store(
    app_client: TestClient, acme_paths: AcmePaths
) -> None:
    for response in (
        app_client.post(acme_paths.new_account, content=b"{}", headers={"Content-Type": "x/y"}),
        app_client.get(acme_paths.new_account),
        app_client.post(acme_paths.account("nope"), content=b"not json"),
    ):
        assert response.status_code >= 400
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["type"].startswith("urn:ietf:params:acme:error:")
        assert response.headers["Replay-Nonce"]
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Link"] == f'<{acme_paths.directory}>;rel="index"'
