"""The attestation pages: the clerk's check page, the holder's own page, QR images.

- ``/attestations/check``: a counter clerk types or scans a verification code,
  or pastes an attestation, and sees exactly the disclosed facts, who issued
  them, when, and whether they are still valid (Persian first, English).
- ``/attestations``: a citizen logged in at Hoviyat (the login session cookie,
  level substantial or higher) chooses facts, purpose and recipient, gets the
  attestation with its code and QR, and revokes earlier ones. Forms carry the
  login pages' signed double-submit CSRF token.
- ``/attestations/qr/{code}.png|.svg``: the QR code of a check URL, for printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from idp.attestations import qr, sharing
from idp.attestations.claims import PERSON_FACTS
from idp.attestations.issuer import revoke
from idp.attestations.service import AttestationService
from idp.attestations.verifier import (
    Lang,
    Report,
    display,
    fact_title,
    format_value,
    word,
)
from idp.audit.log import subject_hash
from idp.context import Hoviyat
from idp.http.attestations import (
    MAX_ATTESTATION_CHARS,
    AttestationIn,
    Holder,
    HoviyatDep,
    ServiceDep,
    issue_for,
    record_check,
)
from idp.login.i18n import EN, FA, Language, translate
from idp.login.render import csrf_ok, page, render
from idp.login.sessions import current_login
from idp.problems import Problem, bad_request, not_found
from idp.storage import attestations as attestation_store
from idp.storage.attestations import Attestation
from policies.assurance import SUBSTANTIAL, rank
from verifiers.digits import translate_digits

router = APIRouter(tags=["attestation pages"], include_in_schema=False)


# --- the clerk's page and QR codes -------------------------------------------------------


def _language(value: str | None) -> Language:
    return EN if value == "en" else FA


def _words(language: Language) -> Lang:
    """The verifier's own labels (shared with the API and CLI) are keyed by code."""
    return "en" if language.code == "en" else "fa"


