"""The citizen's passkeys page, outside any app's login: the passkeys bound to them,
adding one (only from a session at substantial, as in a login), removing one.

Reached with the session cookie, like :mod:`idp.login.account`; adding runs
the same JSON endpoints as the high login step (:mod:`idp.login.steps.passkey`,
without an interaction); removing is a CSRF-checked form, audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from idp.audit.log import append, subject_hash
from idp.login import sessions
from idp.login.flow import person_event
from idp.login.forms import HIGH_PAGE_CSP
from idp.login.i18n import Language, digits_for, pick_language, translate
from idp.login.render import csrf_ok, hoviyat_of, message, page_url, render, see_other
from idp.storage import passkeys
from idp.tracking import new_tracking_code
from policies import assurance
from verifiers.dates import to_jalali

router = APIRouter(tags=["login"], include_in_schema=False)

FormStr = Annotated[str, Form()]


def _date(moment: datetime | None, language: Language) -> str:
    if moment is None:
        return "—"
    shown = to_jalali(moment.date()) if language.code == "fa" else moment.date().isoformat()
    return digits_for(shown, language)


@router.get("/login/passkeys")
def my_passkeys(request: Request, lang: str | None = None) -> Response:
    hoviyat = hoviyat_of(request)
    language = pick_language(lang, None)
    with hoviyat.db.read() as db:
        session = sessions.session_row(request, db)
        if session is None:
            return message(request, language, "not_logged_in", 401)
        person = subject_hash(hoviyat.secrets.subject_pepper, session.national_code)
        rows = passkeys.of_person(db, person)
    items = [
        {
            "credential_id": row.credential_id,
            "created": translate(
                "passkeys.created", language, date=_date(row.created_at, language)
            ),
            "last_used": translate(
                "passkeys.last_used", language, date=_date(row.last_used_at, language)
            ),
        }
        for row in rows
    ]
    return render(
        request,
        "passkeys.html",
        language,
        title_key="passkeys.title",
        passkeys=items,
        can_add=assurance.satisfies(session.acr, assurance.SUBSTANTIAL),
        headers={"Content-Security-Policy": HIGH_PAGE_CSP},
    )


@router.post("/login/passkeys/remove")
def remove_passkey(
    request: Request, lang: FormStr = "", csrf_token: FormStr = "", credential_id: FormStr = ""
) -> Response:
    hoviyat = hoviyat_of(request)
    language = pick_language(lang, None)
    if not csrf_ok(request, csrf_token):
        return message(request, language, "err.csrf", 403)
    with hoviyat.db.session() as db:
        session = sessions.session_row(request, db)
        if session is None:
            return message(request, language, "not_logged_in", 401)
        person = subject_hash(hoviyat.secrets.subject_pepper, session.national_code)
        if len(credential_id) <= 1400 and passkeys.remove(db, person, credential_id):
            event = person_event(
                hoviyat,
                tracking_code=new_tracking_code(),
                event_type="passkey",
                operation="remove",
                outcome="revoked",
                national_code=session.national_code,
                session_id=session.id,
            )
            append(db, event)
    return see_other(page_url("/login/passkeys", language))
