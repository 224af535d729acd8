"""Certificate step (level high): a person certificate of our persons CA (the national card).

The reverse proxy proves the browser holds the certificate's key (TLS client
authentication) and forwards the certificate (:mod:`idp.http.client_certificate`,
believed only from a trusted proxy); :mod:`idp.pki.person_login` decides whose
it is (our CA's signature, validity, profile, OCSP asked live, civil registry).

The certificate is judged before the step's transaction opens: judging reads
the CA tables, may have the OCSP service certify its responder (its own write)
and asks the registry, none of which should run under the login's write lock.
Then, in the step's transaction:

- a browser whose session belongs to a person steps up only with that person's
  certificate (another person's card never raises someone's session);
- a browser without a session starts one for the certificate's person;
- either way the session is at ``high`` with amr ``sc`` + ``hwk`` (RFC 8176:
  smart-card model, proof of a hardware-held key), and its cookie token rotates.

Every refusal shows a translated message with the way back to the login and is
audited (``login``/``certificate``, outcome ``refused``, the check that failed
as ``reason``; the national code only as the subject hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from cryptography import x509
from fastapi import Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from idp.http.client_certificate import ClientCertificateError, presented_certificate
from idp.http.revocation import get_status_services
from idp.login import sessions
from idp.login.flow import reset_choices
from idp.login.render import csrf_ok, hoviyat_of, message
from idp.login.steps.posted import (
    Outcome,
    Posted,
    Redirect,
    SessionCookie,
    Shown,
    StepEvent,
    run_step,
)
from idp.pki.ocsp_responder import OCSPService
from idp.pki.person_login import (
    CertificatePerson,
    PersonCertificateRefused,
    Refusal,
    national_code_of,
    person_from_certificate,
)
from idp.storage.login import LoginSession
from policies import assurance
from verifiers.registry.base import RegistryUnavailable

OPERATION = "certificate"
AMR = [assurance.AMR_SC, assurance.AMR_HWK]

# The message a refused citizen reads, per failed check (i18n keys).
_MESSAGES: dict[Refusal | str, str] = {
    "missing": "err.certificate_missing",
    "malformed": "err.certificate_malformed",
    "other-person": "err.certificate_other_person",
    Refusal.NOT_OUR_CA: "err.certificate_not_ours",
    Refusal.WRONG_PROFILE: "err.certificate_not_ours",
    Refusal.NO_NATIONAL_CODE: "err.certificate_not_ours",
    Refusal.UNKNOWN_TO_OCSP: "err.certificate_not_ours",
    Refusal.OUTSIDE_VALIDITY: "err.certificate_expired",
    Refusal.REVOKED: "err.certificate_revoked",
    Refusal.OCSP_UNAVAILABLE: "err.certificate_status_unavailable",
    Refusal.NOT_IN_REGISTRY: "err.certificate_not_in_registry",
    Refusal.DECEASED: "err.deceased",
}


@dataclass(frozen=True)
class _Refused:
    """A certificate that logs no one in: why (audited), and whose code it named, if any."""

    reason: Refusal | str
    national_code: str | None = None
    status: int = 403


_Verdict = CertificatePerson | _Refused | RegistryUnavailable


async def sign_in(request: Request, interaction: str, lang: str, csrf_token: str) -> Response:
    """``POST /login/certificate``: judge the presented certificate, then take the step."""
    status = await get_status_services(request)
    return await run_in_threadpool(_sign_in, request, interaction, lang, csrf_token, status.ocsp)


def _sign_in(
    request: Request, interaction: str, lang: str, csrf_token: str, ocsp_service: OCSPService
) -> Response:
    # A form that fails CSRF changes nothing: run_step refuses it before the step runs,
    # so the certificate is not even judged (no OCSP responder issued on its behalf).
    verdict: _Verdict = _Refused("missing")
    if csrf_ok(request, csrf_token):
        verdict = judge(request, ocsp_service, datetime.now(UTC))
    return run_step(request, interaction, lang, csrf_token, partial(present, verdict=verdict))


def judge(request: Request, ocsp_service: OCSPService, now: datetime) -> _Verdict:
    """Whose certificate this request presents, or why it logs no one in."""
    try:
        certificate = presented_certificate(request)
    except ClientCertificateError:
        return _Refused("malformed", status=400)
    if certificate is None:
        return _Refused("missing", status=400)
    hoviyat = hoviyat_of(request)
    try:
        return person_from_certificate(hoviyat.registries, ocsp_service, certificate, now)
    except PersonCertificateRefused as exc:
        # The responder not answering is ours to fix, not the citizen's: 503.
        status = 503 if exc.reason is Refusal.OCSP_UNAVAILABLE else 403
        return _Refused(exc.reason, _named_code(certificate, exc.reason), status)
    except RegistryUnavailable as exc:
        return exc


def _named_code(certificate: x509.Certificate, reason: Refusal) -> str | None:
    """The national code a refused certificate names, for the audit's subject hash.

    Only when the certificate is ours (issuer checked): a stranger's certificate
    names whatever its maker chose, and that goes in no one's history.
    """
    if reason in (Refusal.NOT_OUR_CA, Refusal.NO_NATIONAL_CODE):
        return None
    try:
        return national_code_of(certificate)
    except PersonCertificateRefused:
        return None


def present(
    posted: Posted, db_session: Session, session: LoginSession | None, *, verdict: _Verdict
) -> Outcome:
    """The step: refuse, step the session up, or start one at level high."""
    if isinstance(verdict, RegistryUnavailable):
        raise verdict  # take_step answers 503 with Retry-After
    if posted.flow.required_acr != assurance.HIGH:
        # Only a login that asks for high offers this step; /login shows the one it is at.
        return posted.back_to_login()
    if isinstance(verdict, _Refused):
        return _refuse(posted, verdict)
    code = verdict.national_code
    if session is not None and session.national_code != code:
        # Someone else's card in this browser raises no one's session (audited under
        # the certificate's person: it is their card being used).
        return _refuse(posted, _Refused("other-person", code))
    hoviyat = posted.hoviyat
    ttl = hoviyat.login_settings.session_ttl_seconds
    if session is None:
        session, token = sessions.start_session(
            db_session,
            national_code=code,
            acr=assurance.HIGH,
            amr=list(AMR),
            tracking_code=posted.flow.interaction.tracking_code,
            ttl_seconds=ttl,
        )
        # A new person in this interaction: choices made for anyone before do not carry.
        reset_choices(db_session, posted.flow.interaction.id)
        max_age = ttl
    else:
        token = sessions.raise_level(
            db_session, session, acr=assurance.HIGH, amr=list(AMR), mobile=None
        )
        # The cookie lives as long as the session, which the step-up does not extend.
        remaining = int((session.expires_at - datetime.now(UTC)).total_seconds())
        max_age = max(1, min(remaining, ttl))
    accepted = StepEvent(
        OPERATION,
        "success",
        code,
        {"acr": assurance.HIGH, "session_id": session.id, "certificate": verdict.serial_hex},
    )
    return Redirect(posted.login_url, (accepted,), SessionCookie(token, max_age))


def _refuse(posted: Posted, refused: _Refused) -> Shown:
    reason = refused.reason.value if isinstance(refused.reason, Refusal) else refused.reason
    event = StepEvent(OPERATION, "refused", refused.national_code, {"reason": reason})
    page = message(
        posted.request,
        posted.language,
        _MESSAGES[refused.reason],
        refused.status,
        continue_url=posted.login_url,
    )
    return Shown(page, (event,))
