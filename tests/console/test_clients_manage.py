"""Registering, rotating and deleting clients in the console, from the attacker's side.

Everything goes over HTTP through the real app: the console's forms, /token with
the secret the page showed, the verification API for refusals, and the
two-person approval of a deletion.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

import html5lib
import httpx
import pytest
from console_support import audit_events, csrf_token, grant, person_key, refusals, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import select

from idp.console.clients_manage import DELETE
from idp.console.roles import Role
from idp.storage import clients as client_store
from idp.storage import console as console_store
from idp.storage.models import AuditEntry, Client
from verifiers.registry.base import Person

NEW_ROUTES = [
    ("GET", "/console/new-client"),
    ("POST", "/console/new-client"),
    ("POST", "/console/clients/demo-bank/secret"),
    ("POST", "/console/clients/demo-bank/delete"),
    ("POST", "/console/clients/demo-bank/keys"),
]
POST_ROUTES = [path for method, path in NEW_ROUTES if method == "POST"]


def token_status(browser: TestClient, client_id: str, secret: str) -> int:
    answer = browser.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return answer.status_code


def all_clients(app: FastAPI) -> list[Client]:
    with app.state.hoviyat.db.read() as db:
        return client_store.all_clients(db)


def service_of(app: FastAPI, client_id: str) -> str:
    with app.state.hoviyat.db.read() as db:
        client = client_store.get_client(db, client_id)
        assert client is not None
        return client.service_code


def admin(app: FastAPI, browser: TestClient, person: Person) -> str:
    """Sign ``person`` in as an administrator; a CSRF token of their session."""
    grant(app, person.national_code, Role.ADMIN)
    signed_in(app, browser, person.national_code)
    return csrf_token(browser.get("/console").text)


def redirected(browser: TestClient, answer: httpx.Response) -> httpx.Response:
    """Post/Redirect/Get: the POST answers 303; the secret is on the page it names."""
    assert answer.status_code == 303, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return browser.get(answer.headers["location"])


def shown_secret(page: str) -> str:
    found = re.search(r'<code id="client_secret">([^<]+)</code>', page)
    assert found is not None, page
    return found.group(1)


def pending_deletions(app: FastAPI) -> list[console_store.ConsoleApproval]:
    with app.state.hoviyat.db.read() as db:
        return console_store.pending_approvals(db, DELETE)


@pytest.mark.parametrize(("method", "path"), NEW_ROUTES)
def test_a_person_without_the_admin_role_is_refused_and_audited(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], method: str, path: str
) -> None:
    grant(hoviyat_app, people[2].national_code, Role.AUDITOR, Role.CA_OPERATOR)
    signed_in(hoviyat_app, browser, people[2].national_code)
    token = csrf_token(browser.get("/console").text)
    before = len(all_clients(hoviyat_app))
    data = {"csrf_token": token, "name": "x", "service_code": "demo-bank"}
    answer = browser.request(method, path, data=data if method == "POST" else None)
    assert answer.status_code == 403
    (entry,) = refusals(hoviyat_app, "missing_role")
    assert entry.operation == f"{method} {path}"
    assert entry.actor_id == person_key(hoviyat_app, people[2].national_code)
    assert len(all_clients(hoviyat_app)) == before
    assert pending_deletions(hoviyat_app) == []


@pytest.mark.parametrize("path", POST_ROUTES)
@pytest.mark.parametrize(("sent", "reason"), [(None, "csrf_missing"), ("0" * 64, "csrf_invalid")])
def test_a_form_without_this_sessions_csrf_token_changes_nothing(
    hoviyat_app: FastAPI,
    browser: TestClient,
    people: list[Person],
    demo_clients: dict[str, str],
    path: str,
    sent: str | None,
    reason: str,
) -> None:
    admin(hoviyat_app, browser, people[0])
    before = len(all_clients(hoviyat_app))
    data = {"name": "Forged", "service_code": service_of(hoviyat_app, "demo-bank")}
    if sent is not None:
        data["csrf_token"] = sent
    answer = browser.post(path, data=data)
    assert answer.status_code == 403
    assert "client_secret" not in answer.text
    assert [e.detail["reason"] for e in refusals(hoviyat_app)] == [reason]
    assert len(all_clients(hoviyat_app)) == before
    assert pending_deletions(hoviyat_app) == []
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 200


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("redirect_uris", "http://evil.example/cb", "must use https"),
        ("redirect_uris", "https://rp.example/cb#fragment", "fragment"),
        ("service_code", "no-such-policy", "unknown service code"),
        ("grant_types", "password", "unknown grant types"),
        ("auth_method", "client_secret_jwt", "unknown auth method"),
    ],
)
def test_a_registration_the_services_refuse_gets_the_form_again_and_writes_no_client(
    hoviyat_app: FastAPI,
    browser: TestClient,
    people: list[Person],
    field: str,
    value: str,
    shown: str,
) -> None:
    token = admin(hoviyat_app, browser, people[0])
    before = {c.client_id for c in all_clients(hoviyat_app)}
    form = {
        "csrf_token": token,
        "name": "Refused RP",
        "service_code": service_of(hoviyat_app, "demo-portal"),
        "grant_types": "authorization_code",
        "redirect_uris": "https://rp.example/cb",
        "auth_method": "client_secret_basic",
        field: value,
    }
    answer = browser.post("/console/new-client?lang=en", data=form)
    assert answer.status_code == 400
    assert "The client was not registered" in answer.text
    assert shown in answer.text
    assert 'name="name"' in answer.text and "Refused RP" in answer.text  # the form, filled
    assert {c.client_id for c in all_clients(hoviyat_app)} == before
    created = [e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "create"]
    assert created == []


def test_the_registration_form_is_persian_first_and_english_on_request(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    admin(hoviyat_app, browser, people[0])
    persian = browser.get("/console/new-client")
    assert persian.status_code == 200
    assert 'lang="fa" dir="rtl"' in persian.text and "ثبت کارخواه" in persian.text
    english = browser.get("/console/new-client?lang=en")
    assert 'lang="en"' in english.text and "Register a client" in english.text
    assert 'action="/console/new-client?lang=en"' in english.text
    assert "<script" not in persian.text


def test_a_registered_clients_secret_is_shown_once_works_at_token_and_only_a_digest_is_kept(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    token = admin(hoviyat_app, browser, people[0])
    before = {c.client_id for c in all_clients(hoviyat_app)}
    answer = browser.post(
        "/console/new-client",
        data={
            "csrf_token": token,
            "name": "Back office",
            "service_code": service_of(hoviyat_app, "demo-bank"),
            "grant_types": "client_credentials",
            "auth_method": "client_secret_basic",
        },
    )
    answer = redirected(browser, answer)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    secret = shown_secret(answer.text)
    (new,) = [c for c in all_clients(hoviyat_app) if c.client_id not in before]
    assert new.name == "Back office" and new.grant_types == ["client_credentials"]
    assert new.secret_digest is not None and secret not in new.secret_digest
    assert token_status(browser, new.client_id, secret) == 200
    assert token_status(browser, new.client_id, secret + "x") == 401
    # Shown once: the client's page does not show it again.
    assert secret not in browser.get(f"/console/clients/{new.client_id}").text
    (created,) = [e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "create"]
    assert created.actor_id == person_key(hoviyat_app, people[0].national_code)
    assert created.detail["client_id"] == new.client_id


def test_rotating_a_secret_shows_the_new_one_once_and_the_old_one_stops_working(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], demo_clients: dict[str, str]
) -> None:
    old = demo_clients["demo-bank"]
    assert token_status(browser, "demo-bank", old) == 200
    admin(hoviyat_app, browser, people[0])
    page = browser.get("/console/clients/demo-bank")
    assert 'action="/console/clients/demo-bank/secret"' in page.text
    answer = browser.post(
        "/console/clients/demo-bank/secret", data={"csrf_token": csrf_token(page.text)}
    )
    answer = redirected(browser, answer)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    new = shown_secret(answer.text)
    assert new != old
    assert token_status(browser, "demo-bank", old) == 401
    assert token_status(browser, "demo-bank", new) == 200
    (rotated,) = [
        e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "rotate_secret"
    ]
    assert rotated.detail["client_id"] == "demo-bank"
    assert new not in str(rotated.detail)


def test_the_consoles_own_client_cannot_be_rotated_or_deleted_from_the_console(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    token = admin(hoviyat_app, browser, people[0])
    for action in ("secret", "delete"):
        answer = browser.post(
            f"/console/clients/hoviyat-console/{action}", data={"csrf_token": token}
        )
        assert answer.status_code == 400
    assert pending_deletions(hoviyat_app) == []
    assert browser.get("/console/clients").status_code == 200  # still signed in


def test_deleting_a_client_needs_a_second_administrator_and_self_approval_is_refused(
    hoviyat_app: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
    demo_clients: dict[str, str],
) -> None:
    requester_token = admin(hoviyat_app, browser, people[0])
    answer = browser.post("/console/clients/demo-bank/delete", data={"csrf_token": requester_token})
    assert answer.status_code == 303, answer.text
    assert "delete_requested" in answer.headers["location"]
    (pending,) = pending_deletions(hoviyat_app)
    assert pending.payload["client_id"] == "demo-bank"
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 200
    # A second request for the same client is not queued twice.
    again = browser.post("/console/clients/demo-bank/delete", data={"csrf_token": requester_token})
    assert again.status_code == 409
    # The requester approving their own request: refused, audited, nothing done.
    own = browser.post(
        f"/console/approvals/{pending.id}/approve", data={"csrf_token": requester_token}
    )
    assert own.status_code == 403
    (refused,) = refusals(hoviyat_app, "self_approval")
    assert refused.detail["approval_kind"] == DELETE
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 200
    # Another administrator approves: the client is disabled for good.
    approver_token = admin(hoviyat_app, other_browser, people[1])
    decided = other_browser.post(
        f"/console/approvals/{pending.id}/approve", data={"csrf_token": approver_token}
    )
    assert decided.status_code == 303, decided.text
    with hoviyat_app.state.hoviyat.db.read() as db:
        client = client_store.get_client(db, "demo-bank")
        assert client is not None and client.disabled
    (deleted,) = [e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "delete"]
    assert deleted.actor_id == person_key(hoviyat_app, people[1].national_code)
    assert deleted.detail["requested_by"] == person_key(hoviyat_app, people[0].national_code)
    assert deleted.detail["effect"] == "disabled_permanently"
    page = browser.get("/console/clients/demo-bank")
    assert "/console/clients/demo-bank/delete" not in page.text
    assert "/console/clients/demo-bank/secret" not in page.text


def _traffic(page: str) -> list[tuple[int, int, str]]:
    cells = re.findall(
        r'traffic-requests"><bdi dir="ltr">(\d+)</bdi></td>\s*'
        r'<td class="traffic-refused"><bdi dir="ltr">(\d+)</bdi></td>\s*'
        r'<td class="traffic-rate"><bdi dir="ltr">([^<]+)</bdi>',
        page,
    )
    return [(int(total), int(refused), rate) for total, refused, rate in cells]


def test_the_client_page_counts_real_token_calls_and_refusals_from_the_audit_log(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], demo_clients: dict[str, str]
) -> None:
    admin(hoviyat_app, browser, people[0])
    assert _traffic(browser.get("/console/clients/demo-bank").text) == [(0, 0, "—"), (0, 0, "—")]
    tokens = [
        browser.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("demo-bank", demo_clients["demo-bank"]),
        )
        for _ in range(3)
    ]
    assert [t.status_code for t in tokens] == [200, 200, 200]
    refused = browser.post(
        "/v1/persons/verify",
        json={"national_code": "123"},
        headers={"Authorization": f"Bearer {tokens[0].json()['access_token']}"},
    )
    assert refused.status_code == 422
    page = browser.get("/console/clients/demo-bank?lang=en").text
    assert "Recent traffic" in page
    assert _traffic(page) == [(4, 1, "25.0%"), (4, 1, "25.0%")]
    # Another client's traffic is its own.
    assert _traffic(browser.get("/console/clients/demo-portal").text) == [
        (0, 0, "—"),
        (0, 0, "—"),
    ]


def test_an_act_three_days_old_counts_in_the_week_but_not_the_day(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], demo_clients: dict[str, str]
) -> None:
    admin(hoviyat_app, browser, people[0])
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 200
    assert token_status(browser, "demo-bank", demo_clients["demo-bank"]) == 200
    # The state the test starts from: one of the two acts moved three days back.
    with hoviyat_app.state.hoviyat.db.session() as db:
        oldest = db.exec(
            select(AuditEntry).where(AuditEntry.actor_id == "demo-bank").order_by(AuditEntry.id)  # type: ignore[arg-type]
        ).first()
        assert oldest is not None
        oldest.created_at = datetime.now(UTC) - timedelta(days=3)
        db.add(oldest)
    assert _traffic(browser.get("/console/clients/demo-bank").text) == [
        (1, 0, "0.0%"),
        (2, 0, "0.0%"),
    ]


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_new_pages_are_valid_html(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], lang: str
) -> None:
    token = admin(hoviyat_app, browser, people[0])
    pages = {
        "form": browser.get(f"/console/new-client?lang={lang}"),
        "form with an error": browser.post(
            f"/console/new-client?lang={lang}",
            data={"csrf_token": token, "name": "", "service_code": "x"},
        ),
        "client page": browser.get(f"/console/clients/demo-bank?lang={lang}"),
        "secret page": redirected(
            browser,
            browser.post(
                f"/console/clients/demo-bank/secret?lang={lang}", data={"csrf_token": token}
            ),
        ),
    }
    browser.post(f"/console/clients/demo-bank/delete?lang={lang}", data={"csrf_token": token})
    pages["client page, deletion pending"] = browser.get(f"/console/clients/demo-bank?lang={lang}")
    pages["approvals"] = browser.get(f"/console/approvals?lang={lang}")
    for what, answer in pages.items():
        assert answer.status_code in (200, 400), what
        try:
            html5lib.HTMLParser(strict=True).parse(answer.text)
        except html5lib.html5parser.ParseError as error:
            raise AssertionError(f"{what}: invalid HTML: {error}") from None


ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertion_status(browser: TestClient, issuer: str, client_id: str, key: ECKey) -> int:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    assertion = jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
    answer = browser.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    return answer.status_code


def public_jwks(key: ECKey) -> str:
    return json.dumps({"keys": [key.as_dict(private=False)]})


def test_replacing_a_key_clients_jwks_makes_the_old_key_fail_and_the_new_one_work(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    first = ECKey.generate_key("P-256", auto_kid=True)
    second = ECKey.generate_key("P-256", auto_kid=True)
    token = admin(hoviyat_app, browser, people[0])
    before = {c.client_id for c in all_clients(hoviyat_app)}
    registered = browser.post(
        "/console/new-client",
        data={
            "csrf_token": token,
            "name": "Key holder",
            "service_code": service_of(hoviyat_app, "demo-bank"),
            "grant_types": "client_credentials",
            "auth_method": "private_key_jwt",
            "jwks": public_jwks(first),
        },
    )
    registered = redirected(browser, registered)
    assert registered.status_code == 200, registered.text
    assert 'id="client_secret"' not in registered.text  # no shared secret to show
    (new,) = [c for c in all_clients(hoviyat_app) if c.client_id not in before]
    assert new.secret_digest is None
    assert assertion_status(browser, issuer, new.client_id, first) == 200
    path = f"/console/clients/{new.client_id}"
    page = browser.get(path).text
    assert f'action="{path}/keys"' in page and f'action="{path}/secret"' not in page
    html5lib.HTMLParser(strict=True).parse(page)  # the keys form is valid HTML too
    # A private key is refused by the registration's own check; the keys stay.
    private = json.dumps({"keys": [second.as_dict(private=True)]})
    refused = browser.post(f"{path}/keys?lang=en", data={"csrf_token": token, "jwks": private})
    assert refused.status_code == 400
    assert "private key" in refused.text
    assert assertion_status(browser, issuer, new.client_id, first) == 200
    replaced = browser.post(f"{path}/keys", data={"csrf_token": token, "jwks": public_jwks(second)})
    assert replaced.status_code == 303, replaced.text
    assert assertion_status(browser, issuer, new.client_id, first) == 401
    assert assertion_status(browser, issuer, new.client_id, second) == 200
    (changed,) = [
        e for e in audit_events(hoviyat_app, "client_changed") if e.operation == "replace_keys"
    ]
    assert changed.detail == {
        "client_id": new.client_id,
        "via": "console",
        "kids": [second.kid],
    }
