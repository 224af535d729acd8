"""One-time codes and hard limits under concurrency: the database, not the process, decides.

Each thread has its own connection and transaction, as two workers would;
a barrier releases them together.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from idp.login.limits import Allowance, take
from idp.login.otp import OtpOutcome, check_code, issue_code
from idp.oidc.completion import close_and_consume, consume
from idp.storage.engine import Database
from idp.storage.login import AuthenticatedPerson
from idp.storage.oidc import OidcInteraction

KEY = b"k" * 32
T = TypeVar("T")


def _together(count: int, work: Callable[[], T]) -> list[T]:
    barrier = threading.Barrier(count)
    results: list[T] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        outcome = work()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == count
    return results


def _code(db: Database, max_attempts: int = 5) -> tuple[str, str]:
    with db.session() as session:
        row, code = issue_code(
            session,
            key=KEY,
            session_id="s1",
            interaction_id="i1",
            national_code="0499370899",
            mobile="09121234567",
            ttl_seconds=180,
            max_attempts=max_attempts,
        )
        return row.id, code


def test_one_code_is_accepted_once_however_many_race(db: Database) -> None:
    otp_id, code = _code(db)

    def enter() -> OtpOutcome:
        with db.session() as session:
            return check_code(session, key=KEY, otp_id=otp_id, code=code)

    outcomes = _together(6, enter)
    assert outcomes.count(OtpOutcome.ACCEPTED) == 1
    assert set(outcomes) - {OtpOutcome.ACCEPTED} <= {OtpOutcome.USED}


def test_racing_wrong_guesses_never_exceed_the_attempt_limit(db: Database) -> None:
    otp_id, code = _code(db, max_attempts=3)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    def guess() -> OtpOutcome:
        with db.session() as session:
            return check_code(session, key=KEY, otp_id=otp_id, code=wrong)

    outcomes = _together(8, guess)
    assert outcomes.count(OtpOutcome.WRONG) == 3
    assert outcomes.count(OtpOutcome.EXHAUSTED) == 5
    with db.session() as session:
        assert check_code(session, key=KEY, otp_id=otp_id, code=code) is OtpOutcome.EXHAUSTED


def test_hard_limit_holds_under_concurrent_takes(db: Database) -> None:
    allowance = [Allowance("otp:mobile:09121234567", 4)]

    def use() -> bool:
        with db.session() as session:
            return take(session, allowance, 3600) is None

    results = _together(10, use)
    assert results.count(True) == 4


def test_hard_limit_holds_when_the_write_only_upserts(db: Database) -> None:
    # The identify step checks the counter on a read-only transaction first,
    # then counts in its write with the upsert alone (checked=True).
    allowance = [Allowance("login:nc:race", 4)]

    def use() -> bool:
        with db.session() as session:
            return take(session, allowance, 3600, checked=True) is None

    results = _together(10, use)
    assert results.count(True) == 4


def test_an_interaction_is_closed_and_consumed_once_however_many_race(db: Database) -> None:
    interaction_id = secrets.token_urlsafe(24)
    now = datetime.now(UTC)
    with db.session() as session:
        session.add(
            OidcInteraction(
                id=interaction_id,
                client_id="c1",
                params={},
                requested_claims=[],
                tracking_code="t1",
                created_at=now,
                expires_at=now + timedelta(minutes=10),
            )
        )
    login = AuthenticatedPerson(
        session_id="s1",
        national_code="0000000000",
        acr="low",
        amr=["kba"],
        auth_time=now,
        entity_national_id=None,
    )

    def close() -> bool:
        with db.session() as session:
            return close_and_consume(session, interaction_id, login)

    assert _together(6, close).count(True) == 1
    with db.session() as session:
        assert consume(session, interaction_id) is False  # /authorize/complete finds it used
