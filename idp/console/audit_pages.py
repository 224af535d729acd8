"""The auditors' pages of the console (issue 15), role ``auditor`` on every one.

- ``GET  /console/audit``: the search form; with ``q`` (a sealed search,
  :mod:`idp.console.audit_query`) its results, newest first, 50 a page,
  ``after`` the keyset cursor of the next page.
- ``POST /console/audit``: the form; answers 303 to ``?q=…`` (the national code
  never reaches a URL) and records a search by person in the audit log.
- ``GET  /console/audit/entries/<id>``: one entry, its inclusion proof checked
  here against the latest signed checkpoint (signature and RFC 9162 path).
- ``POST /console/audit/checkpoint``: sign a checkpoint now (to cover new entries).
- ``POST /console/audit/export``: the search's entries with their proofs, the
  JSON lines ``hoviyat audit verify`` checks (:mod:`idp.audit.export`).
- ``GET  /console/audit/charts``: verifications per day per agency and the
  refusal rate, SVG drawn here (:mod:`idp.console.charts`) with tables beside.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlmodel import Session

from idp.audit import rfc9162, signed_note, tree
from idp.audit.canonical import CanonicalizationError, entry_bytes, row_document
from idp.audit.checkpoints import latest_checkpoint, log_origin, make_checkpoint
from idp.audit.export import export_lines
from idp.audit.labels import EVENT_LABELS, OUTCOME_LABELS
from idp.audit.search import AuditQuery, newest_page, record_subject_search
from idp.audit.sequencer import read_head
from idp.audit.signing_key import published_keys
from idp.console import charts
from idp.console.audit_counts import DayCounts
from idp.console.audit_query import (
    KEY_LABEL,
    BadSearch,
    BadToken,
    Search,
    decode_position,
    encode_position,
    parse_form,
    seal,
    unseal,
)
from idp.console.audit_strings import MESSAGES
from idp.console.framework import (
    NO_STORE,
    ConsoleUser,
    add_nav_link,
    check_csrf,
    hoviyat_of,
    href,
    language_of,
    render,
    require_role,
)
from idp.console.i18n import add_messages
from idp.console.roles import Role
from idp.context import Hoviyat
from idp.login import keys
from idp.login.i18n import Language
from idp.storage.audit_entries import client_names, entry_by_id
from idp.storage.models import AuditEntry
from idp.tracking import new_tracking_code

router = APIRouter(include_in_schema=False)
auditor = require_role(Role.AUDITOR)
PAGE_SIZE = 50
CHART_DAYS = (7, 30, 90)
INT64_MAX = 2**63 - 1
CONSOLE_SERVICE = "hoviyat-console"

add_messages(MESSAGES)
add_nav_link("/console/audit", "console.audit.nav", Role.AUDITOR)
add_nav_link("/console/audit/charts", "console.audit.charts.nav", Role.AUDITOR)


def _key(hoviyat: Hoviyat) -> bytes:
    return keys.derived_key(hoviyat.secrets, KEY_LABEL)


def _shown(table: dict[str, tuple[str, str]], value: str, language: Language) -> str:
    fa, en = table.get(value, (value, value))
    return fa if language.code == "fa" else en


def _row(entry: AuditEntry, names: dict[str, str], language: Language) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": entry.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "tracking_code": entry.tracking_code,
        "event": _shown(EVENT_LABELS, entry.event_type, language),
        "client": entry.actor_id,
        "client_name": names.get(entry.actor_id or ""),
        "service": entry.service_code,
        "operation": entry.operation,
        "outcome": _shown(OUTCOME_LABELS, entry.outcome, language),
        "refused": entry.outcome.startswith("refused"),
        "leaf_index": entry.leaf_index,
    }


def _form_page(
    request: Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem_key: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        "audit/search.html",
        {"values": values or {}, "errors": errors or {}, "problem_key": problem_key, **context},
        status_code=status_code,
        title_key="console.audit.title",
    )


@router.get("/audit")
def search_page(
    request: Request,
    q: str | None = None,
    after: str | None = None,
    user: ConsoleUser = Depends(auditor),
) -> HTMLResponse:
    if not q:
        return _form_page(request)
    hoviyat = hoviyat_of(request)
    try:
        search = unseal(q[:4000], _key(hoviyat))
        before = decode_position(after) if after else None
    except BadToken:
        return _form_page(request, problem_key="console.audit.err.link", status_code=400)
    language = language_of(request)
    with hoviyat.db.session() as session:
        page = newest_page(session, search.entry_filter(), PAGE_SIZE, before)
        names = client_names(session, {e.actor_id for e in page.entries if e.actor_id})
    next_url = (
        href(language, "/console/audit", q=q, after=encode_position(page.next))
        if page.next
        else None
    )
    return _form_page(
        request,
        values=search.form_values(),
        searched=True,
        by_person=bool(search.subject_hashes),
        rows=[_row(e, names, language) for e in page.entries],
        next_url=next_url,
        first_url=href(language, "/console/audit", q=q) if before else None,
        q=q,
    )


@router.post("/audit")
async def search_post(request: Request, user: ConsoleUser = Depends(auditor)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    hoviyat = hoviyat_of(request)
    try:
        search, hashes = parse_form(form, hoviyat.secrets.subject_pepper)
    except BadSearch as bad:
        typed = {
            name: value.strip()
            for name, value in form.items()
            if isinstance(value, str) and name not in ("national_code", "csrf_token")
        }
        return _form_page(request, values=typed, errors=bad.errors, status_code=422)
    if hashes:
        await run_in_threadpool(_record_search, hoviyat, hashes, user)
    location = href(language_of(request), "/console/audit", q=seal(search, _key(hoviyat)))
    return RedirectResponse(location, status_code=303, headers=NO_STORE)


def _record_search(hoviyat: Hoviyat, hashes: list[str], user: ConsoleUser) -> None:
    # A search by person is itself an access to their data: it shows in their history,
    # under the console's service and the legal basis its policy states.
    policy = hoviyat.policies.get(CONSOLE_SERVICE)
    with hoviyat.db.session() as session:
        record_subject_search(
            session,
            hashes,
            tracking_code=new_tracking_code(),
            actor_type="auditor",
            actor_id=user.person_key,
            service_code=CONSOLE_SERVICE,
            legal_basis=policy.legal_basis if policy else None,
        )


@dataclass(frozen=True)
class ProofCheck:
    """The verdict on one entry's place in the log: a message key and the figures shown."""

    status: str  # verified | failed | unsequenced | uncovered | no_checkpoint
    detail: str = ""
    tree_size: int | None = None
    root_hash: str | None = None
    signed_at: str | None = None
    key_id: str | None = None
    leaf_hash: str | None = None
    path: tuple[str, ...] = ()


