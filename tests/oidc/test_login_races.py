"""One-time codes and hard limits under concurrency: the database, not the process, decides.

Each thread has its own connection and transaction, as two workers would;
a barrier releases them together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from idp.login.limits import Allowance, take
from idp.login.otp import OtpOutcome, check_code, issue_code
from idp.storage.engine import Database

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
