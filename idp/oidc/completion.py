"""Closing an interaction: the authorization response (OIDC Core §3.1.2.5-6, RFC 6749 §4.1.2).

An interaction is answered once across all workers: ``consumed_at`` is set by
a conditional UPDATE and only the call that set it issues a code. Two callers
do it: ``/authorize/complete`` (after the login pages closed the interaction,
or refused it), and the login pages themselves when the step a citizen just
took was the last one. The latter close and consume in the same UPDATE and
redirect straight to the client with 303 (RFC 9700 §4.11: never 307 after a
POST that carried credentials), which saves the browser two round trips.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from idp.audit.log import AuditEvent
from idp.context import Hoviyat
from idp.oidc import jarm
from idp.oidc.authorize import AuthorizationRequest
from idp.oidc.grants import issue_code
from idp.oidc.identity import IdentityRefused, policy_for
from idp.problems import bad_request
from idp.storage import interactions, login_sessions
from idp.storage.clients import get_client
from idp.storage.login import AuthenticatedPerson
from idp.storage.models import Client
from policies.assurance import required_level, satisfies
from policies.service_policy import ServicePolicy

# A login finished this long before the request started still counts as "now"
# for prompt=login (clock steps between workers). max_age has no such slack.
SKEW = timedelta(seconds=5)


def error_url(
    hoviyat: Hoviyat,
    redirect_uri: str,
    state: str | None,
    error: str,
    description: str,
    signed_for: Client | None = None,
) -> str:
    """The error response (RFC 6749 §4.1.2.1); as JARM when ``signed_for`` names the client."""
    values = {"error": error, "error_description": description, "state": state}
    return jarm.authorization_response(hoviyat, redirect_uri, values, signed_for)


def code_url(
    hoviyat: Hoviyat, authz: AuthorizationRequest, code: str, client: Client | None = None
) -> str:
    # RFC 9207: iss in every authorization response defends against mix-up attacks
    # (added by jarm.authorization_response, plain or signed).
    values = {"code": code, "state": authz.state}
    signed_for = jarm.signed_for(client, authz.response_mode)
    return jarm.authorization_response(hoviyat, authz.redirect_uri, values, signed_for)


def login_shortfall(
    authz: AuthorizationRequest,
    policy: ServicePolicy,
    acr: str,
    auth_time: datetime,
    requested_at: datetime,
) -> str | None:
    """Why a login does not satisfy the request (acr, max_age, prompt=login), or None."""
    wanted = required_level(authz.acr_values, policy.min_acr)
    if not satisfies(acr, wanted):
        return f"the login is below the requested level {wanted}"
    if authz.max_age is not None and _older_than(auth_time, authz.max_age, requested_at):
        return "the login is older than max_age"
    if "login" in authz.prompt and auth_time + SKEW < requested_at:
        return "prompt=login needs a fresh login"
    return None


def _older_than(auth_time: datetime, max_age: int, requested_at: datetime) -> bool:
    """OIDC Core §3.1.2.1: re-authenticate when more than ``max_age`` seconds have
    passed since the login. Counted in whole seconds, as ``auth_time`` is in the
    ID token, and with no slack beyond that second: ``max_age=1`` refuses a login
    two seconds old. A login made during this very request (after it began) is
    the active authentication max_age asks for, however long the steps took."""
    if auth_time >= requested_at:
        return False
    elapsed = int(datetime.now(UTC).timestamp()) - int(auth_time.timestamp())
    return elapsed > max_age


def consume(session: Session, interaction_id: str) -> bool:
    """Mark a finished interaction used, once across all workers; True if this call did."""
    return interactions.consume(session, interaction_id, datetime.now(UTC))


def close_and_consume(session: Session, interaction_id: str, login: AuthenticatedPerson) -> bool:
    """The login pages' last step: record who logged in and consume the interaction at once.

    True if this call did; False when another request (another worker, a
    second tab) closed it first or it expired meanwhile.
    """
    return interactions.close_and_consume(
        session,
        interaction_id,
        datetime.now(UTC),
        session_id=login.session_id,
        acr=login.acr,
        amr=list(login.amr),
        auth_time=login.auth_time,
        entity_national_id=login.entity_national_id,
    )


def answer(session: Session, hoviyat: Hoviyat, interaction_id: str, consumed: bool) -> str:
    """The client's redirect URL for an interaction: a code, or the error (§3.1.2.6).

    ``consumed`` says whether this request consumed it; raises a 400 Problem
    when there is nothing safe to redirect to (unknown, used, incomplete).
    """
    row = interactions.by_id(session, interaction_id)
    if row is None:
        raise bad_request("interaction-unknown", "no such login in progress; start again")
    try:
        authz = AuthorizationRequest.from_params(row.params, row.client_id)
    except ValueError as exc:
        raise bad_request("interaction-invalid", str(exc)) from None
    client = get_client(session, row.client_id)
    signed_for = jarm.signed_for(client, authz.response_mode)
    if not consumed:
        if row.consumed_at is not None:
            raise bad_request(
                "interaction-used", "this login was already completed; start again from the app"
            )
        if row.expires_at <= datetime.now(UTC):
            return error_url(
                hoviyat,
                authz.redirect_uri,
                authz.state,
                "access_denied",
                "the login expired",
                signed_for,
            )
        raise bad_request("interaction-incomplete", "finish logging in before continuing")

    if row.error is not None:
        return error_url(
            hoviyat,
            authz.redirect_uri,
            authz.state,
            row.error,
            "the login did not complete",
            signed_for,
        )
    login = login_sessions.by_id(session, row.session_id) if row.session_id else None
    if login is None or login.ended_at is not None or row.acr is None:
        facts = None
    else:
        facts = AuthenticatedPerson(
            session_id=login.id,
            national_code=login.national_code,
            acr=row.acr,
            amr=list(row.amr or login.amr),
            auth_time=row.auth_time or login.auth_time,
            entity_national_id=row.entity_national_id,
            mobile=login.mobile,
        )
    return issue(
        session,
        hoviyat,
        authz,
        client=client,
        consent_granted=row.consent_granted,
        login=facts,
        requested_at=row.created_at,
        tracking_code=row.tracking_code,
    )


def issue(
    session: Session,
    hoviyat: Hoviyat,
    authz: AuthorizationRequest,
    *,
    client: Client | None,
    consent_granted: bool,
    login: AuthenticatedPerson | None,
    requested_at: datetime,
    tracking_code: str,
    audit: list[AuditEvent] | None = None,
) -> str:
    """The last checks of a consumed interaction, then its code; returns the redirect URL.

    ``login`` is None when the login session has ended meanwhile; ``audit``
    collects the code's audit entry instead of inserting it (see issue_code).
    """

    def refuse(error: str, description: str) -> str:
        signed_for = jarm.signed_for(client, authz.response_mode)
        return error_url(hoviyat, authz.redirect_uri, authz.state, error, description, signed_for)

    if client is None or client.disabled:
        raise bad_request("client-disabled", "the client was disabled during the login")
    try:
        policy = policy_for(hoviyat, client)
    except IdentityRefused as exc:
        return refuse("unauthorized_client", str(exc))
    if not consent_granted:
        return refuse("access_denied", "the user did not consent")
    if login is None:
        return refuse("login_required", "the login session has ended")
    shortfall = login_shortfall(authz, policy, login.acr, login.auth_time, requested_at)
    if shortfall is not None:
        return refuse("login_required", shortfall)
    if "legal_entity" in authz.scope and login.entity_national_id is None:
        return refuse("interaction_required", "the user must choose a legal entity")
    code = issue_code(session, hoviyat, client, authz, login, tracking_code, audit)
    return code_url(hoviyat, authz, code, client)
