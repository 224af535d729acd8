"""The CA's lifecycle in the console, from the attacker's side: a rollover, an issuing CA
installation and failing stale intents need a second CA operator; the requester cannot
approve, nobody without the role can ask or approve, a form without its CSRF token or
with a forged chain changes nothing, and an approval is carried out exactly once, also
when its worker died before recording the result."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import html5lib
import httpx
import pytest
from certs_support import certificate_count, issue, record, serial_of
from console_support import audit_events, csrf_token, grant, person_key, refusals, signed_in
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pki_helpers import make_csr, openssl_verify
from sqlalchemy import text

from ca import names
from ca.issuance import issue_batch
from ca.ports import Intent
from idp.console.certificates_lifecycle import FAIL_PENDING, ROLLOVER
from idp.console.roles import Role
from idp.pki.hierarchy import Hierarchy
from idp.pki.registration import Request
from idp.pki.service import build_pki
from idp.pki.subjects import SubjectReference
from idp.storage import console as store
from idp.storage.certificate_store import IntentRecords, authority_rows
from idp.storage.engine import Database
from verifiers.registry.base import Person

PAGE = "/console/certs/lifecycle"


def _operators(app: FastAPI, first: TestClient, second: TestClient, people: list[Person]) -> None:
    for person in people[:2]:
        grant(app, person.national_code, Role.CA_OPERATOR)
    signed_in(app, first, people[0].national_code)
    signed_in(app, second, people[1].national_code)


def _token(browser: TestClient) -> str:
    page = browser.get(PAGE)
    assert page.status_code == 200, page.text
    return csrf_token(page.text)


def _ask(browser: TestClient, action: str, **fields: str) -> httpx.Response:
    return browser.post(f"{PAGE}/{action}", data={"csrf_token": _token(browser), **fields})


def _approval_id(app: FastAPI, kind: str) -> int:
    (requested,) = [
        e
        for e in audit_events(app, "console_approval")
        if e.outcome == "requested" and e.operation == kind
    ]
    return int(requested.detail["approval_id"])


def _approve(browser: TestClient, approval_id: int) -> httpx.Response:
    page = browser.get("/console/approvals")
    return browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": csrf_token(page.text)}
    )


def _generations(app: FastAPI, name: str) -> list[int]:
    db = app.state.hoviyat.db
    return [row.generation for row in authority_rows(db) if row.name == name]


def _hierarchy(app: FastAPI) -> Hierarchy:
    hoviyat = app.state.hoviyat
    pki = build_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    )
    assert isinstance(pki.hierarchy, Hierarchy)
    return pki.hierarchy


def _person_certificate(browser: TestClient, app: FastAPI, holder: Person) -> x509.Certificate:
    answer = issue(
        browser,
        make_csr()[0],
        "person-authentication",
        national_code=holder.national_code,
        reason="citizen asked at the counter",
    )
    assert answer.status_code == 303, answer.text
    der = record(app, serial_of(answer.headers["location"])).der
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_a_rollover_needs_a_second_operator_and_the_new_key_signs_what_follows(
    ca_ready: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
    tmp_path: Path,
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    old = _person_certificate(browser, ca_ready, people[3])
    asked = _ask(browser, "rollover", ca="persons", reason="yearly key ceremony")
    assert asked.status_code == 303, asked.text
    assert _generations(ca_ready, "persons") == [1], "a request alone changes nothing"
    approval_id = _approval_id(ca_ready, ROLLOVER)

    own = _approve(browser, approval_id)
    assert own.status_code == 403
    (refusal,) = refusals(ca_ready, "self_approval")
    assert refusal.detail["approval_kind"] == ROLLOVER
    assert refusal.actor_id == person_key(ca_ready, people[0].national_code)
    assert _generations(ca_ready, "persons") == [1]

    approved = _approve(other_browser, approval_id)
    assert approved.status_code == 303, approved.text
    assert approved.headers["location"].startswith(f"/console/approvals/{approval_id}")
    assert _generations(ca_ready, "persons") == [1, 2]
    new_ca = _hierarchy(ca_ready).issuing_ca("persons")
    assert new_ca.generation == 2
    page = other_browser.get(f"/console/approvals/{approval_id}?lang=en")
    assert page.status_code == 200
    assert "Carried out at" in page.text and new_ca.key_id in page.text
    (applied,) = [e for e in audit_events(ca_ready, "console_approval") if e.outcome == "applied"]
    assert applied.detail["generation"] == 2 and applied.detail["key_id"] == new_ca.key_id
    assert applied.actor_id == person_key(ca_ready, people[1].national_code)
    (rolled,) = [e for e in audit_events(ca_ready, "ca_lifecycle") if e.operation == "rollover"]
    assert rolled.actor_id == person_key(ca_ready, people[1].national_code)

    # Replayed: the decision is taken once, the CA rolled over once.
    assert _approve(other_browser, approval_id).status_code == 409
    assert _generations(ca_ready, "persons") == [1, 2]

    new = _person_certificate(browser, ca_ready, people[3])
    new_authority_key = new.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert new_authority_key.value.key_identifier is not None
    assert new_authority_key.value.key_identifier.hex() == new_ca.key_id
    root = new_ca.chain[-1]
    old_ca = next(
        x509.load_der_x509_certificate(row.certificate)
        for row in authority_rows(ca_ready.state.hoviyat.db)
        if row.name == "persons" and row.generation == 1 and row.certificate
    )
    for leaf, issuer in ((old, old_ca), (new, new_ca.certificate)):
        checked = openssl_verify(tmp_path, leaf, (issuer, root))
        assert checked.returncode == 0, checked.stderr


def test_a_person_without_the_ca_operator_role_can_neither_ask_nor_approve(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    grant(ca_ready, people[0].national_code, Role.CA_OPERATOR)
    grant(ca_ready, people[2].national_code, Role.ADMIN)
    signed_in(ca_ready, browser, people[0].national_code)
    signed_in(ca_ready, other_browser, people[2].national_code)
    assert _ask(browser, "rollover", ca="persons", reason="ceremony").status_code == 303
    approval_id = _approval_id(ca_ready, ROLLOVER)

    assert other_browser.get(PAGE).status_code == 403
    token = csrf_token(other_browser.get("/console/approvals").text)
    asked = other_browser.post(
        f"{PAGE}/rollover", data={"csrf_token": token, "ca": "persons", "reason": "mine"}
    )
    assert asked.status_code == 403
    approved = other_browser.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf_token": token}
    )
    assert approved.status_code == 403
    seen = other_browser.get(f"/console/approvals/{approval_id}")
    assert seen.status_code == 403
    admin = person_key(ca_ready, people[2].national_code)
    missing = [e for e in refusals(ca_ready, "missing_role") if e.actor_id == admin]
    assert len(missing) == 4
    assert any(e.detail.get("approval_kind") == ROLLOVER for e in missing)
    assert _generations(ca_ready, "persons") == [1]
    with ca_ready.state.hoviyat.db.session() as db:
        row = store.approval(db, approval_id)
        assert row is not None and row.state == store.PENDING


def test_a_lifecycle_form_without_its_csrf_token_is_refused(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    for action, fields in (
        ("rollover", {"ca": "persons", "reason": "forged"}),
        ("fail-pending", {"minutes": "1", "reason": "forged"}),
        ("crl", {"ca": "persons"}),
    ):
        answer = browser.post(f"{PAGE}/{action}", data=fields)
        assert answer.status_code == 403, action
    forged = browser.post(
        f"{PAGE}/install", data={"reason": "forged"}, files={"chain_file": ("c.pem", b"x")}
    )
    assert forged.status_code == 403
    assert [e for e in audit_events(ca_ready, "console_approval")] == []
    assert audit_events(ca_ready, "crl_published") == []


def _self_signed(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA384())
    )


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def test_a_garbage_or_forged_chain_is_a_clear_error_and_nothing_is_stored(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    hierarchy = _hierarchy(ca_ready)
    csr = hierarchy.issuing_csr("persons")  # 'ca csr': generation 2 awaits the root
    before = authority_rows(ca_ready.state.hoviyat.db)
    mallory = ec.generate_private_key(ec.SECP384R1())
    mallory_root = _self_signed(x509.Name.from_rfc4514_string("CN=Mallory Root"), mallory)
    # The pending generation's own key and subject, certified by another root.
    foreign = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(mallory_root.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC))
        .not_valid_after(datetime.now(UTC) + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(mallory, hashes.SHA384())
    )
    # The pending subject with a key of Mallory's.
    substituted = _self_signed(csr.subject, mallory)
    for chain, message in (
        (
            b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
            "could not be read",
        ),
        (b"\x00\x01 nothing like PEM", "could not be read"),
        (_pem(substituted), "match no pending request"),
        (_pem(foreign, mallory_root), "was not signed by this"),
    ):
        answer = browser.post(
            f"{PAGE}/install?lang=en",
            data={"csrf_token": _token(browser), "reason": "new generation"},
            files={"chain_file": ("chain.pem", chain, "application/x-pem-file")},
        )
        assert answer.status_code == 400, answer.text
        assert message in answer.text and "Nothing was stored" in answer.text
    assert audit_events(ca_ready, "console_approval") == []
    assert authority_rows(ca_ready.state.hoviyat.db) == before


def test_an_issuing_ca_certificate_signed_by_the_root_is_installed_when_approved(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    hierarchy = _hierarchy(ca_ready)
    csr = hierarchy.issuing_csr("organisations")
    issuer = ca_ready.state.hoviyat.settings.issuer
    certificate = hierarchy.sign_issuing(csr, online_url=names.http_base(issuer))
    root = hierarchy.issuing_ca(names.ROOT).certificate
    answer = browser.post(
        PAGE,
        data={
            "csrf_token": _token(browser),
            "reason": "signed at the root ceremony",
            "chain_text": _pem(certificate, root).decode(),
        },
    )
    assert answer.status_code == 405  # the forms post to their own actions
    answer = browser.post(
        f"{PAGE}/install",
        data={
            "csrf_token": _token(browser),
            "reason": "signed at the root ceremony",
            "chain_text": _pem(certificate, root).decode(),
        },
    )
    assert answer.status_code == 303, answer.text
    assert _hierarchy(ca_ready).issuing_ca("organisations").generation == 1
    approval_id = _approval_id(ca_ready, "ca_install_issuing")
    assert _approve(browser, approval_id).status_code == 403
    assert _approve(other_browser, approval_id).status_code == 303
    active = _hierarchy(ca_ready).issuing_ca("organisations")
    assert active.generation == 2 and active.certificate == certificate
    (installed,) = [e for e in audit_events(ca_ready, "ca_lifecycle") if e.outcome == "installed"]
    assert installed.actor_id == person_key(ca_ready, people[1].national_code)


class _DiesBeforeCompleting(IntentRecords):
    """A worker that recorded its intents two hours ago and died before signing them."""

    def record_intents(self, intents: Sequence[Intent], now: datetime) -> None:
        super().record_intents(intents, now - timedelta(hours=2))

    def record_issued(self, *args: object, **kwargs: object) -> None:
        raise SystemExit("killed")


def test_stale_intents_are_failed_only_when_a_second_operator_approves(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    hoviyat = ca_ready.state.hoviyat
    pki = build_pki(
        hoviyat.settings, hoviyat.db, hoviyat.registries, hoviyat.secrets.subject_pepper
    )
    order = pki.prepare(
        Request(
            csr=make_csr()[0],
            profile="person-authentication",
            subject=SubjectReference(national_code=people[3].national_code),
            requested_by="crashed worker",
        ),
        "TRACK-STALE-1",
    )
    with pytest.raises(SystemExit):
        issue_batch(_DiesBeforeCompleting(hoviyat.db, pki.commit), [order])
    (stale,) = pki.records(limit=10, status="pending")

    for minutes in ("0", "x", "99999999"):
        assert _ask(browser, "fail-pending", minutes=minutes, reason="r").status_code == 400
    assert _ask(browser, "fail-pending", minutes="60", reason="worker crashed").status_code == 303
    assert pki.record(stale.serial_hex).status == "pending"  # type: ignore[union-attr]
    approval_id = _approval_id(ca_ready, FAIL_PENDING)
    assert _approve(other_browser, approval_id).status_code == 303
    assert pki.record(stale.serial_hex).status == "failed"  # type: ignore[union-attr]
    page = other_browser.get(f"/console/approvals/{approval_id}")
    assert stale.serial_hex in page.text


def test_publishing_a_crl_now_is_one_operators_act_and_audited(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    answer = _ask(browser, "crl", ca="persons")
    assert answer.status_code == 303, answer.text
    published = audit_events(ca_ready, "crl_published")
    assert published, "the CRL is signed and its publication audited"
    assert {e.actor_id for e in published} == {person_key(ca_ready, people[0].national_code)}
    assert _ask(browser, "crl", ca="root").status_code == 400


def _died_after_approving(app: FastAPI, requester: str, approver: str, claimed: datetime) -> int:
    """An approved rollover whose worker claimed it at ``claimed`` and died: no result."""
    with app.state.hoviyat.db.session() as db:
        approval = store.request_approval(
            db, ROLLOVER, {"ca": "persons", "from_generation": 1, "reason": "r"}, requester, claimed
        )
        assert approval.id is not None
        assert store.decide(db, approval.id, approver, store.APPROVED, claimed)
        assert store.claim_effect(db, approval.id, claimed, claimed)
        return approval.id


def test_an_approval_whose_worker_died_is_carried_out_once_from_its_page(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    first = person_key(ca_ready, people[0].national_code)
    second = person_key(ca_ready, people[1].national_code)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    approval_id = _died_after_approving(ca_ready, first, second, long_ago)
    listed = other_browser.get("/console/approvals?lang=en")
    assert f'href="/console/approvals/{approval_id}?lang=en"' in listed.text
    page = other_browser.get(f"/console/approvals/{approval_id}?lang=en")
    assert page.status_code == 200 and "no result is recorded" in page.text
    assert f"/console/approvals/{approval_id}/apply" in page.text
    token = csrf_token(page.text)
    assert other_browser.post(f"/console/approvals/{approval_id}/apply").status_code == 403
    assert _generations(ca_ready, "persons") == [1]

    resumed = other_browser.post(
        f"/console/approvals/{approval_id}/apply", data={"csrf_token": token}
    )
    assert resumed.status_code == 303, resumed.text
    assert _generations(ca_ready, "persons") == [1, 2]
    replayed = other_browser.post(
        f"/console/approvals/{approval_id}/apply", data={"csrf_token": token}
    )
    assert replayed.status_code == 409
    assert _generations(ca_ready, "persons") == [1, 2]
    outcomes = [e.outcome for e in audit_events(ca_ready, "console_approval")]
    assert outcomes.count("resumed") == 1 and outcomes.count("applied") == 1
    with ca_ready.state.hoviyat.db.session() as db:
        row = store.approval(db, approval_id)
    assert row is not None and row.applied_at is not None
    assert row.result is not None and row.result["generation"] == 2
    listed = other_browser.get("/console/approvals?lang=en")
    assert f'href="/console/approvals/{approval_id}?lang=en"' not in listed.text

    # Claimed a moment ago: its worker may still be at it, so nobody else may be.
    recent = _died_after_approving(ca_ready, first, second, datetime.now(UTC))
    page = other_browser.get(f"/console/approvals/{recent}?lang=en")
    assert f"/console/approvals/{recent}/apply" not in page.text
    early = other_browser.post(f"/console/approvals/{recent}/apply", data={"csrf_token": token})
    assert early.status_code == 409
    assert _generations(ca_ready, "persons") == [1, 2]


def test_an_approved_ceremony_certificate_whose_worker_died_is_issued_once_from_its_page(
    ca_ready: FastAPI, browser: TestClient, other_browser: TestClient, people: list[Person]
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    asked = issue(browser, make_csr()[0], "service-signing", service_name="attestation signer")
    assert asked.status_code == 303, asked.text
    approval_id = _approval_id(ca_ready, "ca_ceremony_certificate")
    # The approval committed; its worker died before the CA signed anything.
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    second = person_key(ca_ready, people[1].national_code)
    with ca_ready.state.hoviyat.db.session() as db:
        assert store.decide(db, approval_id, second, store.APPROVED, long_ago)
        assert store.claim_effect(db, approval_id, long_ago, long_ago)
    assert certificate_count(ca_ready, "service-signing") == 0

    page = browser.get(f"/console/approvals/{approval_id}")  # the requester may finish it
    assert page.status_code == 200
    token = csrf_token(page.text)
    resumed = browser.post(f"/console/approvals/{approval_id}/apply", data={"csrf_token": token})
    assert resumed.status_code == 303, resumed.text
    assert certificate_count(ca_ready, "service-signing") == 1
    replayed = other_browser.post(
        f"/console/approvals/{approval_id}/apply",
        data={"csrf_token": csrf_token(other_browser.get("/console/approvals").text)},
    )
    assert replayed.status_code == 409
    assert certificate_count(ca_ready, "service-signing") == 1
    with ca_ready.state.hoviyat.db.session() as db:
        row = store.approval(db, approval_id)
    assert row is not None and row.result is not None
    shown = browser.get(f"/console/approvals/{approval_id}")
    assert row.result["serial"] in shown.text


def test_two_workers_resuming_one_approval_at_once_get_one_claim(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: the race needs PostgreSQL's row locks")
    db = Database(database_url)
    try:
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        with db.session() as session:
            approval = store.request_approval(session, ROLLOVER, {}, "alice", long_ago)
            approval_id = approval.id
            assert approval_id is not None
            assert store.decide(session, approval_id, "bob", store.APPROVED, long_ago)
        now = datetime.now(UTC)
        won: list[bool] = []
        second = threading.Thread(
            target=lambda: won.append(_claim_in_own_session(db, approval_id, now))
        )
        with db.session() as first:
            won.append(store.claim_effect(first, approval_id, now, now))
            second.start()
            # The second worker's UPDATE now waits on the first one's row lock.
            while second.is_alive() and not _someone_waits_on_a_lock(db):
                threading.Event().wait(0.01)
        second.join()
        assert sorted(won) == [False, True]
    finally:
        db.dispose()


def _claim_in_own_session(db: Database, approval_id: int, now: datetime) -> bool:
    with db.session() as session:
        return store.claim_effect(session, approval_id, now, now)


def _someone_waits_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as connection:
        waiting = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        ).scalar()
    return bool(waiting)


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_lifecycle_and_approval_pages_are_valid_html(
    ca_ready: FastAPI,
    browser: TestClient,
    other_browser: TestClient,
    people: list[Person],
    lang: str,
) -> None:
    _operators(ca_ready, browser, other_browser, people)
    assert _ask(browser, "rollover", ca="persons", reason="ceremony").status_code == 303
    approval_id = _approval_id(ca_ready, ROLLOVER)
    assert _ask(browser, "fail-pending", minutes="30", reason="crash").status_code == 303
    bad = browser.post(
        f"{PAGE}/rollover?lang={lang}",
        data={"csrf_token": _token(browser), "ca": "root", "reason": "x"},
    )
    assert bad.status_code == 400
    pages = [bad.text, browser.get(f"{PAGE}?lang={lang}").text]
    pages.append(browser.get(f"/console/approvals/{approval_id}?lang={lang}").text)  # pending
    assert _approve(other_browser, approval_id).status_code == 303
    pages.append(other_browser.get(f"/console/approvals/{approval_id}?lang={lang}").text)
    health = other_browser.get(f"/console/certs/health?lang={lang}")
    pages.append(health.text)
    for number, body in enumerate(pages):
        assert_valid(body, f"page {number}")
        assert "<script" not in body
        assert f'lang="{lang}"' in body


def assert_valid(text: str, what: str) -> None:
    try:
        html5lib.HTMLParser(strict=True).parse(text)
    except html5lib.html5parser.ParseError as error:
        raise AssertionError(f"{what}: invalid HTML: {error}\n{text}") from None
