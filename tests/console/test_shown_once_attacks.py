"""More attacks on the page that shows a new client secret once (Post/Redirect/Get).

From the attacker's side, over HTTP through the real app: the page is never
cached nor referred onwards; after sign-out (its cookie replayed, or the same
admin signed in again) nothing reads the waiting secret; an admin who lost the
role, or a console user of another role, reads nothing and spends nothing; two
GETs racing show it once; odd ids are refused without a server error.
"""

from __future__ import annotations

import re
import threading

import httpx
from console_support import csrf_token, grant, person_key, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient

from idp.console.roles import Role
from idp.storage import console as console_store
from verifiers.registry.base import Person

CLIENT = "demo-bank"


def _secret(page: str) -> str | None:
    found = re.search(r'<code id="client_secret">([^<]+)</code>', page)
    return found.group(1) if found else None


def _rotate(browser: TestClient) -> str:
    page = browser.get(f"/console/clients/{CLIENT}")
    answer = browser.post(
        f"/console/clients/{CLIENT}/secret", data={"csrf_token": csrf_token(page.text)}
    )
    assert answer.status_code == 303, answer.text
    location: str = answer.headers["location"]
    return location


def _admin(app: FastAPI, browser: TestClient, person: Person) -> None:
    grant(app, person.national_code, Role.ADMIN)
    signed_in(app, browser, person.national_code)


def test_attack_the_shown_page_is_not_cached_nor_referred_and_its_url_holds_no_secret(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    _admin(hoviyat_app, browser, people[0])
    location = _rotate(browser)
    shown = browser.get(location)
    secret = _secret(shown.text)
    assert shown.status_code == 200 and secret is not None
    assert "no-store" in shown.headers["cache-control"]
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert secret not in location and "set-cookie" not in shown.headers


def test_attack_after_sign_out_the_replayed_cookie_and_a_new_session_read_nothing(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    _admin(hoviyat_app, browser, people[0])
    location = _rotate(browser)
    stolen_cookies = dict(browser.cookies)
    page = browser.get("/console")
    out = browser.post("/console/logout", data={"csrf_token": csrf_token(page.text)})
    assert out.status_code == 303
    # The signed-out session's cookie, replayed by whoever copied it.
    with TestClient(hoviyat_app, base_url=str(browser.base_url), follow_redirects=False) as thief:
        for name, value in stolen_cookies.items():
            thief.cookies.set(name, value)
        replayed = thief.get(location)
        assert replayed.status_code in (303, 401, 403, 404), replayed.text
        assert _secret(replayed.text) is None
    # The same admin signed in again: another session, which the row is not bound to.
    browser.cookies.clear()
    signed_in(hoviyat_app, browser, people[0].national_code)
    again = browser.get(location)
    assert again.status_code == 404 and _secret(again.text) is None


def test_attack_an_admin_who_lost_the_role_or_another_role_reads_and_spends_nothing(
    hoviyat_app: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
) -> None:
    _admin(hoviyat_app, browser, people[0])
    grant(hoviyat_app, people[1].national_code, Role.AUDITOR)
    signed_in(hoviyat_app, other_browser, people[1].national_code)
    location = _rotate(browser)
    other = other_browser.get(location)
    assert other.status_code == 403 and _secret(other.text) is None
    # The admin's role is taken away between the POST and the GET.
    key = person_key(hoviyat_app, people[0].national_code)
    with hoviyat_app.state.hoviyat.db.session() as db:
        assert console_store.revoke_role(db, key, Role.ADMIN.value)
    lost = browser.get(location)
    assert lost.status_code == 403 and _secret(lost.text) is None


def test_attack_two_gets_raced_show_the_secret_once(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    _admin(hoviyat_app, browser, people[0])
    location = _rotate(browser)
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def fetch() -> None:
        barrier.wait()
        answers.append(browser.get(location))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shown = [a for a in answers if _secret(a.text) is not None]
    assert len(shown) == 1
    assert sorted(a.status_code for a in answers) == [200, 410]


def test_attack_odd_ids_are_refused_without_a_server_error(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    _admin(hoviyat_app, browser, people[0])
    for odd in ("%00", "a%00b", "%ff", "x" * 5000, "..%2f..%2fconsole", "%E2%80%AE"):
        answer = browser.get(f"/console/shown-once/{odd}")
        assert answer.status_code in (400, 404), (odd, answer.status_code)
