"""OpenID Connect endpoints: authorize, par, authorize/complete, userinfo, introspect, revoke,
logout.

The logic lives in ``idp.oidc`` (a module per spec); this router reads the
HTTP request, opens the transaction and shapes the response. Its grants,
``private_key_jwt``, its discovery members (:func:`metadata`) and its direct
routes are listed with it in :mod:`idp.features`, so nothing is advertised
that is not served.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.context import Hoviyat, get_hoviyat
from idp.http.auth import access_token_claims, spend_proof_now
from idp.login.consent import has_consent
from idp.login.flow import Flow
from idp.login.forms import first_page
from idp.login.i18n import Language, pick_language
from idp.login.render import csrf_ok, message, problem_page, render
from idp.login.sessions import clear_session_cookie, cookie_name, current_login, end_session
from idp.oauth.client_auth import PUBLIC_CLIENT, AuthenticatedClient, ClientAuthentication
from idp.oauth.errors import OAuthError, invalid_client
from idp.oauth.form import oauth_form
from idp.oauth.refused_clients import audit_refusals
from idp.oauth.token_endpoint import request_proof, spent_then
from idp.oidc import claims as oidc_claims
from idp.oidc import completion, jarm, rfc7009, rfc7662, rfc9101, rfc9126, rfc9701
from idp.oidc.authorize import (
    PROMPT_VALUES,
    RESPONSE_MODES,
    RESPONSE_TYPES,
    UI_LOCALES,
    AuthorizationRequest,
    AuthorizeFatal,
    AuthorizeRedirectError,
    validate,
)
from idp.oidc.grants import issue_code
from idp.oidc.identity import IdentityRefused, policy_for
from idp.oidc.logout import audit_logout, end_grants, parse_logout
from idp.oidc.userinfo import JWT_MEDIA_TYPE, signed_userinfo, userinfo_claims
from idp.problems import Problem, bad_request
from idp.settings import Settings
from idp.storage.models import Client
from idp.storage.oidc import NEW_INTERACTION, OidcInteraction, insert_interaction
from idp.storage.rows import transient
from idp.tokens import SIGNING_ALGORITHMS
from idp.tracking import new_tracking_code
from policies.assurance import LEVELS
from policies.service_policy import ServicePolicy

router = APIRouter(tags=["openid-connect"])
HoviyatDep = Annotated[Hoviyat, Depends(get_hoviyat)]

INTERACTION_LIFETIME = timedelta(minutes=10)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def metadata(settings: Settings, auth_methods: Sequence[str]) -> dict[str, Any]:
    """The discovery members of the OpenID Connect endpoints (Discovery 1.0 §3)."""
    base = settings.issuer.rstrip("/")
    auth_methods = list(auth_methods)
    return {
        "authorization_endpoint": f"{base}/authorize",
        # RFC 9126 §5; request_uri_parameter_supported below is RFC 9101's, another feature.
        "pushed_authorization_request_endpoint": rfc9126.endpoint_url(settings.issuer),
        "require_pushed_authorization_requests": settings.require_par,
        "userinfo_endpoint": f"{base}/userinfo",
        "introspection_endpoint": f"{base}/introspect",
        "revocation_endpoint": f"{base}/revoke",
        "end_session_endpoint": f"{base}/logout",
        # Back-Channel Logout 1.0 §2.1: logout tokens always carry sid.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "response_types_supported": list(RESPONSE_TYPES),
        "response_modes_supported": list(RESPONSE_MODES),
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "userinfo_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        # A public client may revoke its tokens (RFC 7009 §2.1), never introspect.
        "introspection_endpoint_auth_methods_supported": [
            method for method in auth_methods if method != PUBLIC_CLIENT.name
        ],
        "introspection_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        # RFC 9701 §7: signed with the client's registered ID token algorithm.
        "introspection_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(oidc_claims.SUPPORTED_SCOPES),
        "claims_supported": sorted(set(oidc_claims.SUPPORTED_CLAIMS)),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        # RFC 9101 by value (§5.1), at /authorize and /par; by reference only /par's own.
        "request_parameter_supported": True,
        "request_object_signing_alg_values_supported": list(rfc9101.ALGORITHMS),
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(LEVELS),
        "prompt_values_supported": list(PROMPT_VALUES),
        "ui_locales_supported": list(UI_LOCALES),
        "authorization_response_iss_parameter_supported": True,
        # JARM §4.1: response_mode=jwt signed with the client's ID token algorithm.
        "authorization_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "verified_claims_supported": True,
        "trust_frameworks_supported": [oidc_claims.TRUST_FRAMEWORK],
        "evidence_supported": [oidc_claims.EVIDENCE_TYPE],
        "claims_in_verified_claims_supported": list(oidc_claims.VERIFIED_CLAIM_NAMES),
    }


async def _params(request: Request) -> dict[str, list[str]]:
    """Every parameter with all its values, from the query (GET) or the form (POST)."""
    params: dict[str, list[str]] = {}
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise bad_request(
                "unsupported-media-type", "send parameters as application/x-www-form-urlencoded"
            )
        form = await request.form()
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise bad_request("invalid-parameter", f"parameter {key} must be text")
            params.setdefault(key, []).append(value)
        return params
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302, headers=_NO_STORE)


def _error_redirect(
    hoviyat: Hoviyat,
    redirect_uri: str,
    state: str | None,
    error: str,
    description: str,
    signed_for: Client | None = None,
) -> RedirectResponse:
    url = completion.error_url(hoviyat, redirect_uri, state, error, description, signed_for)
    return _redirect(url)


def _prompt_none(
    request: Request,
    session: Session,
    hoviyat: Hoviyat,
    client: Client,
    policy: ServicePolicy,
    authz: AuthorizationRequest,
    requested_claims: list[str],
) -> RedirectResponse:
    """OIDC Core §3.1.2.1 prompt=none: answer at once from the browser's session, or an error."""

    def refuse(error: str, description: str) -> RedirectResponse:
        signed_for = jarm.signed_for(client, authz.response_mode)
        return _error_redirect(
            hoviyat, authz.redirect_uri, authz.state, error, description, signed_for
        )

    login = current_login(request, session)
    if login is None:
        return refuse("login_required", "no login session in this browser")
    # The request is made now: a login of this browser session is never one
    # made during it, so max_age is measured against the clock (§3.1.2.1).
    shortfall = completion.login_shortfall(
        authz, policy, login.acr, login.auth_time, datetime.now(UTC)
    )
    if shortfall is not None:
        return refuse("login_required", shortfall)
    if "legal_entity" in authz.scope and login.entity_national_id is None:
        return refuse("interaction_required", "the user must choose a legal entity")
    if not has_consent(session, login.national_code, client.client_id, requested_claims):
        return refuse("consent_required", "the user has not consented to these claims")
    tracking_code = login.tracking_code or new_tracking_code()
    code = issue_code(session, hoviyat, client, authz, login, tracking_code)
    return _redirect(completion.code_url(hoviyat, authz, code, client))


