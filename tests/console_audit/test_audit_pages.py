"""The auditors' console pages over HTTP through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from console_support import csrf_token, grant, person_key, refusals, signed_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import col, select

from idp.console.roles import Role
from idp.storage.models import AuditEntry, Client
from verifiers.registry.base import Person

HOVIYAT = str(Path(sys.executable).parent / "hoviyat")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def verify(app_client: TestClient, token: str, person: Person) -> str:
    """A real verification by the demo bank: its tracking code."""
    answer = app_client.post(
        "/v1/persons/verify",
        json={"national_code": person.national_code},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["tracking_code"])


def auditor(app: FastAPI, browser: TestClient, person: Person) -> None:
    grant(app, person.national_code, Role.AUDITOR)
    signed_in(app, browser, person.national_code)


def search(browser: TestClient, lang: str = "", **fields: str) -> str:
    """Post the search form as a browser does; the URL it is sent to."""
    suffix = f"?lang={lang}" if lang else ""
    form = browser.get(f"/console/audit{suffix}")
    assert form.status_code == 200, form.text
    answer = browser.post(
        f"/console/audit{suffix}", data={"csrf_token": csrf_token(form.text), **fields}
    )
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def test_an_auditor_finds_the_verifications_of_one_client(
    hoviyat_app: FastAPI,
    browser: TestClient,
    app_client: TestClient,
    bank_token: str,
    people: list[Person],
) -> None:
    auditor(hoviyat_app, browser, people[0])
    codes = [verify(app_client, bank_token, people[2]) for _ in range(3)]
    location = search(browser, lang="en", client="demo-bank", event_type="verification")
    page = browser.get(location)
    assert page.status_code == 200, page.text
    assert 'dir="ltr"' in page.text and "Results (newest first)" in page.text
    shown = re.findall(r"<bdi dir=\"ltr\">([A-Z0-9-]{8,40})</bdi>", page.text)
    assert [code for code in shown if code in codes] == codes[::-1]  # newest first
    persian = browser.get(location.replace("&lang=en", "").replace("?lang=en", ""))
    assert 'dir="rtl"' in persian.text and codes[0] in persian.text
    nothing = browser.get(search(browser, client="no-such-client"))
    assert not any(code in nothing.text for code in codes)


def test_a_person_without_the_auditor_role_is_refused_and_the_refusal_is_audited(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    grant(hoviyat_app, people[1].national_code, Role.ADMIN)
    signed_in(hoviyat_app, browser, people[1].national_code)
    for path in ("/console/audit", "/console/audit/charts", "/console/audit/entries/1"):
        answer = browser.get(path)
        assert answer.status_code == 403, (path, answer.text)
    home = browser.get("/console")
    export = browser.post("/console/audit/export", data={"csrf_token": csrf_token(home.text)})
    assert export.status_code == 403
    refused = refusals(hoviyat_app, "missing_role")
    assert [r.operation for r in refused] == [
        "GET /console/audit",
        "GET /console/audit/charts",
        "GET /console/audit/entries/1",
        "POST /console/audit/export",
    ]
    assert all(r.actor_id == person_key(hoviyat_app, people[1].national_code) for r in refused)


def test_a_searched_national_code_is_in_no_url_and_no_page(
    hoviyat_app: FastAPI,
    browser: TestClient,
    app_client: TestClient,
    bank_token: str,
    people: list[Person],
) -> None:
    auditor(hoviyat_app, browser, people[0])
    citizen, other = people[2], people[3]
    mine = verify(app_client, bank_token, citizen)
    theirs = verify(app_client, bank_token, other)
    code = citizen.national_code
    digest = person_key(hoviyat_app, code)
    location = search(browser, national_code=code.translate(PERSIAN))  # Persian digits typed
    page = browser.get(location)
    assert page.status_code == 200
    assert mine in page.text and theirs not in page.text
    for text in (location, unquote(location), page.text):
        assert code not in text and code.translate(PERSIAN) not in text
        assert digest not in text
    # The search by person is itself in the log, under the person's hash only.
    with hoviyat_app.state.hoviyat.db.session() as db:
        searched = db.exec(
            select(AuditEntry).where(AuditEntry.event_type == "audit_searched")
        ).all()
    assert [e.subject_hash for e in searched] == [digest]
    assert searched[0].actor_id == person_key(hoviyat_app, people[0].national_code)


def test_a_wrong_national_code_is_said_on_the_form_and_not_echoed(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    auditor(hoviyat_app, browser, people[0])
    form = browser.get("/console/audit?lang=en")
    answer = browser.post(
        "/console/audit?lang=en",
        data={"csrf_token": csrf_token(form.text), "national_code": "0499370898", "since": "x"},
    )
    assert answer.status_code == 422
    assert "Not a valid national code" in answer.text and "Write the day as" in answer.text
    assert "0499370898" not in answer.text


def test_the_exported_search_verifies_with_the_cli_and_fails_after_one_byte_changes(
    hoviyat_app: FastAPI,
    browser: TestClient,
    app_client: TestClient,
    bank_token: str,
    people: list[Person],
    tmp_path: Path,
) -> None:
    auditor(hoviyat_app, browser, people[0])
    codes = [verify(app_client, bank_token, people[2]) for _ in range(3)]
    page = browser.get(search(browser, client="demo-bank", event_type="verification"))
    sealed = re.search(r'name="q" value="([^"]+)"', page.text)
    assert sealed is not None
    answer = browser.post(
        "/console/audit/export", data={"csrf_token": csrf_token(page.text), "q": sealed.group(1)}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith("attachment;")
    export = tmp_path / "search.jsonl"
    export.write_bytes(answer.content)
    assert all(code.encode() in answer.content for code in codes)
    checked = subprocess.run(
        [HOVIYAT, "audit", "verify", str(export)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("OK: 3 entries")
    changed = codes[1][:-1] + ("A" if codes[1][-1] != "A" else "B")
    altered = answer.content.replace(codes[1].encode(), changed.encode(), 1)
    assert len(altered) == len(answer.content) and altered != answer.content
    export.write_bytes(altered)
    refused = subprocess.run(
        [HOVIYAT, "audit", "verify", str(export)], capture_output=True, text=True, check=False
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr


def test_an_entrys_page_checks_its_proof_and_catches_a_changed_row(
    hoviyat_app: FastAPI,
    browser: TestClient,
    app_client: TestClient,
    bank_token: str,
    people: list[Person],
) -> None:
    auditor(hoviyat_app, browser, people[0])
    code = verify(app_client, bank_token, people[2])
    with hoviyat_app.state.hoviyat.db.session() as db:
        entry = db.exec(select(AuditEntry).where(AuditEntry.tracking_code == code)).one()
    path = f"/console/audit/entries/{entry.id}?lang=en"
    before = browser.get(path)
    assert 'data-status="unsequenced"' in before.text or 'data-status="uncovered"' in before.text
    signed = browser.post(
        "/console/audit/checkpoint?lang=en",
        data={"csrf_token": csrf_token(before.text), "entry": str(entry.id)},
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == f"/console/audit/entries/{entry.id}?lang=en"
    page = browser.get(path)
    assert 'data-status="verified"' in page.text, page.text
    with hoviyat_app.state.hoviyat.db.session() as db:
        db.execute(
            update(AuditEntry).where(col(AuditEntry.id) == entry.id).values(outcome="match_altered")
        )
    tampered = browser.get(path)
    assert 'data-status="failed"' in tampered.text
    assert "does not lead to the root hash" in tampered.text


def test_forged_links_and_ids_get_a_clear_page_not_an_error(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    auditor(hoviyat_app, browser, people[0])
    good = search(browser, client="demo-bank")
    sealed = good.split("q=", 1)[1]
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    for url in (
        "/console/audit?q=not-a-search&lang=en",
        f"/console/audit?q={flipped}&lang=en",
        f"/console/audit?q={sealed}&after=9999999999999999999999.1&lang=en",
        f"/console/audit?q={sealed}&after=1.-5&lang=en",
    ):
        answer = browser.get(url)
        assert answer.status_code == 400, url
        assert "This search link was not made by this server" in answer.text
    for entry in ("abc", "0", "99999999999999999999", "-1"):
        missing = browser.get(f"/console/audit/entries/{entry}?lang=en")
        assert missing.status_code == 404 and "No entry has this id" in missing.text


def test_a_search_posted_without_the_csrf_token_is_refused(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person]
) -> None:
    auditor(hoviyat_app, browser, people[0])
    answer = browser.post("/console/audit", data={"client": "demo-bank"})
    assert answer.status_code == 403
    assert [r.operation for r in refusals(hoviyat_app, "csrf_missing")] == ["POST /console/audit"]


def test_a_client_name_cannot_inject_markup_into_the_charts(
    hoviyat_app: FastAPI,
    browser: TestClient,
    app_client: TestClient,
    bank_token: str,
    people: list[Person],
) -> None:
    hostile = '</text><script>alert(1)</script><text x="0">"'
    with hoviyat_app.state.hoviyat.db.session() as db:
        renamed = db.execute(
            update(Client).where(col(Client.client_id) == "demo-bank").values(name=hostile)
        )
        assert renamed.rowcount == 1
    auditor(hoviyat_app, browser, people[0])
    verify(app_client, bank_token, people[2])
    page = browser.get("/console/audit/charts?days=7&lang=en")
    assert page.status_code == 200
    assert "<script>" not in page.text and hostile not in page.text
    assert "&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none'
    assert page.text.count("<svg") >= 2 and page.text.count("<table") == 2
    assert "Verifications per day per agency" in page.text


@pytest.mark.parametrize("days", ["7", "30", "90", "x"])
def test_every_chart_span_answers(
    hoviyat_app: FastAPI, browser: TestClient, people: list[Person], days: str
) -> None:
    auditor(hoviyat_app, browser, people[0])
    page = browser.get(f"/console/audit/charts?days={days}")
    assert page.status_code == 200 and 'dir="rtl"' in page.text
    rows = page.text.split("<tbody>")[1].split("</tbody>")[0].count("<tr>")
    assert rows == (int(days) if days.isdigit() else 30)
