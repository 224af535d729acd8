"""Registering clients, rotating their secrets, and deleting them with two-person approval.

Administrators only. Registration goes through the same checks and the same
creation as ``POST /v1/admin/clients`` and ``hoviyat clients create``
(:func:`idp.oidc.registration.oidc_attributes`, :func:`idp.clients.create_client`):
a refused registration shows the form again with the service's reason and
writes nothing. A new or rotated secret is shown once, on a page no cache
keeps; only its keyed digest (:func:`idp.clients.secret_digest`) is stored.

Deleting: no service deletes a client (its audit entries, grants and tokens
name it), and the client table has no "deleted" mark, so an approved deletion
disables the client for good: the console has no way to enable it again, and
the audit entry says ``delete`` with the effect ``disabled_permanently``. One
administrator requests it; another approves it at ``/console/approvals``.
The console's own client can be neither rotated nor deleted here: every
administrator would be locked out.
"""

# ruff: noqa: E501  (messages stay on one line so a translator reads each whole)

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from idp.audit.log import AuditEvent, append
from idp.clients import ClientError, create_client, new_secret, secret_digest
from idp.console import approvals
from idp.console import client as console_client
from idp.console.approvals import ApprovalKind, register_kind
from idp.console.clients_traffic import recent_traffic
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
from idp.console.i18n import add_messages, translate
from idp.console.roles import Role
from idp.login.i18n import Language
from idp.oidc.registration import (
    AUTH_METHODS,
    GRANT_TYPES,
    SECRETLESS_METHODS,
    RegistrationError,
    check_jwks,
    oidc_attributes,
)
from idp.secrets_at_rest import Purpose, open_secret, seal_secret
from idp.storage import clients as client_store
from idp.storage import console as console_store
from idp.storage import console_shown_once as shown_once
from idp.storage.console import ConsoleApproval
from idp.storage.console_shown_once import ConsoleShownOnce
from idp.storage.models import Client
from idp.tracking import new_tracking_code

router = APIRouter(include_in_schema=False)
DELETE = "client_delete"
# Not under /clients/: the list's router serves /clients/{client_id} first.
NEW_PATH = "/console/new-client"
# Post/Redirect/Get: a new or rotated secret is shown by a GET here, once.
SHOWN_ONCE_PATH = "/console/shown-once"
SHOWN_ONCE_LIFETIME = timedelta(minutes=5)
REQUESTED = "console.clients.delete_requested"
KEYS_REPLACED = "console.clients.keys_replaced"
NOTICES = (REQUESTED, KEYS_REPLACED)  # the client page shows these
add_nav_link(NEW_PATH, "console.clients.new", Role.ADMIN)
NAME_LENGTH = 200  # idp.http.admin_clients.ClientRegistration.name
MAX_URIS = 20  # the admin API's limit
URI_LENGTH = 2000
JWKS_LENGTH = 20_000