# One route per method: a route serving both would give both one operation ID.
@router.get("/authorize")
@router.post("/authorize")
async def authorize(request: Request, hoviyat: HoviyatDep) -> Response:
    """OIDC Core §3.1.2: validate, remember the request, send the browser to the login pages."""
    params = await _params(request)
    pushed = "request_uri" in params
    try:
        if pushed:
            # RFC 9126 §4: the pushed request replaces the query, used up now.
            now = datetime.now(UTC)
            authorization = await hoviyat.committer.run(
                lambda session: rfc9126.redeem(session, params, now)
            )
        elif "request" in params:
            authorization = await _request_object(hoviyat, params)
        else:
            authorization = params
        # Checked without the write lock: only the interaction's insert takes it,
        # batched with other requests' writes by the group committer.
        checked = _check(hoviyat, authorization, pushed=pushed, signed="request" in params)
    except AuthorizeFatal as exc:
        return _fatal(request, params, exc)
    if isinstance(checked, Response):
        return checked
    client, policy, authz, requested_claims = checked
    if "none" in authz.prompt:
        return await hoviyat.committer.run(
            lambda session: _prompt_none(
                request, session, hoviyat, client, policy, authz, requested_claims
            )
        )
    now = datetime.now(UTC)
    values = {
        **NEW_INTERACTION,
        "id": secrets.token_urlsafe(32),
        "client_id": client.client_id,
        "params": authz.to_params(),
        "requested_claims": requested_claims,
        "tracking_code": new_tracking_code(),
        "created_at": now,
        "expires_at": now + INTERACTION_LIFETIME,
    }
    await hoviyat.committer.run(lambda session: insert_interaction(session, values))
    if request.cookies.get(cookie_name(hoviyat.settings)) is None:
        interaction = transient(OidcInteraction, values)
        return first_page(request, Flow(interaction=interaction, client=client, policy=policy))
    return _redirect(f"/login?interaction={values['id']}")


