"""The order's life below HTTP (RFC 8555 §7.1.6), on SQLite and PostgreSQL: what newOrder
refuses, how authorizations are made and reused, how the order moves on, and what a
worker that dies mid-validation or mid-issuance leaves behind (nothing stuck)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from orders_support import ENTITY, PEPPER, account, new_order, prove, ready_order
from sqlmodel import select

from idp.acme import orders
from idp.acme.authorizations import GRACE_SECONDS, MAX_ATTEMPTS, claim, owned_authorization
from idp.acme.order_requests import parse_order_request, refused_by_policy
from idp.acme.orders import settle
from idp.acme.problems import AcmeProblem
from idp.acme.settings import AcmeSettings
from idp.audit.log import subject_hash
from idp.storage import acme_orders as store
from idp.storage.engine import Database
from idp.storage.models import AuditEntry
from policies.service_policy import load_service_policies

OFFERED = ("tls-server", "tls-server-short")
SETTINGS = AcmeSettings()


def _parse(payload: dict[str, object]) -> AcmeProblem:
    with pytest.raises(AcmeProblem) as refused:
        parse_order_request(payload, SETTINGS, OFFERED)
    return refused.value


# --- newOrder's payload ------------------------------------------------------------------


def test_attack_ip_identifier_is_unsupported_with_a_subproblem_naming_it() -> None:
    problem = _parse({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
    assert problem.error == "unsupportedIdentifier"
    assert problem.subproblems and problem.subproblems[0]["identifier"]["value"] == "127.0.0.1"


def test_attack_ip_address_as_a_dns_identifier_is_rejected() -> None:
    problem = _parse({"identifiers": [{"type": "dns", "value": "10.0.0.1"}]})
    assert problem.error == "rejectedIdentifier"


def test_attack_internal_name_and_public_suffix_are_rejected_per_name() -> None:
    problem = _parse(
        {
            "identifiers": [
                {"type": "dns", "value": "www.tax.example.com"},
                {"type": "dns", "value": "intranet.local"},
                {"type": "dns", "value": "co.uk"},
            ]
        }
    )
    assert problem.error == "rejectedIdentifier"
    assert [s["identifier"]["value"] for s in problem.subproblems or []] == [
        "intranet.local",
        "co.uk",
    ]


def test_names_are_normalised_and_deduplicated() -> None:
    wanted = parse_order_request(
        {
            "identifiers": [
                {"type": "dns", "value": "WWW.Tax.Example.COM"},
                {"type": "dns", "value": "www.tax.example.com"},
            ]
        },
        SETTINGS,
        OFFERED,
    )
    assert wanted.names == ("www.tax.example.com",)
    assert wanted.profile == "tls-server"


def test_attack_more_identifiers_than_allowed_is_refused() -> None:
    settings = AcmeSettings(max_identifiers=2)
    names = [{"type": "dns", "value": f"h{i}.tax.example.com"} for i in range(3)]
    with pytest.raises(AcmeProblem) as refused:
        parse_order_request({"identifiers": names}, settings, OFFERED)
    assert refused.value.error == "rejectedIdentifier"


@pytest.mark.parametrize("member", ["notBefore", "notAfter"])
def test_validity_dates_are_refused_the_profile_decides(member: str) -> None:
    problem = _parse(
        {
            "identifiers": [{"type": "dns", "value": "a.tax.example.com"}],
            member: "2030-01-01T00:00:00Z",
        }
    )
    assert problem.error == "malformed" and member in problem.detail


@pytest.mark.parametrize("profile", ["person-signing", "ocsp-responder", "nope", 7])
def test_attack_profile_not_offered_is_invalid_profile(profile: object) -> None:
    problem = _parse(
        {"identifiers": [{"type": "dns", "value": "a.tax.example.com"}], "profile": profile}
    )
    assert problem.error == "invalidProfile"


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"identifiers": []}, {"identifiers": "a.tax.example.com"}, {"identifiers": [1]}],
)
def test_malformed_new_order_payloads(payload: dict[str, object] | None) -> None:
    with pytest.raises(AcmeProblem) as refused:
        parse_order_request(payload, SETTINGS, OFFERED)
    assert refused.value.error == "malformed"


def test_attack_name_outside_the_entity_policy_is_rejected_per_name() -> None:
    policy = load_service_policies()["demo-tax-portal"]
    problem = refused_by_policy(
        policy, ("www.tax.example.com", "bank.example.net", "eviltax.example.com")
    )
    assert problem is not None and problem.error == "rejectedIdentifier"
    assert [s["identifier"]["value"] for s in problem.subproblems or []] == [
        "bank.example.net",
        "eviltax.example.com",
    ]
    assert refused_by_policy(policy, ("www.tax.example.com", "*.tax.example.com")) is None


def test_attack_account_without_a_policy_may_order_nothing() -> None:
    problem = refused_by_policy(None, ("www.tax.example.com",))
    assert problem is not None and problem.error == "rejectedIdentifier"


# --- authorizations ----------------------------------------------------------------------


def test_one_authorization_per_name_wildcards_get_dns01_only(db: Database) -> None:
    who = account()
    order, authz_ids = new_order(db, who, ("www.tax.example.com", "*.tax.example.com"))
    assert order.status == "pending" and len(authz_ids) == 2
    plain, plain_challenges = owned_authorization(db, authz_ids[0], who, "infrastructure")
    wild, wild_challenges = owned_authorization(db, authz_ids[1], who, "infrastructure")
    assert (plain.identifier, plain.wildcard) == ("www.tax.example.com", False)
    assert sorted(c.type for c in plain_challenges) == ["dns-01", "http-01", "tls-alpn-01"]
    assert (wild.identifier, wild.wildcard) == ("tax.example.com", True)
    assert [c.type for c in wild_challenges] == ["dns-01"]
    tokens = [c.token for c in plain_challenges + wild_challenges]
    assert len(set(tokens)) == len(tokens) and all(len(t) >= 43 for t in tokens)


def test_new_order_is_audited_with_the_entity(db: Database) -> None:
    who = account()
    order, _ = new_order(db, who, ("www.tax.example.com",))
    with db.read() as session:
        entries = list(
            session.exec(select(AuditEntry).where(AuditEntry.event_type == "acme_order_created"))
        )
    assert len(entries) == 1
    entry = entries[0]
    assert entry.actor_id == f"acme:{who.id}" and entry.actor_type == "acme-account"
    assert entry.subject_hash == subject_hash(PEPPER, ENTITY)
    assert entry.detail["national_id"] == ENTITY
    assert entry.detail["names_count"] == 1 and entry.detail["profile"] == "tls-server"
    assert entry.detail["order"] == order.id


def test_valid_authorization_is_reused_by_the_same_account_only(db: Database) -> None:
    who, other = account(), account()
    first = ready_order(db, who, ("www.tax.example.com",))
    again, again_ids = new_order(db, who, ("www.tax.example.com",))
    assert again.status == "ready"
    with db.read() as session:
        first_ids = [a.id for a in store.order_authorizations(session, first.id)]
    assert again_ids == first_ids
    theirs, their_ids = new_order(db, other, ("www.tax.example.com",))
    assert theirs.status == "pending" and their_ids != first_ids


def test_attack_another_account_cannot_read_an_authorization(db: Database) -> None:
    who, other = account(), account()
    _, authz_ids = new_order(db, who, ("www.tax.example.com",))
    with pytest.raises(AcmeProblem) as refused:
        owned_authorization(db, authz_ids[0], other, "infrastructure")
    assert refused.value.status == 404


# --- challenges: one validation, and none left stuck ------------------------------------


def test_attack_challenge_claimed_by_many_threads_runs_one_validation(db: Database) -> None:
    who = account()
    _, authz_ids = new_order(db, who, ("www.tax.example.com",))
    authz, challenges = owned_authorization(db, authz_ids[0], who, "infrastructure")
    barrier = threading.Barrier(8)
    jobs: list[object] = []

    def race() -> None:
        barrier.wait()
        job = claim(db, challenges[0], authz, who, SETTINGS, datetime.now(UTC))
        if job is not None:
            jobs.append(job)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(jobs) == 1


def test_validation_abandoned_by_a_dead_worker_is_claimed_again(db: Database) -> None:
    who = account()
    _, authz_ids = new_order(db, who, ("www.tax.example.com",))
    authz, challenges = owned_authorization(db, authz_ids[0], who, "infrastructure")
    now = datetime.now(UTC)
    first = claim(db, challenges[0], authz, who, SETTINGS, now)
    assert first is not None and first.attempt == 1
    assert claim(db, challenges[0], authz, who, SETTINGS, now) is None  # still running
    later = now + timedelta(seconds=SETTINGS.validation_timeout_seconds + GRACE_SECONDS + 1)
    second = claim(db, challenges[0], authz, who, SETTINGS, later)
    assert second is not None and second.attempt == 2
    # The first worker, back from the dead, may not overwrite the second's claim.
    with db.session() as session:
        assert not store.record_validation(
            session, first.challenge, 1, None, later, later + timedelta(days=1)
        )
        assert store.record_validation(
            session, second.challenge, 2, None, later, later + timedelta(days=1)
        )
    authz, _ = owned_authorization(db, authz_ids[0], who, "infrastructure")
    assert authz.status == "valid"


def test_validation_interrupted_too_often_makes_the_challenge_invalid(db: Database) -> None:
    who = account()
    _, authz_ids = new_order(db, who, ("www.tax.example.com",))
    authz, challenges = owned_authorization(db, authz_ids[0], who, "infrastructure")
    step = timedelta(seconds=SETTINGS.validation_timeout_seconds + GRACE_SECONDS + 1)
    moment = datetime.now(UTC)
    for _ in range(MAX_ATTEMPTS):
        assert claim(db, challenges[0], authz, who, SETTINGS, moment) is not None
        moment += step
    assert claim(db, challenges[0], authz, who, SETTINGS, moment) is None
    authz, challenges = owned_authorization(db, authz_ids[0], who, "infrastructure")
    assert authz.status == "invalid"
    assert challenges[0].error and challenges[0].error["type"].endswith(":serverInternal")


# --- the order follows its authorizations and the clock -------------------------------


def test_order_is_invalid_once_an_authorization_fails(db: Database) -> None:
    who = account()
    order, authz_ids = new_order(db, who, ("a.tax.example.com", "b.tax.example.com"))
    prove(db, who, authz_ids[0], SETTINGS)
    failure = {"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "x", "status": 403}
    prove(db, who, authz_ids[1], SETTINGS, error=failure)
    with db.session() as session:
        found = store.get_order(session, order.id)
        assert found is not None
        settled = settle(session, found, datetime.now(UTC))
    assert settled.status == "invalid"
    assert settled.error and "b.tax.example.com" in settled.error["detail"]


def test_order_expires_to_invalid(db: Database) -> None:
    who = account()
    order, _ = new_order(db, who, ("a.tax.example.com",))
    with db.session() as session:
        found = store.get_order(session, order.id)
        assert found is not None
        settled = settle(session, found, order.expires_at + timedelta(seconds=1))
    assert settled.status == "invalid"


def test_ready_order_whose_authorization_expired_is_invalid(db: Database) -> None:
    who = account()
    order = ready_order(db, who, ("a.tax.example.com",))
    with db.session() as session:
        found = store.get_order(session, order.id)
        assert found is not None
        # Authorizations were proven for 7 days; the order lasts one: look a year ahead
        # but keep the order itself unexpired for the check.
        store.move_order(
            session, order.id, ("ready",), expires_at=datetime.now(UTC) + timedelta(days=400)
        )
        session.refresh(found)
        settled = settle(session, found, datetime.now(UTC) + timedelta(days=30))
    assert settled.status == "invalid"


def test_issuance_abandoned_without_a_certificate_makes_the_order_invalid(db: Database) -> None:
    who = account()
    order = ready_order(db, who, ("a.tax.example.com",))
    now = datetime.now(UTC)
    with db.session() as session:
        assert store.claim_finalize(session, order.id, "T" * 26, now, now + timedelta(seconds=5))
        assert not store.claim_finalize(
            session, order.id, "U" * 26, now, now + timedelta(seconds=5)
        )
    with db.session() as session:
        found = store.get_order(session, order.id)
        assert found is not None
        assert settle(session, found, now).status == "processing"
        settled = settle(session, found, now + timedelta(seconds=6))
    assert settled.status == "invalid"
    assert settled.error and settled.error["type"].endswith(":serverInternal")


def test_attack_flood_of_unvalidated_orders_is_rate_limited(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orders, "MAX_PENDING_AUTHORIZATIONS", 3)
    who = account()
    new_order(db, who, ("a.tax.example.com", "b.tax.example.com"))
    with pytest.raises(AcmeProblem) as refused:
        new_order(db, who, ("c.tax.example.com", "d.tax.example.com"))
    assert (refused.value.error, refused.value.status) == ("rateLimited", 429)
    assert int(refused.value.headers["Retry-After"]) > 0
    with db.read() as session:  # nothing of the refused order was written
        assert store.pending_authorization_count(session, who.id, datetime.now(UTC)) == 2
    new_order(db, who, ("c.tax.example.com",))  # within the limit
    new_order(db, account(), ("c.tax.example.com", "d.tax.example.com"))  # another account
