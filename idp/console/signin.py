"""Signing in to the console through Hoviyat's own OpenID Connect login, and out.

The console is a confidential client (:mod:`idp.console.client`) using the
code flow with PKCE (RFC 7636), ``state`` bound to a cookie of this browser,
``nonce`` checked in the ID token, ``iss`` in the authorization response
checked against the issuer (RFC 9207), and ``acr_values`` asking for level
substantial or higher, which the ID token's ``acr`` must then show.

The code is exchanged at Hoviyat's own ``/token`` through the application
itself (an in-process ASGI transport): the same endpoint, client
authentication and checks as any relying party, without a network hop to the
public issuer URL from inside the server.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from idp.audit.log import AuditEvent, append, subject_hash
from idp.console import client as console_client
from idp.console import sessions as console_sessions
from idp.console.framework import (
    NO_STORE,
    STATIC,
    ConsoleUser,
    check_csrf,
    console_user,
    hoviyat_of,
    href,
    language_of,
    render,
    safe_return_path,
)
from idp.oidc.rfc7636 import s256
from idp.storage import console as store
from idp.storage.console import ConsoleSignIn, PendingSignIn
from idp.tokens.keyring import TokenError
from idp.tracking import new_tracking_code
from policies import assurance

log = logging.getLogger("hoviyat.console")

router = APIRouter(include_in_schema=False)

ACCEPTED_LEVELS = (assurance.SUBSTANTIAL, assurance.HIGH)
_CLAIMS = {
    "id_token": {
        "national_code": {"essential": True},
        "given_name": None,
        "family_name": None,
    }
}


class SignInFailed(Exception):
    """The callback cannot sign anyone in; the message says why (for the page and the log)."""


@router.get("/static/console.css")
def stylesheet() -> FileResponse:
    return FileResponse(STATIC / "console.css", media_type="text/css")


@router.get("/login")
def sign_in(request: Request, next: str | None = None) -> Response:
    """Start a sign-in: remember state, nonce and verifier, then go to /authorize."""
    hoviyat = hoviyat_of(request)
    settings = hoviyat.settings
    binding = secrets.token_urlsafe(32)
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    moment = console_sessions.now()
    with hoviyat.db.session() as db:
        store.put_sign_in(
            db,
            ConsoleSignIn(
                binding_digest=console_sessions.digest(binding),
                state=state,
                nonce=nonce,
                code_verifier=verifier,
                return_to=safe_return_path(next),
                expires_at=moment + console_sessions.SIGN_IN_LIFETIME,
            ),
            moment,
        )
    query = {
        "response_type": "code",
        "client_id": console_client.CLIENT_ID,
        "redirect_uri": console_client.redirect_uri(settings),
        "scope": "openid",
        "claims": json.dumps(_CLAIMS, separators=(",", ":")),
        "acr_values": " ".join(ACCEPTED_LEVELS),
        "state": state,
        "nonce": nonce,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "ui_locales": language_of(request).code,
    }
    response = RedirectResponse(f"/authorize?{urlencode(query)}", 303, headers=NO_STORE)
    console_sessions.set_cookie(
        response, settings, console_sessions.sign_in_cookie(settings), binding, strict=False
    )
    return response


@router.get("/callback")
async def callback(request: Request) -> Response:
    """The authorization response: check it, redeem the code, open a console session."""
    hoviyat = hoviyat_of(request)
    settings = hoviyat.settings
    params = request.query_params
    binding = console_sessions.cookie_token(request, console_sessions.sign_in_cookie(settings))
    moment = console_sessions.now()
    pending = None
    if binding is not None:
        # Database work off the event loop: on SQLite a write may wait for the lock.
        pending = await run_in_threadpool(_take_sign_in, request, binding, moment)
    try:
        if pending is None:
            raise SignInFailed("no sign-in under way in this browser, or it expired")
        if not hmac.compare_digest(pending.state, params.get("state", "")):
            raise SignInFailed("the state does not match this browser's sign-in")
        if params.get("iss") != settings.issuer:
            raise SignInFailed("the response does not name this issuer (RFC 9207)")
        if "error" in params:
            raise SignInFailed(f"the login answered {params.get('error', '')[:60]}")
        code = params.get("code")
        if not code:
            raise SignInFailed("the response carries no code")
        claims = await _redeem(request, code, pending.code_verifier)
        if not hmac.compare_digest(str(claims.get("nonce", "")), pending.nonce):
            raise SignInFailed("the ID token's nonce does not match")
        if claims.get("acr") not in ACCEPTED_LEVELS:
            raise SignInFailed("the login is below level substantial")
        national_code = claims.get("national_code")
        if not isinstance(national_code, str) or not national_code.isascii():
            raise SignInFailed("the ID token names no national code")
    except SignInFailed as failure:
        await run_in_threadpool(_audit_sign_in, request, None, "refused", str(failure))
        response = _failure_page(request, str(failure))
        console_sessions.clear_cookie(
            response, settings, console_sessions.sign_in_cookie(settings), strict=False
        )
        return response
    person_key = subject_hash(hoviyat.secrets.subject_pepper, national_code)
    name = " ".join(str(claims.get(part, "")) for part in ("given_name", "family_name")).strip()
    acr = str(claims["acr"])
    token = await run_in_threadpool(
        _open_session, request, person_key, name or person_key[:12], acr
    )
    redirect = RedirectResponse(pending.return_to, 303, headers=NO_STORE)
    console_sessions.clear_cookie(
        redirect, settings, console_sessions.sign_in_cookie(settings), strict=False
    )
    console_sessions.set_cookie(
        redirect, settings, console_sessions.session_cookie(settings), token, strict=True
    )
    return redirect


async def _redeem(request: Request, code: str, verifier: str) -> dict[str, Any]:
    """The code at /token (client_secret_basic, PKCE), and the ID token verified."""
    hoviyat = hoviyat_of(request)
    settings = hoviyat.settings
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as provider:
        answer = await provider.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": console_client.redirect_uri(settings),
                "code_verifier": verifier,
            },
            auth=(console_client.CLIENT_ID, console_client.client_secret(hoviyat.secrets)),
        )
    if answer.status_code != 200:
        error = (
            answer.json().get("error", "")
            if answer.headers.get("content-type", "").startswith("application/json")
            else ""
        )
        log.warning("console code redemption refused: %s %s", answer.status_code, error)
        raise SignInFailed(f"the token endpoint refused the code ({error or answer.status_code})")
    id_token = answer.json().get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed("the token endpoint returned no ID token")
    try:
        return await run_in_threadpool(
            partial(
                hoviyat.keyring.verify,
                id_token,
                typ="JWT",
                issuer=settings.issuer,
                audience=console_client.CLIENT_ID,
            )
        )
    except TokenError as error:
        raise SignInFailed(f"the ID token was refused: {error}") from error


def _take_sign_in(request: Request, binding: str, moment: datetime) -> PendingSignIn | None:
    with hoviyat_of(request).db.session() as db:
        return store.take_sign_in(db, console_sessions.digest(binding), moment)


def _open_session(request: Request, person_key: str, display_name: str, acr: str) -> str:
    """The new session and its audit entry, in one transaction; returns the cookie value."""
    with hoviyat_of(request).db.session() as db:
        token = console_sessions.start(
            db, person_key=person_key, display_name=display_name, acr=acr
        )
        _append_sign_in(db, person_key, "success", {"acr": acr})
    return token


def _failure_page(request: Request, reason: str) -> HTMLResponse:
    return render(
        request,
        "message.html",
        {
            "message_key": "console.error.sign_in",
            "message_values": {"reason": reason},
            "is_error": True,
            "link_path": "/console/login",
            "link_key": "console.sign_in_again",
        },
        status_code=400,
        title_key="console.error.title",
    )


def _append_sign_in(db: Any, person_key: str | None, outcome: str, detail: dict[str, Any]) -> None:
    append(
        db,
        AuditEvent(
            tracking_code=new_tracking_code(),
            event_type="console_sign_in",
            actor_type="console_user",
            actor_id=person_key,
            outcome=outcome,
            subject_hash=person_key,
            detail=detail,
        ),
    )


def _audit_sign_in(request: Request, person_key: str | None, outcome: str, reason: str) -> None:
    with hoviyat_of(request).db.session() as db:
        _append_sign_in(db, person_key, outcome, {"reason": reason})


@router.post("/logout")
async def sign_out(request: Request, user: ConsoleUser = Depends(console_user)) -> Response:
    check_csrf(request, await request.form())
    settings = hoviyat_of(request).settings
    await run_in_threadpool(_end_session, request, user)
    response = RedirectResponse(
        href(language_of(request), "/console/signed-out"), 303, headers=NO_STORE
    )
    console_sessions.clear_cookie(
        response, settings, console_sessions.session_cookie(settings), strict=True
    )
    return response


def _end_session(request: Request, user: ConsoleUser) -> None:
    session_id: str = request.state.console_session_id
    with hoviyat_of(request).db.session() as db:
        store.end_session(db, session_id, console_sessions.now())
        append(
            db,
            AuditEvent(
                tracking_code=new_tracking_code(),
                event_type="console_sign_out",
                actor_type="console_user",
                actor_id=user.person_key,
                outcome="success",
                subject_hash=user.person_key,
            ),
        )


@router.get("/signed-out")
def signed_out(request: Request) -> HTMLResponse:
    return render(
        request,
        "message.html",
        {
            "message_key": "console.signed_out",
            "link_path": "/console/login",
            "link_key": "console.sign_in_again",
        },
    )