async def authorize_direct(request: Request) -> Response:
    """Every authorization request is answered through here (idp.http.direct)."""
    return await authorize(request, request.app.state.hoviyat)


def _wants_json(request: Request) -> bool:
    """A program that asks for JSON (and not HTML) gets the problem document."""
    accept = request.headers.get("accept", "").lower()
    return "json" in accept and "text/html" not in accept


def _fatal(request: Request, params: dict[str, list[str]], exc: AuthorizeFatal) -> Response:
    """OIDC Core §3.1.2.6 / RFC 6749 §4.1.2.1: with no redirect URI it is safe to
    use, the error is shown to the citizen, in their language (Persian first),
    never sent on; a program asking for JSON gets RFC 9457 problem JSON."""
    if _wants_json(request):
        extensions = {"error": exc.error} if exc.error else {}
        return bad_request("authorization-request-invalid", str(exc), **extensions).response()
    language = _language(request, params)
    return message(request, language, f"err.authorize.{exc.kind}", 400)


async def _request_object(hoviyat: Hoviyat, params: dict[str, list[str]]) -> dict[str, list[str]]:
    """RFC 9101 §5.1, §6: the verified request object's parameters, its jti spent."""
    directory = hoviyat.client_directory
    request_object = rfc9101.unpack(
        params,
        lambda client_id: directory.lookup(hoviyat.db, client_id),
        hoviyat.settings.issuer,
        datetime.now(UTC).timestamp(),
    )
    if request_object.jti is not None:
        await hoviyat.committer.run(lambda s: rfc9101.spend_or_refuse(s, request_object))
    return request_object.params


def _check(
    hoviyat: Hoviyat, params: dict[str, list[str]], *, pushed: bool, signed: bool = False
) -> tuple[Client, ServicePolicy, AuthorizationRequest, list[str]] | Response:
    # The few-second client directory the token endpoint uses too: a client
    # disabled meanwhile may still see the login form, but the login pages
    # read the client afresh and never close an interaction for it.
    directory = hoviyat.client_directory
    try:
        client, authz = validate(
            params,
            lambda client_id: directory.lookup(hoviyat.db, client_id),
            pushed=pushed,
            require_par=hoviyat.settings.require_par,
            signed=signed,
        )
    except AuthorizeRedirectError as exc:
        return _error_redirect(
            hoviyat,
            exc.redirect_uri,
            exc.state,
            exc.error,
            exc.description,
            jarm.signed_for(exc.client, exc.response_mode),
        )
    try:
        policy = policy_for(hoviyat, client)
    except IdentityRefused as exc:
        return _error_redirect(
            hoviyat,
            authz.redirect_uri,
            authz.state,
            "unauthorized_client",
            str(exc),
            jarm.signed_for(client, authz.response_mode),
        )
    return client, policy, authz, oidc_claims.consent_claims(authz.scope, authz.claims, policy)