def check_entry(session: Session, entry: AuditEntry, origin: str) -> ProofCheck:
    """Recompute the entry's leaf from its stored fields and walk its RFC 9162 path to the
    root the latest checkpoint signs, after checking that signature with the log's key."""
    if entry.leaf_index is None:
        return ProofCheck("unsequenced")
    latest = latest_checkpoint(session)
    if latest is None:
        return ProofCheck("no_checkpoint")
    shown = ProofCheck(
        "uncovered",
        tree_size=latest.tree_size,
        root_hash=latest.root_hash.hex(),
        signed_at=latest.signed_at.strftime("%Y-%m-%d %H:%M:%SZ"),
        key_id=latest.key_id,
    )
    if entry.leaf_index >= latest.tree_size:
        return shown
    try:
        leaf = rfc9162.leaf_hash(entry_bytes(row_document(entry, entry.leaf_index)))
    except CanonicalizationError as exc:  # a row altered into something JCS cannot write
        return replace(shown, status="failed", detail=str(exc))
    key = {key.key_id: key for key in published_keys(session)}.get(latest.key_id)
    if key is None:
        return replace(shown, status="failed", detail="the checkpoint's key is not published")
    try:
        signed = signed_note.open_checkpoint(latest.note, origin, key.public_key)
        current = read_head(session).tree_size
        path = tree.inclusion_proof(session, entry.leaf_index, signed.tree_size, current)
        rfc9162.verify_inclusion(leaf, entry.leaf_index, signed.tree_size, path, signed.root_hash)
    except (signed_note.NoteError, rfc9162.ProofError) as exc:
        return replace(shown, status="failed", detail=str(exc), leaf_hash=leaf.hex())
    return replace(
        shown, status="verified", leaf_hash=leaf.hex(), path=tuple(h.hex() for h in path)
    )


def _entry_id(text: str) -> int | None:
    if text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= INT64_MAX:
        return int(text)
    return None


