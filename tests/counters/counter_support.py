"""Service counter test support: offices and people set up through the real domain code,
clerks signed in through the console's real OIDC sign-in, codes read from the dev outbox."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from console_support import grant, person_key, sign_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col, select

from idp.console.roles import Role
from idp.counters.offices import add_member, register_office
from idp.login.sms import latest_message
from idp.storage.counters import CLERK, SUPERVISOR, AssistedSession
from idp.storage.models import AuditEntry
from verifiers.registry.base import Person

PERSON = "person_verification"
MOBILE = "mobile_verification"
ATTEST = "attestation_issue"


@dataclass(frozen=True)
class Someone:
    person: Person
    mobile: str

    @property
    def code(self) -> str:
        return self.person.national_code

    @property
    def name(self) -> str:
        return f"{self.person.first_name} {self.person.last_name}"


@dataclass(frozen=True)
class Scene:
    """Office A lists identity verification only; office B lists all three services.

    clerk_a: clerk at A; clerk_b: clerk at B; supervisor_a: supervisor at A;
    supervisor_b: supervisor at B; roleless: a clerk of A without the console
    role; citizen and other: people served.
    """

    app: FastAPI
    office_a: str
    office_b: str
    clerk_a: Someone
    clerk_b: Someone
    supervisor_a: Someone
    supervisor_b: Someone
    roleless: Someone
    citizen: Someone
    other: Someone


def build_scene(app: FastAPI, people: list[tuple[Person, str]], entities: list[str]) -> Scene:
    hoviyat = app.state.hoviyat
    who = [Someone(p, m) for p, m in people]
    clerk_a, clerk_b, supervisor_a, supervisor_b, roleless, citizen, other = who[:7]
    office_a = register_office(hoviyat, entities[0], [PERSON], operator="test").national_id
    office_b = register_office(
        hoviyat, entities[1], [PERSON, MOBILE, ATTEST], operator="test"
    ).national_id
    for office, someone, role in (
        (office_a, clerk_a, CLERK),
        (office_b, clerk_b, CLERK),
        (office_a, supervisor_a, SUPERVISOR),
        (office_b, supervisor_b, SUPERVISOR),
        (office_a, roleless, CLERK),
    ):
        add_member(hoviyat, office, someone.code, role, someone.name, operator="test")
    grant(app, clerk_a.code, Role.COUNTER_CLERK)
    grant(app, clerk_b.code, Role.COUNTER_CLERK)
    grant(app, supervisor_a.code, Role.COUNTER_SUPERVISOR)
    grant(app, supervisor_b.code, Role.COUNTER_SUPERVISOR)
    return Scene(
        app,
        office_a,
        office_b,
        clerk_a,
        clerk_b,
        supervisor_a,
        supervisor_b,
        roleless,
        citizen,
        other,
    )


def signed_in(app: FastAPI, browser: TestClient, someone: Someone) -> None:
    answer = sign_in(app, browser, someone.code)
    assert answer.status_code == 303, answer.text


def csrf_of(browser: TestClient, path: str = "/console/counter") -> str:
    page = browser.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def start(browser: TestClient, office: str, citizen: Someone, *, mobile: str | None = None) -> Any:
    return browser.post(
        "/console/counter/sessions",
        data={
            "csrf_token": csrf_of(browser),
            "office_id": office,
            "national_code": citizen.code,
            "mobile": mobile or citizen.mobile,
        },
    )


def session_id_of(answer: Any) -> str:
    assert answer.status_code == 303, answer.text
    found = re.match(r"/console/counter/sessions/([^?]+)", answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return found.group(1)


def texted_code(app: FastAPI, mobile: str) -> str:
    message = latest_message(app.state.hoviyat.db)
    assert message is not None and message.mobile == mobile
    found = re.search(r"(\d{6})", message.body)
    assert found is not None, message.body
    return found.group(1)


def present(browser: TestClient, session_id: str, code: str) -> Any:
    return browser.post(
        f"/console/counter/sessions/{session_id}/presence",
        data={"csrf_token": csrf_of(browser), "code": code},
    )


def open_session(scene: Scene, browser: TestClient, office: str, citizen: Someone) -> str:
    """Started and proven: a session ready for services."""
    session_id = session_id_of(start(browser, office, citizen))
    answer = present(browser, session_id, texted_code(scene.app, citizen.mobile))
    assert answer.status_code == 303, answer.text
    return session_id


def verify_person(browser: TestClient, session_id: str, about: Someone, csrf: str) -> Any:
    return browser.post(
        f"/console/counter/sessions/{session_id}/act",
        data={
            "csrf_token": csrf,
            "service": PERSON,
            "national_code": about.code,
            "first_name": about.person.first_name,
            "last_name": about.person.last_name,
            "birth_date": about.person.birth_date.isoformat(),
        },
    )


def entries(app: FastAPI, event_type: str, **detail: str) -> list[AuditEntry]:
    with app.state.hoviyat.db.read() as db:
        rows = db.exec(
            select(AuditEntry)
            .where(AuditEntry.event_type == event_type)
            .order_by(col(AuditEntry.id))
        ).all()
    return [r for r in rows if all(r.detail.get(k) == v for k, v in detail.items())]


def key_of(app: FastAPI, someone: Someone) -> str:
    return person_key(app, someone.code)


def move_session_clock(app: FastAPI, session_id: str, **columns: timedelta) -> None:
    """Move the session's timestamps into the past (``expires_at``, ``code_expires_at``)."""
    now = datetime.now(UTC)
    with app.state.hoviyat.db.session() as db:
        db.execute(
            update(AssistedSession)
            .where(col(AssistedSession.id) == session_id)
            .values({name: now - delta for name, delta in columns.items()})
        )