@router.post("/par", status_code=201)
async def pushed_authorization_request(request: Request, hoviyat: HoviyatDep) -> Response:
    """RFC 9126 §2: client-authenticated like /token; answers 201 with the ``request_uri``."""
    form = await oauth_form(request)
    now = datetime.now(UTC)
    # RFC 9449 §10.1: a proof sent with the push binds the future code to its key.
    proof = request_proof(request, hoviyat)

    def push(session: Session) -> dict[str, Any]:
        def pushed() -> dict[str, Any]:
            return _authentication(request).then(
                request,
                form,
                hoviyat,
                session,
                lambda caller: rfc9126.push(session, hoviyat, caller, form, now, proof),
            )

        if proof is None:
            return pushed()
        return spent_then(session, proof, hoviyat.settings.dpop_proof_window_seconds, pushed)

    pushed = await audit_refusals(request, form, hoviyat, "par", hoviyat.committer.run(push))
    return JSONResponse(pushed, status_code=201, headers=_NO_STORE)


@router.get("/authorize/complete")
async def authorize_complete(
    request: Request, hoviyat: HoviyatDep, interaction: str = ""
) -> Response:
    """The login pages are done: turn the interaction into a code (or the error) for the client."""
    try:
        if not interaction or len(interaction) > 64:
            detail = "the interaction parameter is missing or invalid"
            raise bad_request("interaction-unknown", detail)
        return await hoviyat.committer.run(lambda s: _complete(s, hoviyat, interaction))
    except Problem as problem:
        return problem_page(request, problem, _language(request, {}))


def _complete(session: Session, hoviyat: Hoviyat, interaction: str) -> Response:
    consumed = completion.consume(session, interaction)
    return _redirect(completion.answer(session, hoviyat, interaction, consumed))


@router.get("/userinfo")
@router.post("/userinfo")
def userinfo(request: Request, hoviyat: HoviyatDep) -> Response:
    """OIDC Core §5.3; ``Accept: application/jwt`` asks for the signed form (§5.3.2).
    A DPoP-bound token comes with its proof (RFC 9449 §7)."""
    token, proof = access_token_claims(request, hoviyat)
    with hoviyat.db.read() as session:
        client, claims = userinfo_claims(hoviyat, session, token)
    spend_proof_now(hoviyat, proof)
    if JWT_MEDIA_TYPE in request.headers.get("accept", ""):
        return Response(
            signed_userinfo(hoviyat, client, claims), media_type=JWT_MEDIA_TYPE, headers=_NO_STORE
        )
    return JSONResponse(claims, headers=_NO_STORE)


async def userinfo_direct(request: Request) -> Response:
    """``userinfo`` without FastAPI's router, and on the event loop when it can be.

    With an in-process registry the reads take less time than the hop to a
    worker thread and back (as in the identify step); a registry reached over
    the network keeps the worker thread, so a slow answer never stalls the loop.
    """
    hoviyat: Hoviyat = request.app.state.hoviyat
    # A DPoP proof's jti is spent in a write that is waited for: not on the loop.
    if hoviyat.registries.blocking or "dpop" in request.headers:
        return await run_in_threadpool(userinfo, request, hoviyat)
    return userinfo(request, hoviyat)


def _authentication(request: Request) -> ClientAuthentication:
    """The token endpoint's client-authentication methods, for /introspect and /revoke."""
    authentication: ClientAuthentication = request.app.state.client_authentication
    return authentication


@router.post("/introspect")
async def introspect(request: Request, hoviyat: HoviyatDep) -> Response:
    """RFC 7662 §2, client-authenticated like the token endpoint."""
    form = await oauth_form(request)

    signed = rfc9701.wanted(request.headers.get("accept", ""))

    def introspected(caller: AuthenticatedClient, session: Session) -> dict[str, Any] | str:
        if caller.method == PUBLIC_CLIENT.name:
            # RFC 7662 §2.1: the endpoint needs real authorization; a client id is none.
            raise invalid_client("a public client may not introspect tokens")
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is missing")
        answer = rfc7662.introspect(
            session, hoviyat, caller.client, token, form.get("token_type_hint")
        )
        return rfc9701.signed_introspection(hoviyat, caller.client, answer) if signed else answer

    def answer(session: Session) -> dict[str, Any] | str:
        return _authentication(request).then(
            request, form, hoviyat, session, lambda caller: introspected(caller, session)
        )

    body = await audit_refusals(request, form, hoviyat, "introspect", hoviyat.committer.run(answer))
    if isinstance(body, str):
        return Response(body, media_type=rfc9701.MEDIA_TYPE, headers=_NO_STORE)
    return JSONResponse(body, headers=_NO_STORE)


