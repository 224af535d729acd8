"""Console test support: a person signs in to /console through the real OIDC flow.

The browser leg runs against the real app: /console/login sends the browser
to /authorize, the login pages' interaction row is filled the way the login
pages fill it (``oidc_support.finish_interaction``, the contract between the
two parts), /authorize/complete answers with the code, and /console/callback
redeems it at the real /token.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oidc"))

from oidc_support import (
    complete,
    finish_interaction,
    interaction_of,
    log_in,
    query_of,
)

from idp.audit.log import subject_hash
from idp.console.roles import Role
from idp.storage import console as console_store
from idp.storage.models import AuditEntry
from policies import assurance


def person_key(app: FastAPI, national_code: str) -> str:
    return subject_hash(app.state.hoviyat.secrets.subject_pepper, national_code)


def grant(app: FastAPI, national_code: str, *roles: Role) -> None:
    """Roles written straight to storage: the state a test starts from, not what it checks."""
    with app.state.hoviyat.db.session() as db:
        for role in roles:
            console_store.grant_role(
                db, person_key(app, national_code), role.value, "test", datetime.now(UTC)
            )


def sign_in(
    app: FastAPI,
    browser: TestClient,
    national_code: str,
    *,
    acr: str = assurance.SUBSTANTIAL,
    start: str = "/console",
) -> httpx.Response:
    """The whole sign-in from a console page; returns the callback's answer."""
    first = browser.get(start)
    assert first.status_code == 303, first.text
    to_login = browser.get(first.headers["location"])
    assert to_login.status_code == 303, to_login.text
    assert to_login.headers["location"].startswith("/authorize?")
    interaction_id = interaction_of(browser.get(to_login.headers["location"]))
    login = log_in(app.state.hoviyat.db, national_code, acr)
    finish_interaction(app.state.hoviyat.db, interaction_id, login)
    back = complete(browser, interaction_id)
    assert back.status_code == 302, back.text
    location = back.headers["location"]
    assert location.startswith(app.state.hoviyat.settings.issuer + "/console/callback?"), location
    return browser.get(location)


def signed_in(app: FastAPI, browser: TestClient, national_code: str) -> None:
    answer = sign_in(app, browser, national_code)
    assert answer.status_code == 303, answer.text


def callback_query(location: str) -> dict[str, str]:
    return query_of(location)


def audit_events(app: FastAPI, event_type: str) -> list[AuditEntry]:
    """The audit entries of one type, oldest first."""
    with app.state.hoviyat.db.session() as db:
        query = select(AuditEntry).where(AuditEntry.event_type == event_type)
        return list(db.exec(query.order_by(AuditEntry.id)).all())  # type: ignore[arg-type]


def refusals(app: FastAPI, reason: str | None = None) -> list[AuditEntry]:
    """The console refusals in the audit log, oldest first."""
    rows = audit_events(app, "console_refusal")
    return [row for row in rows if reason is None or row.detail.get("reason") == reason]


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def age_sessions(app: FastAPI, minutes: int) -> None:
    """Move every console session's last activity ``minutes`` into the past."""
    with app.state.hoviyat.db.session() as db:
        for row in db.exec(select(console_store.ConsoleSession)).all():
            console_store.set_last_seen(db, row.id, row.last_seen_at - timedelta(minutes=minutes))