# fmt: off
add_messages({
    "console.clients.new": ("ثبت کارخواه", "Register a client"),
    "console.clients.new.explained": ("کارخواه با همان بررسی‌های رابط مدیریتی ثبت می‌شود. رمز آن یک بار نشان داده می‌شود و فقط چکیدهٔ آن نگه داشته می‌شود.", "The client is checked as the administration API checks it. Its secret is shown once; only a keyed digest of it is kept."),
    "console.clients.new.grants_hint": ("اگر هیچ‌کدام را برنگزینید: با نشانی بازگشت، کد مجوز و توکن تازه‌سازی؛ بدون آن، اعتبارنامهٔ کارخواه.", "None chosen: authorization code and refresh token with redirect URIs, client credentials without."),
    "console.clients.new.uris_hint": ("هر نشانی در یک سطر؛ فقط https (http فقط روی loopback).", "One URL per line; https only (http only on loopback)."),
    "console.clients.new.jwks": ("کلیدهای عمومی (JWKS) برای private_key_jwt", "Public keys (JWKS) for private_key_jwt"),
    "console.clients.new.jwks_hint": ("اختیاری؛ یک سند JSON با فهرست keys، فقط نیمهٔ عمومی.", "Optional; a JSON document with a keys list, public halves only."),
    "console.clients.new.submit": ("ثبت", "Register"),
    "console.clients.new.refused": ("کارخواه ثبت نشد:", "The client was not registered:"),
    "console.clients.new.error.name": ("نام را وارد کنید (حداکثر ۲۰۰ نویسه).", "Enter a name (at most 200 characters)."),
    "console.clients.new.error.uris": ("حداکثر ۲۰ نشانی، هر یک حداکثر ۲۰۰۰ نویسه.", "At most 20 URLs, each at most 2000 characters."),
    "console.clients.new.error.jwks": ("JWKS یک سند JSON معتبر نیست.", "The JWKS is not a valid JSON document."),
    "console.clients.secret.title": ("رمز کارخواه", "Client secret"),
    "console.clients.secret.once": ("این رمز فقط همین یک بار نشان داده می‌شود. اکنون آن را در جای امنی نگه دارید؛ هویت آن را دوباره نشان نمی‌دهد.", "This secret is shown this once only. Store it safely now; Hoviyat cannot show it again."),
    "console.clients.secret.none": ("این کارخواه رمز مشترک ندارد؛ با کلید یا گواهی خود احراز هویت می‌کند.", "This client holds no shared secret; it authenticates with its key or certificate."),
    "console.clients.secret.registered": ("کارخواه ثبت شد.", "The client has been registered."),
    "console.clients.secret.rotated": ("رمز تازه ساخته شد؛ رمز پیشین دیگر پذیرفته نمی‌شود.", "A new secret was made; the previous one is no longer accepted."),
    "console.clients.secret.value": ("رمز", "Secret"),
    "console.clients.secret.back": ("بازگشت به کارخواه", "Back to the client"),
    "console.clients.secret.gone": ("این رمز پیش‌تر یک بار نشان داده شده است (یا زمان نمایش آن گذشته است) و دوباره نشان داده نمی‌شود. اگر آن را نگه نداشته‌اید، رمز را دوباره بچرخانید.", "This secret has already been shown once (or its page has expired) and is not shown again. If you did not store it, rotate the secret again."),
    "console.clients.secret.unknown": ("چنین رمزی برای نمایش در این نشست نیست.", "There is no such secret to show in this session."),
    "console.clients.rotate": ("چرخش رمز", "Rotate the secret"),
    "console.clients.rotate_explained": ("رمز تازه‌ای ساخته و یک بار نشان داده می‌شود؛ رمز کنونی در کمتر از یک ثانیه از کار می‌افتد. این کار ثبت می‌شود.", "A new secret is made and shown once; the current one stops working within a second. This is recorded."),
    "console.clients.rotate_secretless": ("این کارخواه رمز مشترک ندارد که چرخانده شود.", "This client holds no shared secret to rotate."),
    "console.clients.own_client_manage": ("کارخواه خود کنسول را نمی‌توان از کنسول تغییر داد یا حذف کرد؛ همه مدیران بیرون می‌مانند.", "The console's own client cannot be changed or deleted from the console: every administrator would be locked out."),
    "console.clients.keys": ("جایگزینی کلیدهای عمومی (JWKS)", "Replace the public keys (JWKS)"),
    "console.clients.keys_explained": ("کلیدهای تازه جای کلیدهای کنونی را می‌گیرند؛ امضای کلیدهای پیشین در کمتر از یک ثانیه پذیرفته نمی‌شود. این کار ثبت می‌شود.", "The new keys take the current ones' place; signatures by the previous keys are refused within a second. This is recorded."),
    "console.clients.keys_replaced": ("کلیدهای عمومی کارخواه جایگزین شد.", "The client's public keys have been replaced."),
    "console.clients.keys_none": ("این کارخواه کلید عمومی ثبت‌شده ندارد.", "This client has no registered public keys."),
    "console.clients.keys_refused": ("کلیدها جایگزین نشد: {reason}", "The keys were not replaced: {reason}"),
    "console.clients.delete": ("درخواست حذف کارخواه", "Request the client's deletion"),
    "console.clients.delete_explained": ("مدیر دیگری باید تأیید کند. حذف، کارخواه را برای همیشه غیرفعال می‌کند (ردپای آن در گزارش ممیزی می‌ماند).", "Another administrator must approve. Deleting disables the client for good (its trail stays in the audit log)."),
    "console.clients.delete_requested": ("درخواست حذف ثبت شد؛ مدیر دیگری باید آن را تأیید کند.", "Deletion requested; another administrator must approve it."),
    "console.clients.delete_pending": ("درخواست حذف این کارخواه در انتظار تأیید است.", "A deletion of this client awaits approval."),
    "console.clients.kind.delete": ("حذف کارخواه", "Delete a client"),
    "console.clients.describe_delete": ("کارخواه {client_id} ({name})", "Client {client_id} ({name})"),
    "console.clients.traffic": ("ترافیک اخیر", "Recent traffic"),
    "console.clients.traffic.window": ("بازه", "Window"),
    "console.clients.traffic.requests": ("درخواست‌ها", "Requests"),
    "console.clients.traffic.refused": ("ردشده‌ها", "Refused"),
    "console.clients.traffic.rate": ("نرخ رد", "Refusal rate"),
    "console.clients.traffic.day": ("۲۴ ساعت گذشته", "Last 24 hours"),
    "console.clients.traffic.week": ("۷ روز گذشته", "Last 7 days"),
    "console.clients.traffic.explained": ("از گزارش ممیزی: هر کاری که کارخواه انجام داده است (توکن، استعلام...)، و هر احراز هویت ناموفق به نام آن در /token (ردشده).", "From the audit log: every act of the client (tokens, verifications...), and each failed authentication in its name at /token (refused)."),
})
# fmt: on


