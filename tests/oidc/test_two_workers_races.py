"""Two uvicorn workers over PostgreSQL: codes and refresh tokens raced across processes.

Each race fires two requests at the same instant (a barrier) through separate
connections; the kernel spreads them over both worker processes. Whatever the
interleaving, the database decides: a code is honoured once, and a refresh
token raced by its own client yields one successor, the other request being
refused without revoking the grant.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc_support import RelyingParty, authorization_params, code_for, log_in, pkce_pair
from two_workers import TwoWorkers

from idp.settings import Settings
from verifiers.registry.base import Person

ROUNDS = 8
# Starting two uvicorn workers takes most of the time on a loaded 2-core machine.
pytestmark = pytest.mark.slow


@pytest.fixture
def workers(
    database_url: str, hoviyat_settings: Settings, hoviyat_app: FastAPI, tmp_path: Path
) -> Iterator[TwoWorkers]:
    if not database_url.startswith("postgresql"):
        pytest.skip("the cross-process races run on PostgreSQL (SQLite serialises writers)")
    port = int(hoviyat_settings.issuer.rsplit(":", 1)[1])
    with TwoWorkers(hoviyat_settings, port, tmp_path / "uvicorn.log") as server:
        yield server


def race(url: str, data: dict[str, str], auth: tuple[str, str]) -> list[httpx.Response]:
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def fire(slot: int) -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            results[slot] = client.post(url, data=data, auth=auth)

    threads = [threading.Thread(target=fire, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_a_code_redeemed_concurrently_is_honoured_once(
    workers: TwoWorkers,
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    rp: RelyingParty,
    citizen: Person,
) -> None:
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    auth = (rp.client_id, rp.client_secret or "")
    for _ in range(ROUNDS):
        verifier, challenge = pkce_pair()
        code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": rp.redirect_uri,
            "code_verifier": verifier,
        }
        answers = race(workers.url + "/token", data, auth)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 400], [a.text for a in answers]
        (refused,) = [a for a in answers if a.status_code == 400]
        assert refused.json()["error"] == "invalid_grant"
        # The second presentation is a replay: the grant it would have created is revoked.
        (issued,) = [a for a in answers if a.status_code == 200]
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert httpx.get(workers.url + "/userinfo", headers=bearer).status_code == 401


def test_a_refresh_token_raced_by_its_client_rotates_once_without_revoking(
    workers: TwoWorkers,
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    rp: RelyingParty,
    citizen: Person,
) -> None:
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code)
    auth = (rp.client_id, rp.client_secret or "")
    verifier, challenge = pkce_pair()
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    tokens = httpx.post(
        workers.url + "/token",
        data={"grant_type": "authorization_code", "code": code,
              "redirect_uri": rp.redirect_uri, "code_verifier": verifier},
        auth=auth,
    ).json()  # fmt: skip
    refresh_token = tokens["refresh_token"]
    for _ in range(ROUNDS):
        answers = race(
            workers.url + "/token",
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth,
        )
        # One successor, never two (a fork); the loser is refused without revoking.
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 400], [a.text for a in answers]
        (issued,) = [a for a in answers if a.status_code == 200]
        (refused,) = [a for a in answers if a.status_code == 400]
        assert refused.json()["error"] == "invalid_grant"
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert httpx.get(workers.url + "/userinfo", headers=bearer).status_code == 200
        refresh_token = issued.json()["refresh_token"]