@router.get("/audit/entries/{entry_text}")
def entry_page(
    request: Request, entry_text: str, user: ConsoleUser = Depends(auditor)
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    entry_id = _entry_id(entry_text)
    with hoviyat.db.session() as session:
        entry = entry_by_id(session, entry_id) if entry_id else None
        if entry is None:
            return render(
                request,
                "audit/missing.html",
                {},
                status_code=404,
                title_key="console.audit.entry.missing",
            )
        check = check_entry(session, entry, log_origin(hoviyat.settings.issuer))
        names = client_names(session, [entry.actor_id] if entry.actor_id else [])
    language = language_of(request)
    return render(
        request,
        "audit/entry.html",
        {
            "entry": entry,
            "row": _row(entry, names, language),
            "detail": entry.detail,
            "check": check,
        },
        title_key="console.audit.entry.title",
    )


@router.post("/audit/checkpoint")
async def sign_checkpoint(request: Request, user: ConsoleUser = Depends(auditor)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    hoviyat = hoviyat_of(request)
    await run_in_threadpool(
        make_checkpoint,
        hoviyat.db,
        hoviyat.secrets.key_encryption_key,
        log_origin(hoviyat.settings.issuer),
    )
    back = _entry_id(str(form.get("entry") or ""))
    path = f"/console/audit/entries/{back}" if back else "/console/audit"
    return RedirectResponse(href(language_of(request), path), status_code=303, headers=NO_STORE)


def _export_query(search: Search) -> AuditQuery:
    where = search.entry_filter()
    return AuditQuery(
        since=where.since, until=where.until, event_type=where.event_type,
        actor_id=where.actor_id, service_code=where.service_code,
        tracking_code=where.tracking_code, outcome=where.outcome,
        operation=where.operation, subject_hashes=where.subject_hashes,
    )  # fmt: skip


@router.post("/audit/export")
async def export(request: Request, user: ConsoleUser = Depends(auditor)) -> Response:
    form = await request.form()
    check_csrf(request, form)
    hoviyat = hoviyat_of(request)
    token = form.get("q")
    try:
        if not isinstance(token, str):
            raise BadToken("no search to export")
        search = unseal(token[:4000], _key(hoviyat))
    except BadToken:
        return _form_page(request, problem_key="console.audit.err.link", status_code=400)
    lines = export_lines(
        hoviyat.db,
        key_encryption_key=hoviyat.secrets.key_encryption_key,
        pepper=hoviyat.secrets.subject_pepper,
        origin=log_origin(hoviyat.settings.issuer),
        actor_type="auditor",
        actor_id=user.person_key,
        query=_export_query(search),
    )
    # The first line records the export and signs the checkpoint its proofs lead to.
    header = await run_in_threadpool(next, lines)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    def body() -> Any:
        yield header
        yield from lines

    return StreamingResponse(
        body(),
        media_type="application/jsonl",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="hoviyat-audit-{stamp}.jsonl"',
        },
    )


@router.get("/audit/charts")
def charts_page(
    request: Request, days: str | None = None, user: ConsoleUser = Depends(auditor)
) -> HTMLResponse:
    span = int(days) if days in {str(n) for n in CHART_DAYS} else 30
    hoviyat = hoviyat_of(request)
    language = language_of(request)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=span - 1)
    cache: DayCounts | None = getattr(request.app.state, "console_audit_day_counts", None)
    if cache is None:
        cache = request.app.state.console_audit_day_counts = DayCounts()
    with hoviyat.db.session() as session:
        counts = cache.counts(session, first, today)
        names = client_names(session, {c.actor_id for c in counts if c.actor_id})
    unnamed = _t("console.audit.charts.unnamed", language)
    day_counts = [
        charts.DayCount(c.day, _agency(c.actor_id, names, unnamed), c.total, c.refused)
        for c in counts
    ]
    day_list = charts.day_range(first, today)
    per_agency = charts.verifications_per_agency(
        _t("console.audit.charts.per_agency", language),
        day_list,
        day_counts,
        others=_t("console.audit.charts.others", language),
    )
    rate = charts.refusal_rate(
        _t("console.audit.charts.refusals", language),
        day_list,
        day_counts,
        _t("console.audit.charts.rate", language),
    )
    rtl = language.direction == "rtl"
    return render(
        request,
        "audit/charts.html",
        {
            "span": span,
            "spans": CHART_DAYS,
            "charts": [
                (per_agency, charts.svg(per_agency, chart_id="per-agency", rtl=rtl)),
                (rate, charts.svg(rate, chart_id="refusal-rate", rtl=rtl)),
            ],
            "legend": charts.legend,
        },
        title_key="console.audit.charts.title",
    )


def _agency(client_id: str | None, names: dict[str, str], unnamed: str) -> str:
    if client_id is None:
        return unnamed
    name = names.get(client_id)
    return f"{name} ({client_id})" if name and name != client_id else client_id


def _t(key: str, language: Language) -> str:
    fa, en = MESSAGES[key]
    return fa if language.code == "fa" else en