def _audit(db: Session, actor: str, client_id: str, operation: str, **detail: Any) -> None:
    append(
        db,
        AuditEvent(
            tracking_code=new_tracking_code(),
            event_type="client_changed",
            actor_type="console_user",
            actor_id=actor,
            outcome="ok",
            operation=operation,
            detail={"client_id": client_id, "via": "console", **detail},
        ),
    )


# --- deletion, approved by a second administrator -------------------------------------------


def _describe_delete(payload: dict[str, Any], language: Language) -> str:
    return translate(
        "console.clients.describe_delete",
        language,
        client_id=str(payload.get("client_id", "")),
        name=str(payload.get("name", "")),
    )


def _apply_delete(
    request: Request, db: Session, approval: ConsoleApproval, approver: str, _moment: datetime
) -> dict[str, Any]:
    client_id = str(approval.payload["client_id"])
    client = client_store.get_client(db, client_id)
    if client is None:
        return {"client_id": client_id, "found": False}
    changed = client_store.set_disabled(db, client)
    _audit(
        db,
        approver,
        client_id,
        "delete",
        effect="disabled_permanently",
        approval_id=approval.id,
        requested_by=approval.requested_by,
    )
    # This worker forgets the client at once; other workers' directories within their 1 s.
    hoviyat_of(request).client_directory.forget(client_id)
    return {"client_id": client_id, "found": True, "changed": changed}


register_kind(
    ApprovalKind(DELETE, Role.ADMIN, "console.clients.kind.delete", _describe_delete, _apply_delete)
)


def delete_pending(db: Session, client_id: str) -> bool:
    return any(
        row.payload.get("client_id") == client_id
        for row in console_store.pending_approvals(db, DELETE)
    )


# --- pages ----------------------------------------------------------------------------------