def _page(
    language: Language,
    *,
    report: Report | None = None,
    error: str | None = None,
    code: str | None = None,
    audience: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    lang = _words(language)
    facts: list[tuple[str, dict[str, str]]] = []
    about: list[tuple[str, Any]] = []
    if report is not None and report.claims:
        facts = [
            (fact_title(name, lang), {"key": name, "text": format_value(value, lang)})
            for name, value in report.facts
        ]
        summary = report.as_dict()
        about = [
            (
                word(key, lang),
                display(key, summary[key], lang) if summary.get(key) else None,
            )
            for key in (
                "issuer",
                "signer",
                "issued_at",
                "expires_at",
                "purpose",
                "recipient",
                "tracking_code",
            )
        ]
    # Disclosed facts are personal data: never cached (framing is refused app-wide).
    return page(
        "attestations/check.html",
        language,
        title_key="attest.check.title",
        switch_url=f"/attestations/check?lang={language.other}",
        status_code=status_code,
        site_key="attest.site",
        report=report,
        facts=facts,
        about=about,
        error=error,
        code=code,
        audience=audience,
    )


def _check(
    hoviyat: Hoviyat,
    service: AttestationService,
    lang: Language,
    code: str | None,
    token: str | None,
    audience: str | None,
) -> HTMLResponse:
    presentation = (token or "").strip()
    if code and code.strip():
        canonical = qr.normalise_code(code)
        if canonical is None:
            return _page(
                lang, error=translate("attest.check.bad_code", lang), code=code, status_code=400
            )
        with hoviyat.db.session() as session:
            opened = sharing.open_share(session, canonical)
        if opened is None:
            return _page(
                lang,
                error=translate("attest.check.unknown_code", lang),
                code=canonical,
                status_code=404,
            )
        presentation, code = opened, canonical
    if not presentation:
        return _page(lang, error=translate("attest.check.empty", lang), status_code=400)
    if len(presentation) > MAX_ATTESTATION_CHARS:
        return _page(lang, error=translate("attest.check.empty", lang), status_code=413)
    # RFC 7519 §4.1.3: an attestation naming a recipient verifies only for that recipient.
    report = service.verifier.verify(
        presentation, check_status=True, audience=(audience or "").strip() or None
    )
    record_check(hoviyat, report, actor_type="clerk", actor_id=None, service=None)
    return _page(lang, report=report, code=code, audience=audience)


@router.get("/attestations/check", response_class=HTMLResponse)
def check_page(
    hoviyat: HoviyatDep,
    service: ServiceDep,
    code: str | None = None,
    lang: str | None = None,
) -> HTMLResponse:
    language = _language(lang)
    if not code:
        return _page(language)
    return _check(hoviyat, service, language, code, None, None)


@router.post("/attestations/check", response_class=HTMLResponse)
def check_submit(
    hoviyat: HoviyatDep,
    service: ServiceDep,
    code: Annotated[str, Form()] = "",
    token: Annotated[str, Form(max_length=MAX_ATTESTATION_CHARS)] = "",
    lang: Annotated[str, Form()] = "fa",
    audience: Annotated[str, Form(max_length=500)] = "",
) -> HTMLResponse:
    return _check(hoviyat, service, _language(lang), code, token, audience)


@router.get("/attestations/qr/{code}.{kind}")
def qr_image(
    code: str,
    kind: Literal["png", "svg"],
    hoviyat: HoviyatDep,
    service: ServiceDep,
) -> Response:
    canonical = qr.normalise_code(code)
    if canonical is None:
        raise bad_request("invalid-code", "a verification code has 16 characters")
    with hoviyat.db.session() as session:
        if sharing.open_share(session, canonical) is None:
            raise not_found("no attestation has this verification code, or it has expired")
    url = qr.check_url(service.issuer_url, canonical)
    if kind == "png":
        return Response(
            qr.qr_png(url), media_type="image/png", headers={"Cache-Control": "no-store"}
        )
    return Response(
        qr.qr_svg(url), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


# --- the holder's own page -----------------------------------------------------------------

FormStr = Annotated[str, Form(max_length=500)]


def _holder_page(
    request: Request,
    lang: Language,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        "attestations/holder.html",
        lang,
        title_key="attest.holder.title",
        switch_url=f"/attestations?lang={lang.other}",
        status_code=status_code,
        site_key="attest.site",
        fact_titles=[(name, fact_title(name, _words(lang))) for name in PERSON_FACTS],
        **context,
    )


def _logged_in_holder(request: Request, hoviyat: Hoviyat, lang: Language) -> Holder | HTMLResponse:
    with hoviyat.db.session() as db_session:
        login = current_login(request, db_session)
    if login is None:
        return _holder_page(request, lang, status_code=401, message="not_logged_in")
    if rank(login.acr) < rank(SUBSTANTIAL):
        return _holder_page(request, lang, status_code=403, message="low_level")
    return Holder(
        national_code=login.national_code,
        acr=login.acr,
        client_id=None,
        service_code=None,
        entity_national_id=login.entity_national_id,
    )


def _my_attestations(hoviyat: Hoviyat, holder: Holder) -> list[Attestation]:
    holder_hash = subject_hash(hoviyat.secrets.subject_pepper, holder.national_code)
    with hoviyat.db.session() as session:
        return attestation_store.holder_attestations(session, holder_hash, limit=50)


def _form_page(
    request: Request,
    hoviyat: Hoviyat,
    holder: Holder,
    lang: Language,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _holder_page(
        request,
        lang,
        status_code=status_code,
        holder=holder,
        error=error,
        attestations=_my_attestations(hoviyat, holder),
    )


@dataclass(frozen=True)
class _Sender:
    """A holder's form as sent: its language, and its holder or the page refusing it."""

    language: Language
    holder: Holder | HTMLResponse


def _form_sender(
    request: Request, hoviyat: HoviyatDep, csrf_token: FormStr = "", lang: FormStr = "fa"
) -> _Sender:
    """The holder who sent a form: a valid CSRF token first, then a sufficient login."""
    language = _language(lang)
    if not csrf_ok(request, csrf_token):
        return _Sender(language, _holder_page(request, language, status_code=403, message="forged"))
    return _Sender(language, _logged_in_holder(request, hoviyat, language))


SenderDep = Annotated[_Sender, Depends(_form_sender)]


@router.get("/attestations", response_class=HTMLResponse)
def holder_page(request: Request, hoviyat: HoviyatDep, lang: str | None = None) -> Response:
    language = _language(lang)
    holder = _logged_in_holder(request, hoviyat, language)
    if isinstance(holder, HTMLResponse):
        return holder
    return _form_page(request, hoviyat, holder, language)


def _age_thresholds(text: str) -> list[int]:
    parts = [p for p in translate_digits(text).replace("،", ",").replace(" ", ",").split(",") if p]
    if not all(p.isdigit() for p in parts):
        raise bad_request("invalid-attestation-request", f"age_over must be numbers: {text!r}")
    return [int(p) for p in parts]


@router.post("/attestations/new", response_class=HTMLResponse)
def holder_issue(
    request: Request,
    hoviyat: HoviyatDep,
    service: ServiceDep,
    sender: SenderDep,
    purpose: FormStr = "",
    recipient: FormStr = "",
    facts: Annotated[list[str] | None, Form()] = None,
    age_over: FormStr = "",
    representation: FormStr = "",
    validity_days: FormStr = "",
) -> Response:
    holder, language = sender.holder, sender.language
    if isinstance(holder, HTMLResponse):
        return holder
    chosen = list(facts or [])
    entity = None
    if representation and holder.entity_national_id:
        chosen.append("representation")
        entity = holder.entity_national_id
    try:
        days = translate_digits(validity_days).strip()
        body = AttestationIn(
            purpose=purpose.strip(),
            recipient=recipient.strip() or None,
            facts=chosen,
            age_over=_age_thresholds(age_over),
            entity_national_id=entity,
            validity_days=int(days) if days.isdigit() else None,
        )
        answer = issue_for(hoviyat, service, holder, body)
    except Problem as problem:
        return _form_page(
            request, hoviyat, holder, language, error=problem.detail, status_code=problem.status
        )
    except ValueError as exc:  # pydantic's own checks of the form (length of purpose...)
        return _form_page(request, hoviyat, holder, language, error=str(exc), status_code=400)
    return _holder_page(request, language, holder=holder, issued=answer)


@router.post("/attestations/revoke", response_class=HTMLResponse)
def holder_revoke(hoviyat: HoviyatDep, sender: SenderDep, attestation_id: FormStr = "") -> Response:
    holder, language = sender.holder, sender.language
    if isinstance(holder, HTMLResponse):
        return holder
    with hoviyat.db.session() as session:
        row = revoke(
            session,
            attestation_id,
            actor_type="citizen",
            actor_id=None,
            reason="holder request",
            holder_subject_hash=subject_hash(hoviyat.secrets.subject_pepper, holder.national_code),
        )
    if row is None:
        raise not_found(f"no attestation {attestation_id} of yours")
    return RedirectResponse(f"/attestations?lang={language.code}", status_code=303)
