"""Authorizations and their challenges (RFC 8555 §7.5): read, answered, deactivated.

Answering a challenge (§7.5.1) claims it with one conditional UPDATE
(``pending`` → ``processing`` with a deadline), so however many requests,
workers or hosts answer the same challenge at once, one validation runs. The
validation itself runs after the answer is sent (the client polls, §7.5.1),
on the event loop but never blocking it (:func:`idp.acme.validation.validate`
awaits sockets; the database writes go to a worker thread). If the process
running it dies, the deadline passes and the next reader of the authorization
claims it again, up to :data:`MAX_ATTEMPTS`; after that it is invalid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from idp.acme.order_documents import challenge_stale
from idp.acme.orders import problem_document
from idp.acme.problems import AcmeProblem
from idp.acme.requests import AcmeAccount
from idp.acme.settings import AcmeSettings
from idp.acme.validation import ChallengeFailed, validate
from idp.storage import acme_orders as store
from idp.storage.acme_orders import AcmeAuthorization, AcmeChallenge
from idp.storage.availability import DATABASE_UNAVAILABLE
from idp.storage.engine import Database

log = logging.getLogger("hoviyat.acme")

MAX_ATTEMPTS = 3
GRACE_SECONDS = 30  # beyond the validation timeout, before a claim counts as abandoned
# §6.7: refusals that say the client's setup answered wrongly are 403; the
# rest (connection, dns, tls) are 400 as Boulder sends them.
_FORBIDDEN_ERRORS = frozenset({"unauthorized", "incorrectResponse", "caa"})


def not_found(what: str) -> AcmeProblem:
    # Another account's resource is answered as an unknown one: its existence is not told.
    return AcmeProblem("malformed", f"no such {what}", 404)


@dataclass(frozen=True)
class ValidationJob:
    """One claimed validation: only this attempt may record its result."""

    challenge: AcmeChallenge
    attempt: int
    identifier: str
    key_authorization: str


def key_authorization(token: str, account: AcmeAccount) -> str:
    """§8.1: token "." base64url(SHA-256 JWK thumbprint of the account key)."""
    return f"{token}.{account.jwk_thumbprint}"


def owned_authorization(
    db: Database, authz_id: str, account: AcmeAccount, ca: str
) -> tuple[AcmeAuthorization, list[AcmeChallenge]]:
    with db.read() as session:
        authz = store.get_authorization(session, authz_id)
        if authz is None or authz.account_id != account.id or authz.ca != ca:
            raise not_found("authorization")
        return authz, store.authorization_challenges(session, authz_id)


def owned_challenge(
    db: Database, challenge_id: str, account: AcmeAccount, ca: str
) -> tuple[AcmeChallenge, AcmeAuthorization]:
    with db.read() as session:
        challenge = store.get_challenge(session, challenge_id)
        authz = None if challenge is None else store.get_authorization(session, challenge.authz_id)
        if challenge is None or authz is None or authz.account_id != account.id or authz.ca != ca:
            raise not_found("challenge")
        return challenge, authz


def claim(
    db: Database,
    challenge: AcmeChallenge,
    authz: AcmeAuthorization,
    account: AcmeAccount,
    settings: AcmeSettings,
    now: datetime,
) -> ValidationJob | None:
    """Claim the challenge's validation for this caller; None if another holds it, it is
    decided, or its authorization is no longer pending."""
    until = now + timedelta(seconds=settings.validation_timeout_seconds + GRACE_SECONDS)
    with db.session() as session:
        attempt = store.claim_challenge(session, challenge.id, now, until)
        if not attempt:
            return None
        if attempt > MAX_ATTEMPTS:
            error = problem_document(
                "serverInternal",
                f"validation was interrupted {MAX_ATTEMPTS} times; place a new order",
                500,
            )
            store.record_validation(session, challenge, attempt, error, now, authz.expires_at)
            return None
    return ValidationJob(
        # The row as the claim left it: the validation runs only after the answer
        # is sent, so the route shows this without reading it back.
        challenge=store.claimed(challenge, attempt, until),
        attempt=attempt,
        identifier=authz.identifier,
        key_authorization=key_authorization(challenge.token, account),
    )


def reclaim_stale(
    db: Database,
    authz: AcmeAuthorization,
    challenges: list[AcmeChallenge],
    account: AcmeAccount,
    settings: AcmeSettings,
    now: datetime,
) -> list[ValidationJob]:
    """Validations whose worker died, claimed again by this reader."""
    jobs = []
    for challenge in challenges:
        if challenge_stale(challenge, now):
            job = claim(db, challenge, authz, account, settings, now)
            if job is not None:
                jobs.append(job)
    return jobs


def _record(db: Database, job: ValidationJob, error: dict[str, Any] | None, lifetime: int) -> bool:
    now = datetime.now(UTC)
    with db.session() as session:
        return store.record_validation(
            session, job.challenge, job.attempt, error, now, now + timedelta(seconds=lifetime)
        )


async def run_validation(db: Database, job: ValidationJob, settings: AcmeSettings) -> None:
    """Validate and record the result; the authorization (and so its orders) follows."""
    error: dict[str, Any] | None = None
    try:
        await validate(
            job.challenge.type,
            job.identifier,
            job.challenge.token,
            job.key_authorization,
            settings,
        )
    except ChallengeFailed as failed:
        # validate() answers every failure of the target this way (its contract); a
        # bug there escapes to the log, and the challenge's deadline hands it on.
        status = 403 if failed.error in _FORBIDDEN_ERRORS else 400
        error = problem_document(failed.error, failed.detail, status)
    try:
        await anyio.to_thread.run_sync(
            _record, db, job, error, settings.authorization_lifetime_seconds
        )
    except DATABASE_UNAVAILABLE as exc:
        # The deadline hands the challenge to the next reader: nothing is lost.
        log.warning(
            "the result of challenge %s could not be recorded: %s",
            job.challenge.id,
            type(exc).__name__,
        )


async def run_validations(db: Database, jobs: list[ValidationJob], settings: AcmeSettings) -> None:
    for job in jobs:
        await run_validation(db, job, settings)


def deactivate(db: Database, authz: AcmeAuthorization) -> None:
    """§7.5.2: the client gives up the authorization; only pending or valid ones can be."""
    with db.session() as session:
        if not store.deactivate_authorization(session, authz.id):
            raise AcmeProblem(
                "malformed", f"an authorization that is {authz.status} cannot be deactivated"
            )