def _message(request: Request, key: str, client_id: str | None, status_code: int) -> HTMLResponse:
    link = f"/console/clients/{client_id}" if client_id else "/console/clients"
    return render(
        request,
        "message.html",
        {
            "message_key": key,
            "is_error": True,
            "link_path": link,
            "link_key": "console.clients.one" if client_id else "console.clients",
        },
        status_code=status_code,
        title_key="console.error.title",
    )


def _form(
    request: Request,
    values: dict[str, Any],
    *,
    error_key: str | None = None,
    reason: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    hoviyat = hoviyat_of(request)
    english = language_of(request).code == "en"
    policies = [
        {"code": code, "title": policy.title_en if english else policy.title_fa}
        for code, policy in sorted(hoviyat.policies.items())
        if code != console_client.SERVICE_CODE
    ]
    return render(
        request,
        "client_new.html",
        {
            "values": values,
            "policies": policies,
            "grant_types": GRANT_TYPES,
            "auth_methods": AUTH_METHODS,
            "error_key": error_key,
            "reason": reason,
        },
        status_code=status_code,
        title_key="console.clients.new",
    )


def _show_once(
    request: Request, db: Session, client_id: str, secret: str | None, notice_key: str
) -> str:
    """Keep ``secret`` for its one showing (sealed, this console session's only, minutes);
    the record's id, for the page the POST redirects to (Post/Redirect/Get)."""
    hoviyat = hoviyat_of(request)
    row_id = secrets.token_urlsafe(32)
    sealed = None
    if secret is not None:
        kek = hoviyat.secrets.key_encryption_key
        sealed = seal_secret(kek, Purpose.CONSOLE_SHOWN_ONCE, row_id, secret.encode())
    now = datetime.now(UTC)
    row = ConsoleShownOnce(
        id=row_id,
        session_id=request.state.console_session_id,
        client_id=client_id,
        notice_key=notice_key,
        sealed_secret=sealed,
        expires_at=now + SHOWN_ONCE_LIFETIME,
    )
    shown_once.put(db, row, now)
    return row_id


def _to_secret_page(request: Request, row_id: str) -> RedirectResponse:
    url = href(language_of(request), f"{SHOWN_ONCE_PATH}/{row_id}")
    return RedirectResponse(url, 303, headers=NO_STORE)


@router.get("/shown-once/{row_id}")
def secret_page(
    request: Request, row_id: str, _user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> HTMLResponse:
    """The new secret, once: a reload or a second visit finds it already shown."""
    hoviyat = hoviyat_of(request)
    with hoviyat.db.session() as db:
        taken = shown_once.take(
            db, row_id[:43], request.state.console_session_id, datetime.now(UTC)
        )
    if taken == shown_once.UNKNOWN or not isinstance(taken, shown_once.Showing):
        status = 404 if taken == shown_once.UNKNOWN else 410
        key = "console.clients.secret.unknown" if status == 404 else "console.clients.secret.gone"
        return _message(request, key, None, status)
    secret = None
    if taken.sealed_secret is not None:
        kek = hoviyat.secrets.key_encryption_key
        opened = open_secret(kek, Purpose.CONSOLE_SHOWN_ONCE, row_id, taken.sealed_secret)
        secret = opened.decode()
    # render() sends Cache-Control: no-store, as every console page.
    return render(
        request,
        "client_secret.html",
        {"client_id": taken.client_id, "secret": secret, "notice_key": taken.notice_key},
        title_key="console.clients.secret.title",
    )


EMPTY = {
    "name": "",
    "service_code": "",
    "grant_types": [],
    "redirect_uris": "",
    "auth_method": "client_secret_basic",
    "jwks": "",
}


@router.get("/new-client")
def new_client_form(
    request: Request, _user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> HTMLResponse:
    return _form(request, dict(EMPTY))


@router.post("/new-client")
async def register_client(
    request: Request, user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    values = {
        "name": str(form.get("name", "")).strip(),
        "service_code": str(form.get("service_code", ""))[:64],
        "grant_types": [str(g)[:40] for g in form.getlist("grant_types")][:5],
        "redirect_uris": str(form.get("redirect_uris", ""))[: MAX_URIS * (URI_LENGTH + 2) + 1],
        "auth_method": str(form.get("auth_method", ""))[:40],
        "jwks": str(form.get("jwks", ""))[: JWKS_LENGTH + 1],
    }
    return await run_in_threadpool(_register, request, user, values)


def _register(request: Request, user: ConsoleUser, values: dict[str, Any]) -> Response:
    name: str = values["name"]
    if not name or len(name) > NAME_LENGTH:
        return _form(request, values, error_key="console.clients.new.error.name", status_code=400)
    uris = [line.strip() for line in str(values["redirect_uris"]).splitlines() if line.strip()]
    if len(uris) > MAX_URIS or any(len(uri) > URI_LENGTH for uri in uris):
        return _form(request, values, error_key="console.clients.new.error.uris", status_code=400)
    jwks: dict[str, Any] | None = None
    if values["jwks"].strip():
        try:
            parsed = json.loads(values["jwks"]) if len(values["jwks"]) <= JWKS_LENGTH else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return _form(
                request, values, error_key="console.clients.new.error.jwks", status_code=400
            )
        jwks = parsed
    hoviyat = hoviyat_of(request)
    auth_method: str = values["auth_method"]
    try:
        attributes = oidc_attributes(
            redirect_uris=uris,
            post_logout_redirect_uris=[],
            grant_types=values["grant_types"],
            auth_method=auth_method,
            id_token_alg="ES256",  # noqa: S106  (the admin API's default)
            sector_identifier=None,
            jwks=jwks,
            allow_http_loopback_sector=hoviyat.settings.sector_identifier_allow_http_loopback,
        )
        with hoviyat.db.session() as db:
            created = create_client(
                db,
                hoviyat.secrets.client_secret_key,
                name=name,
                service_code=values["service_code"],
                roles=[],
                with_secret=auth_method not in SECRETLESS_METHODS,
                **attributes,
            )
            client_id = created.client.client_id
            _audit(db, user.person_key, client_id, "create")
            row_id = _show_once(
                request, db, client_id, created.client_secret, "console.clients.secret.registered"
            )
    except (RegistrationError, ClientError) as error:
        # Raised before anything was added, or rolled back with the session: no row.
        return _form(
            request,
            values,
            error_key="console.clients.new.refused",
            reason=str(error)[:500],
            status_code=400,
        )
    return _to_secret_page(request, row_id)


@router.post("/clients/{client_id}/secret")
async def rotate_secret(
    request: Request, client_id: str, user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> Response:
    check_csrf(request, await request.form())
    return await run_in_threadpool(_rotate, request, client_id[:200], user)


def _rotate(request: Request, client_id: str, user: ConsoleUser) -> Response:
    if client_id == console_client.CLIENT_ID:
        return _message(request, "console.clients.own_client_manage", client_id, 400)
    hoviyat = hoviyat_of(request)
    secret = new_secret()
    result = "rotated"
    row_id = ""
    with hoviyat.db.session() as db:
        client = client_store.get_client(db, client_id)
        if client is None:
            result = "not_found"
        elif client.secret_digest is None:
            result = "secretless"
        else:
            client.secret_digest = secret_digest(hoviyat.secrets.client_secret_key, secret)
            client_store.add_client(db, client)
            _audit(db, user.person_key, client_id, "rotate_secret")
            row_id = _show_once(request, db, client_id, secret, "console.clients.secret.rotated")
    if result == "not_found":
        return _message(request, "console.clients.not_found", None, 404)
    if result == "secretless":
        return _message(request, "console.clients.rotate_secretless", client_id, 400)
    hoviyat.client_directory.forget(client_id)
    return _to_secret_page(request, row_id)


@router.post("/clients/{client_id}/keys")
async def replace_keys(
    request: Request, client_id: str, user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> Response:
    form = await request.form()
    check_csrf(request, form)
    typed = str(form.get("jwks", ""))[: JWKS_LENGTH + 1]
    return await run_in_threadpool(_replace_keys, request, client_id[:200], user, typed)


def _replace_keys(request: Request, client_id: str, user: ConsoleUser, typed: str) -> Response:
    if client_id == console_client.CLIENT_ID:
        return _message(request, "console.clients.own_client_manage", client_id, 400)
    try:
        parsed = json.loads(typed) if len(typed) <= JWKS_LENGTH else None
        # The registration's own check: EC or RSA keys, public halves only.
        jwks = check_jwks(parsed)
    except ValueError as error:  # RegistrationError, or JSON that does not parse
        language = language_of(request)
        reason = (
            str(error)[:500]
            if isinstance(error, RegistrationError)
            else translate("console.clients.new.error.jwks", language)
        )
        return render(
            request,
            "message.html",
            {
                "message_key": "console.clients.keys_refused",
                "message_values": {"reason": reason},
                "is_error": True,
                "link_path": f"/console/clients/{client_id}",
                "link_key": "console.clients.one",
            },
            status_code=400,
            title_key="console.error.title",
        )
    hoviyat = hoviyat_of(request)
    result = "replaced"
    with hoviyat.db.session() as db:
        client = client_store.get_client(db, client_id)
        if client is None:
            result = "not_found"
        elif client.jwks is None:
            result = "keyless"
        else:
            client.jwks = jwks
            client_store.add_client(db, client)
            kids = [str(key.get("kid", "")) for key in jwks["keys"]][:20]
            _audit(db, user.person_key, client_id, "replace_keys", kids=kids)
    if result == "not_found":
        return _message(request, "console.clients.not_found", None, 404)
    if result == "keyless":
        return _message(request, "console.clients.keys_none", client_id, 400)
    hoviyat.client_directory.forget(client_id)
    url = href(language_of(request), f"/console/clients/{client_id}", notice=KEYS_REPLACED)
    return RedirectResponse(url, 303, headers=NO_STORE)


@router.post("/clients/{client_id}/delete")
async def request_delete(
    request: Request, client_id: str, user: ConsoleUser = Depends(require_role(Role.ADMIN))
) -> Response:
    check_csrf(request, await request.form())
    return await run_in_threadpool(_request_delete, request, client_id[:200], user)


def _request_delete(request: Request, client_id: str, user: ConsoleUser) -> Response:
    if client_id == console_client.CLIENT_ID:
        return _message(request, "console.clients.own_client_manage", client_id, 400)
    hoviyat = hoviyat_of(request)
    result = "requested"
    with hoviyat.db.session() as db:
        client = client_store.get_client(db, client_id)
        if client is None:
            result = "not_found"
        elif delete_pending(db, client_id):
            result = "pending"
        else:
            payload = {"client_id": client_id, "name": client.name[:NAME_LENGTH]}
            approvals.request(db, DELETE, payload, user)
    if result == "not_found":
        return _message(request, "console.clients.not_found", None, 404)
    if result == "pending":
        return _message(request, "console.clients.delete_pending", client_id, 409)
    url = href(language_of(request), f"/console/clients/{client_id}", notice=REQUESTED)
    return RedirectResponse(url, 303, headers=NO_STORE)


def page_extras(db: Session, client: Client, now: datetime) -> dict[str, Any]:
    """What one client's page shows of this module: traffic, and the rotate and delete forms."""
    manageable = client.client_id != console_client.CLIENT_ID and not client.disabled
    return {
        "traffic": recent_traffic(db, client.client_id, now),
        "may_manage": manageable,
        "may_rotate": manageable and client.secret_digest is not None,
        "may_replace_keys": manageable and client.jwks is not None,
        "delete_pending": manageable and delete_pending(db, client.client_id),
    }
