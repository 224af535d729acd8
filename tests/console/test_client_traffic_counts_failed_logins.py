"""The console's refusal rate counts a client's failed logins at /token (RFC 6749 §5.2).

Someone guessing a client's secret shows on that client's page: over HTTP through
the real app, a token request with a wrong secret raises the client's refused
count and refusal rate; a good one raises only its requests.
"""

from __future__ import annotations

import re

from console_support import grant, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.console.roles import Role
from verifiers.registry.base import Person

CLIENT = "demo-bank"
ROW = re.compile(
    r'<td class="traffic-requests"><bdi dir="ltr">(\d+)</bdi></td>\s*'
    r'<td class="traffic-refused"><bdi dir="ltr">(\d+)</bdi></td>\s*'
    r'<td class="traffic-rate"><bdi dir="ltr">([^<]+)</bdi></td>'
)


def _last_day(browser: TestClient) -> tuple[int, int, str]:
    page = browser.get(f"/console/clients/{CLIENT}?lang=en")
    assert page.status_code == 200, page.text
    requests, refused, rate = ROW.findall(page.text)[0]  # the first row: the last 24 hours
    return int(requests), int(refused), rate


def test_attack_wrong_secret_at_token_raises_the_clients_refusal_rate_in_the_console(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], demo_clients: dict[str, str]
) -> None:
    grant(hoviyat_app, people[0].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[0].national_code)
    form = {"grant_type": "client_credentials"}

    good = browser.post("/token", data=form, auth=(CLIENT, demo_clients[CLIENT]))
    assert good.status_code == 200, good.text
    assert _last_day(browser) == (1, 0, "0.0%")

    wrong = browser.post("/token", data=form, auth=(CLIENT, "a-guessed-secret"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert _last_day(browser) == (2, 1, "50.0%")

    # A made-up client id is refused too, and counts for no registered client.
    browser.post("/token", data=form, auth=("made-up-client", "x"))
    assert _last_day(browser) == (2, 1, "50.0%")