@router.post("/revoke")
async def revoke(request: Request, hoviyat: HoviyatDep) -> Response:
    """RFC 7009 §2.1: always 200 for tokens the caller may name, known or not."""
    form = await oauth_form(request)

    def revoked(caller: AuthenticatedClient, session: Session) -> None:
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "token is missing")
        rfc7009.revoke(session, hoviyat, caller.client, token)

    def revoke_token(session: Session) -> None:
        _authentication(request).then(
            request, form, hoviyat, session, lambda caller: revoked(caller, session)
        )

    await audit_refusals(request, form, hoviyat, "revoke", hoviyat.committer.run(revoke_token))
    return Response(status_code=200, headers=_NO_STORE)


# The parameters the confirmation form carries to its POST (RP-Initiated Logout §2).
_CARRIED = ("post_logout_redirect_uri", "state", "client_id", "ui_locales")


def _language(request: Request, params: dict[str, list[str]]) -> Language:
    """The page's language: ``lang``, then ``ui_locales`` (OIDC Core §3.1.2.1), then
    the browser's Accept-Language, Persian first."""
    lang = (params.get("lang") or [""])[0]
    ui_locales = " ".join(params.get("ui_locales") or []).split()
    return pick_language(lang, ui_locales, request.headers.get("accept-language"))


def _same_origin(request: Request, issuer: str) -> bool:
    """A cross-site form POST carries the attacker's Origin (or ``null``) and
    ``Sec-Fetch-Site: cross-site``; a request without either header still needs
    the CSRF token (OWASP CSRF Prevention: verifying origin with standard headers)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = urlsplit(issuer)
    return origin == f"{own.scheme}://{own.netloc}"


@router.get("/logout")
@router.post("/logout")
async def logout(request: Request, hoviyat: HoviyatDep) -> Response:
    """RP-Initiated Logout 1.0 §2-§3 (the end_session_endpoint)."""
    params = await _params(request)
    try:
        return await hoviyat.committer.run(lambda s: _logout(s, request, hoviyat, params))
    except Problem as problem:
        return problem_page(request, problem, _language(request, params))


def _logout(
    session: Session, request: Request, hoviyat: Hoviyat, params: dict[str, list[str]]
) -> Response:
    logout_request = parse_logout(session, hoviyat, params)
    language = _language(request, params)
    confirmed = request.method == "POST" and params.get("confirm") == ["yes"]
    if not logout_request.confirmed_by_rp and not confirmed:
        carried = [(key, values[0]) for key, values in params.items() if key in _CARRIED]
        other = pick_language(language.other, None)
        switch = "/logout?" + urlencode([*carried, ("lang", other.code)])
        return render(
            request,
            "logout.html",
            language,
            title_key="logout.title",
            switch_url=switch,
            carried=carried,
        )
    if not logout_request.confirmed_by_rp:
        # The user's own confirmation, so it must come from our own page: the
        # signed double-submit token and the Origin, or a cross-site page could
        # log the citizen out (login CSRF's twin). Nothing is ended otherwise.
        token = (params.get("csrf_token") or [""])[0]
        if not _same_origin(request, hoviyat.settings.issuer) or not csrf_ok(request, token):
            return message(request, language, "err.csrf", 403)
    ended: set[str] = set()
    browser = current_login(request, session)
    for session_id in {logout_request.session_id, browser.session_id if browser else None}:
        if session_id is not None and end_session(session, session_id):
            audit_logout(session, hoviyat, session_id, logout_request.client)
            ended.add(session_id)
    end_grants(session, hoviyat, ended)
    target = logout_request.redirect_url()
    response: Response = (
        _redirect(target) if target else message(request, language, "logout.done", 200)
    )
    clear_session_cookie(response, hoviyat.settings)
    return response
