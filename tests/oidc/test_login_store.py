"""Session and consent storage on both databases: the functions /authorize relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from idp.login.consent import has_consent, list_consents, remember_consent, revoke_consent
from idp.login.sessions import end_session, raise_level, start_session, token_digest
from idp.storage.engine import Database
from idp.storage.login import LoginSession
from policies import assurance
from policies.assurance import HIGH, SUBSTANTIAL

NC = "0499370899"


def test_consent_covers_subsets_only_until_revoked(db: Database) -> None:
    with db.session() as s:
        assert not has_consent(s, NC, "app", ["given_name"])
        remember_consent(s, NC, "app", ["given_name", "family_name"])
        remember_consent(s, NC, "app", ["family_name", "given_name"])  # same set: one row
    with db.session() as s:
        assert has_consent(s, NC, "app", ["given_name"])
        assert has_consent(s, NC, "app", ["family_name", "given_name"])
        assert not has_consent(s, NC, "app", ["given_name", "national_code"])
        assert not has_consent(s, NC, "other-app", ["given_name"])
        assert not has_consent(s, "1234567891", "app", ["given_name"])
        rows = list_consents(s, NC)
        assert len(rows) == 1
        assert rows[0].id is not None
        assert not revoke_consent(s, "1234567891", rows[0].id)  # not theirs
        assert revoke_consent(s, NC, rows[0].id)
    with db.session() as s:
        assert not has_consent(s, NC, "app", ["given_name"])
        assert not revoke_consent(s, NC, rows[0].id)
        remember_consent(s, NC, "app", ["given_name", "family_name"])  # revived
    with db.session() as s:
        assert has_consent(s, NC, "app", ["given_name"])


def test_step_up_rotates_token_and_logout_ends_session(db: Database) -> None:
    with db.session() as s:
        row, token = start_session(
            s,
            national_code=NC,
            acr=assurance.LOW,
            amr=["kba"],
            tracking_code="T1",
            ttl_seconds=600,
        )
        assert row.token_digest == token_digest(token)
        assert token not in row.token_digest
        new_token = raise_level(s, row, acr=assurance.SUBSTANTIAL, amr=["sms", "otp"], mobile="x")
        session_id = row.id
    assert new_token != token
    with db.session() as s:
        stored = s.get(LoginSession, session_id)
        assert stored is not None
        assert stored.token_digest == token_digest(new_token)
        assert stored.amr == ["kba", "otp", "sms"]
        assert stored.auth_time <= datetime.now(UTC)
        assert end_session(s, session_id)
        assert not end_session(s, session_id)


def test_required_level_takes_least_demanding_known_value_above_policy_minimum() -> None:
    assert assurance.required_level([]) == assurance.LOW
    assert assurance.required_level(["urn:unknown", assurance.SUBSTANTIAL]) == assurance.SUBSTANTIAL
    assert assurance.required_level([HIGH, SUBSTANTIAL]) == SUBSTANTIAL
    assert assurance.required_level([assurance.LOW], assurance.SUBSTANTIAL) == assurance.SUBSTANTIAL
    assert assurance.satisfies(assurance.SUBSTANTIAL, assurance.LOW)
    assert not assurance.satisfies(assurance.LOW, assurance.SUBSTANTIAL)


def test_prune_drops_only_rows_that_can_no_longer_matter(db: Database) -> None:
    from idp.login.housekeeping import prune
    from idp.login.limits import Allowance, take
    from idp.login.otp import issue_code
    from idp.storage.login import LoginCounter, LoginOtp

    with db.session() as s:
        old, _ = start_session(
            s, national_code=NC, acr=assurance.LOW, amr=["kba"], tracking_code="T", ttl_seconds=60
        )
        live, _ = start_session(
            s, national_code=NC, acr=assurance.LOW, amr=["kba"], tracking_code="T", ttl_seconds=600
        )
        issue_code(s, key=b"k", session_id=live.id, interaction_id="i", national_code=NC,
                   mobile="09121234567", ttl_seconds=180, max_attempts=5)  # fmt: skip
        assert take(s, [Allowance("b", 5)], 3600) is None
    later = datetime.now(UTC) + timedelta(days=1, minutes=5)
    with db.session() as s:
        counts = prune(s, later)
    assert counts == {"sessions": 1, "codes": 1, "counters": 1, "passkey_challenges": 0}
    with db.session() as s:
        assert prune(s) == {"sessions": 0, "codes": 0, "counters": 0, "passkey_challenges": 0}
        assert s.get(LoginSession, old.id) is None
        assert s.get(LoginSession, live.id) is not None  # expired under a day before: kept
        assert s.exec(select(LoginOtp)).first() is None
        assert s.exec(select(LoginCounter)).first() is None
