"""The citizen's own pages: the permissions they gave (with withdrawal), who looked
them up (their access history), and logout.

Reached with the session cookie alone, outside any app's login; every change
is CSRF-checked and audited (``consent``/``revoked``, ``logout``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from idp.audit.history import TEHRAN, BadCursor, citizen_history
from idp.audit.log import append
from idp.context import Hoviyat
from idp.login import sessions
from idp.login.consent import list_consents, revoke_consent
from idp.login.flow import person_event
from idp.login.i18n import Language, claim_label, digits_for, pick_language, translate
from idp.login.render import csrf_ok, hoviyat_of, message, page_url, render, see_other
from idp.storage.clients import get_client
from idp.storage.login import LoginSession
from idp.tracking import new_tracking_code
from verifiers.dates import to_jalali

router = APIRouter(tags=["login"], include_in_schema=False)

FormStr = Annotated[str, Form()]


@dataclass(frozen=True)
class _Visit:
    """A citizen on their own pages: the live session, and the transaction it was read in."""

    hoviyat: Hoviyat
    language: Language
    db_session: Session
    session: LoginSession


@contextmanager
def _visit(request: Request, lang: str | None) -> Iterator[_Visit | Response]:
    """The logged-in citizen, or the 401 page to answer instead."""
    hoviyat = hoviyat_of(request)
    language = pick_language(lang, None)
    with hoviyat.db.session() as db_session:
        session = sessions.session_row(request, db_session)
        if session is None:
            yield message(request, language, "not_logged_in", 401)
        else:
            yield _Visit(hoviyat, language, db_session, session)


@router.get("/login/consents")
def my_consents(request: Request, lang: str | None = None) -> Response:
    with _visit(request, lang) as visit:
        if isinstance(visit, Response):
            return visit
        db_session, session, language = visit.db_session, visit.session, visit.language
        items = []
        for row in list_consents(db_session, session.national_code):
            client = get_client(db_session, row.client_id)
            labels: list[str] = []
            for claim in row.claims:
                label = claim_label(str(claim), language)
                if label not in labels:
                    labels.append(label)
            items.append(
                {
                    "id": row.id,
                    "client_name": client.name if client else row.client_id,
                    "granted": translate(
                        "consents.granted",
                        language,
                        date=digits_for(_local_date(row.granted_at, language), language),
                    ),
                    "claim_labels": labels,
                }
            )
        return render(
            request,
            "consents.html",
            language,
            title_key="consents.title",
            consents=items,
            logged_in_as=translate(
                "logged_in_as", language, code=digits_for(session.national_code, language)
            ),
        )


HISTORY_PAGE = 50


@router.get("/login/history")
def my_history(request: Request, lang: str | None = None, before: str | None = None) -> Response:
    """Who looked the citizen up, newest first, every event and outcome in words."""
    with _visit(request, lang) as visit:
        if isinstance(visit, Response):
            return visit
        hoviyat, session, language = visit.hoviyat, visit.session, visit.language
        cursor = int(before) if before and before.isdigit() and len(before) <= 18 else None
        if before and cursor is None:
            return message(request, language, "history.bad_cursor", 400)
        try:
            page = citizen_history(
                visit.db_session,
                pepper=hoviyat.secrets.subject_pepper,
                policies=hoviyat.policies,
                national_code=session.national_code,
                limit=HISTORY_PAGE,
                before=cursor,
            )
        except BadCursor:
            return message(request, language, "history.bad_cursor", 400)
        national_code = session.national_code
    older = None
    if page.next_cursor is not None:
        older = "/login/history?" + urlencode({"before": page.next_cursor, "lang": language.code})
    return render(
        request,
        "history.html",
        language,
        title_key="history.title",
        entries=[_history_row(item, language) for item in page.items],
        older_url=older,
        consents_url=page_url("/login/consents", language),
        logged_in_as=translate("logged_in_as", language, code=digits_for(national_code, language)),
    )


def _history_row(item: dict[str, Any], language: Language) -> dict[str, str]:
    code = language.code
    if code == "fa":
        when = digits_for(item["time_jalali"], language)
    else:
        when = datetime.fromisoformat(item["time"]).astimezone(TEHRAN).strftime("%Y-%m-%d %H:%M")
    return {
        "when": when,
        "event": item["event"][code],
        "agency": item["agency"] or "—",
        "service": item["service"][code] or "—",
        "legal_basis": item["legal_basis"] or "—",
        "outcome": item["outcome"][code],
        "tracking_code": item["tracking_code"],
    }


def _local_date(moment: datetime, language: Language) -> str:
    if language.code == "fa":
        return to_jalali(moment.date())
    return moment.date().isoformat()


@router.post("/login/consents/revoke")
def revoke(
    request: Request,
    lang: FormStr = "",
    csrf_token: FormStr = "",
    consent_id: FormStr = "",
) -> Response:
    if not csrf_ok(request, csrf_token):
        return message(request, pick_language(lang, None), "err.csrf", 403)
    with _visit(request, lang) as visit:
        if isinstance(visit, Response):
            return visit
        db_session, session, language = visit.db_session, visit.session, visit.language
        if consent_id.isdigit() and revoke_consent(
            db_session, session.national_code, int(consent_id)
        ):
            event = person_event(
                visit.hoviyat,
                tracking_code=new_tracking_code(),
                event_type="consent",
                operation="revoke",
                outcome="revoked",
                national_code=session.national_code,
                consent_id=int(consent_id),
            )
            append(db_session, event)
    return see_other(page_url("/login/consents", language))


@router.post("/login/logout")
def logout(request: Request, lang: FormStr = "", csrf_token: FormStr = "") -> Response:
    hoviyat = hoviyat_of(request)
    language = pick_language(lang, None)
    if not csrf_ok(request, csrf_token):
        return message(request, language, "err.csrf", 403)
    with hoviyat.db.session() as db_session:
        session = sessions.session_row(request, db_session)
        if session is not None and sessions.end_session(db_session, session.id):
            event = person_event(
                hoviyat,
                tracking_code=session.tracking_code,
                event_type="logout",
                operation="logout",
                outcome="success",
                national_code=session.national_code,
                session_id=session.id,
            )
            append(db_session, event)
    response = message(request, language, "logged_out", 200)
    sessions.clear_session_cookie(response, hoviyat.settings)
    return response
