"""Certificate login at level high (issue 14): a person certificate of Hoviyat's persons CA.

Everything is real: the CA is made by the hierarchy's own ``init``, certificates
are issued by the registration authority (or signed with the CA's own key where
an attack needs what the RA would never issue), the certificate reaches the
app in the header a trusted proxy sets (``X-Client-Certificate``, nginx's
``$ssl_client_escaped_cert``), revocation goes through the operator API, and
the OCSP answer comes from the app's own responder. The ID token's ``acr`` and
``amr`` are read from what ``/token`` returns.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oidc.login_helpers import SUBSTANTIAL, Forms, follow, submit
from oidc_support import (
    authorization_params,
    exchange,
    log_in,
    pkce_pair,
    query_of,
    register_rp,
    session_cookie,
)
from sqlmodel import col, select

from ca.issuance import Order, issue
from ca.keys import open_keystore
from ca.revocation import RevocationReason
from ca.rfc6960 import ResponseStatus, error_response
from ca.settings import CASettings
from idp.app import create_app
from idp.login import csrf, keys
from idp.pki.hierarchy import Hierarchy
from idp.pki.ocsp_responder import OCSPService
from idp.pki.person_login import PersonCertificateRefused, Refusal, verified_status
from idp.pki.registration import Pki
from idp.pki.registration import Request as CertificateRequest
from idp.pki.revocation import Actor, revoke
from idp.pki.subjects import SubjectReference, person_subject
from idp.settings import Settings
from idp.storage.certificate_store import IntentRecords
from idp.storage.engine import Database
from idp.storage.login import LoginSession
from idp.storage.models import AuditEntry
from idp.tracking import new_tracking_code
from policies.certificate_profiles import load_profiles
from verifiers.registry.base import LegalEntity, Person
from verifiers.registry.synthetic import SyntheticRegistry

HIGH = "http://eidas.europa.eu/LoA/high"
HEADER = "X-Client-Certificate"
NOT_OURS = "not a personal login certificate"


# -- the app, behind a trusted "proxy" (the test client), with its CA --------------------


@pytest.fixture
def hoviyat_settings(
    tmp_path: Path, database_url: str, synthetic_registry_path: Path, server_port: int
) -> Settings:
    # Starlette's TestClient connects as the peer "testclient": it plays nginx here.
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="synthetic",
        registry_path=synthetic_registry_path,
        issuer=f"http://127.0.0.1:{server_port}",
        trusted_proxies=["testclient"],
    )


@pytest.fixture
def hierarchy(hoviyat_settings: Settings, init_report: dict[str, Any]) -> Iterator[Hierarchy]:
    """The CA of the app's data directory, as 'hoviyat ca init' makes it (file keys)."""
    ca_dir = hoviyat_settings.data_dir / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    passphrase = ca_dir / "passphrase"
    passphrase.write_text("test passphrase\n")
    os.chmod(passphrase, 0o600)
    db = Database(hoviyat_settings.resolved_database_url)
    store = open_keystore(CASettings(key_backend="file"), hoviyat_settings.data_dir)
    made = Hierarchy(db, store, hoviyat_settings.issuer)
    made.init()
    yield made
    db.dispose()


@pytest.fixture
def pki(hierarchy: Hierarchy, hoviyat_app: FastAPI) -> Pki:
    hoviyat = hoviyat_app.state.hoviyat
    return Pki.create(hierarchy.db, hierarchy, hoviyat.registries, hoviyat.secrets.subject_pepper)


@pytest.fixture
def browser(hierarchy: Hierarchy, hoviyat_app: FastAPI) -> Iterator[TestClient]:
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer, follow_redirects=False) as client:
        yield client


# -- certificates -------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def person_certificate(pki: Pki, national_code: str, profile: str = "person-authentication"):
    """What the registration authority issues a citizen for their card."""
    request = CertificateRequest(
        csr=_csr(_key()),
        profile=profile,
        subject=SubjectReference(national_code=national_code),
        requested_by="test-operator",
    )
    return pki.request_certificate(request, lint=False).certificate


def recorded_certificate(hierarchy: Hierarchy, person: Person) -> x509.Certificate:
    """Issued and recorded by the CA for ``person`` without the registry's say (the RA
    refuses unknown and deceased people): the registry has changed since issuance."""
    order = Order(
        profile=load_profiles()["person-authentication"],
        issuing_ca=hierarchy.issuing_ca("persons"),
        public_key=_key().public_key(),
        subject=person_subject(person),
        requested_by="test-operator",
        tracking_code=new_tracking_code(),
    )
    return issue(IntentRecords(hierarchy.db), order, lint=False).certificate


def resigned(
    original: x509.Certificate,
    signing_key: Any,
    issuer: x509.Name,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """``original``'s subject, key and extensions, signed by ``signing_key`` as ``issuer``."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(issuer)
        .public_key(original.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or original.not_valid_before_utc)
        .not_valid_after(not_after or original.not_valid_after_utc)
    )
    for extension in original.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(signing_key, hashes.SHA256())


def forwarded(certificate: x509.Certificate) -> dict[str, str]:
    """The header nginx sets: ``$ssl_client_escaped_cert``, URL-escaped PEM."""
    return {HEADER: quote(certificate.public_bytes(Encoding.PEM).decode(), safe="")}


# -- the browser --------------------------------------------------------------------------


def _claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def form_fields(app: FastAPI, browser: TestClient, interaction: str) -> dict[str, str]:
    """The hidden fields every login form carries: what the "high" page's button posts."""
    hoviyat = app.state.hoviyat
    name = csrf.cookie_name(hoviyat.settings)
    value = browser.cookies.get(name)
    if value is None:
        value = secrets.token_urlsafe(32)
        browser.cookies.set(name, value)
    token = csrf._sign(keys.derived_key(hoviyat.secrets, keys.CSRF), value)
    return {"interaction": interaction, "lang": "en", "csrf_token": token}


def start_high(browser: TestClient, rp: Any, **extra: str) -> tuple[dict[str, str], str, str]:
    """/authorize asking for level high; returns its parameters, verifier and interaction."""
    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, acr_values=HIGH, **extra)
    answer = browser.get("/authorize", params=params)
    if answer.status_code == 200:
        interaction = Forms(answer.text).form("/login/identify")["interaction"]
    else:
        assert answer.status_code == 302, answer.text
        interaction = query_of(answer.headers["location"])["interaction"]
    return params, verifier, interaction


def present(
    app: FastAPI, browser: TestClient, interaction: str, certificate: x509.Certificate | None
) -> Any:
    headers = forwarded(certificate) if certificate is not None else {}
    return browser.post(
        "/login/certificate", data=form_fields(app, browser, interaction), headers=headers
    )


def back_to_client(browser: TestClient, response: Any, state: str) -> str:
    """Follow the login to the client (allowing consent on the way); the code it gets."""
    while response.headers["location"].startswith("/"):
        if response.status_code == 303:
            response = follow(browser, response)
        else:
            response = browser.get(response.headers["location"])
        if response.status_code == 200 and "/login/consent" in response.text:
            response = submit(browser, response, "/login/consent", decision="allow")
    answer = query_of(response.headers["location"])
    assert answer.get("state") == state, answer
    return answer["code"]


def audit_entries(app: FastAPI, operation: str = "certificate") -> list[AuditEntry]:
    with app.state.hoviyat.db.session() as session:
        query = select(AuditEntry).where(AuditEntry.operation == operation)
        return list(session.exec(query.order_by(col(AuditEntry.id))))


def assert_refused(app: FastAPI, response: Any, status: int, words: str, reason: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.text
    name = app.state.hoviyat.settings
    assert response.cookies.get("hoviyat_session") is None, name
    entries = audit_entries(app)
    assert entries and entries[-1].outcome == "refused"
    assert entries[-1].detail["reason"] == reason


# -- the paths that work ------------------------------------------------------------------


def test_certificate_login_reaches_high_in_the_id_token(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, citizen: Person
) -> None:
    rp = register_rp(hoviyat_app, "rp-card")
    certificate = person_certificate(pki, citizen.national_code)
    params, verifier, interaction = start_high(browser, rp)
    logged_in = present(hoviyat_app, browser, interaction, certificate)
    assert logged_in.status_code == 303, logged_in.text
    code = back_to_client(browser, logged_in, params["state"])
    tokens = exchange(browser, rp, code, verifier)
    assert tokens.status_code == 200, tokens.text
    claims = _claims(tokens.json()["id_token"])
    assert claims["acr"] == HIGH
    assert set(claims["amr"]) == {"sc", "hwk"}
    (entry,) = [e for e in audit_entries(hoviyat_app) if e.outcome == "success"]
    assert entry.detail["certificate"] == f"{certificate.serial_number:x}"
    # The national code is in the audit log only as the subject hash.
    assert citizen.national_code not in json.dumps(entry.detail)
    assert entry.subject_hash


def test_step_up_from_substantial_to_high_keeps_the_person(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, citizen: Person
) -> None:
    rp = register_rp(hoviyat_app, "rp-step-up")
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code, SUBSTANTIAL)
    for name, value in session_cookie(hoviyat_app, login).items():
        browser.cookies.set(name, value)
    params, verifier, interaction = start_high(browser, rp)
    # The session is substantial: the login asks for the high step only, whose page
    # offers the certificate (its button posts the hidden fields of every form).
    page = browser.get("/login", params={"interaction": interaction})
    assert page.status_code == 200, page.text
    assert "/login/identify" not in page.text and "/login/mobile" not in page.text
    certificate = person_certificate(pki, citizen.national_code)
    data = Forms(page.text).form("/login/certificate")
    stepped = browser.post("/login/certificate", data=data, headers=forwarded(certificate))
    assert stepped.status_code == 303, stepped.text
    # Step-up rotates the session's cookie token: the old one opens nothing now.
    assert stepped.cookies.get("hoviyat_session") not in (None, login.cookie_token)
    code = back_to_client(browser, stepped, params["state"])
    claims = _claims(exchange(browser, rp, code, verifier).json()["id_token"])
    assert claims["acr"] == HIGH
    assert {"sc", "hwk"} <= set(claims["amr"])
    assert {"sms", "otp"} <= set(claims["amr"])  # the earlier methods still happened
    with hoviyat_app.state.hoviyat.db.session() as session:
        row = session.get(LoginSession, login.session_id)
        assert row is not None and row.acr == HIGH and row.national_code == citizen.national_code


# -- attacks ------------------------------------------------------------------------------


def test_attack_revoked_certificate_is_refused(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, citizen: Person, admin_token: str
) -> None:
    rp = register_rp(hoviyat_app, "rp-revoked")
    certificate = person_certificate(pki, citizen.national_code)
    _params, _verifier, interaction = start_high(browser, rp)
    assert present(hoviyat_app, browser, interaction, certificate).status_code == 303
    # The card is reported stolen: revoked through the operator API, then used at once.
    revoked = browser.post(
        f"/v1/certificates/{certificate.serial_number:x}/revoke",
        json={"reason": "keyCompromise"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert revoked.status_code == 200, revoked.text
    browser.cookies.clear()
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, certificate)
    assert_refused(hoviyat_app, refused, 403, "revoked", "revoked")


def test_attack_certificate_from_another_ca(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, hierarchy: Hierarchy, citizen: Person
) -> None:
    """A self-made CA with the persons CA's very name, and its key identifier claimed."""
    rp = register_rp(hoviyat_app, "rp-forged")
    genuine = person_certificate(pki, citizen.national_code)
    persons_ca = hierarchy.issuing_ca("persons").certificate
    forged = resigned(genuine, _key(), persons_ca.subject)
    assert forged.issuer == genuine.issuer
    assert forged.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier
    ) == genuine.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, forged)
    assert_refused(
        hoviyat_app, refused, 403, "not a personal login certificate", "not-issued-by-persons-ca"
    )


def test_attack_expired_certificate(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, hierarchy: Hierarchy, citizen: Person
) -> None:
    """Signed by the real persons CA key (so only its dates are wrong)."""
    rp = register_rp(hoviyat_app, "rp-expired")
    genuine = person_certificate(pki, citizen.national_code)
    persons = hierarchy.issuing_ca("persons")
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(genuine.subject)
        .issuer_name(persons.certificate.subject)
        .public_key(genuine.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=800))
        .not_valid_after(now - timedelta(days=70))
    )
    for extension in genuine.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    expired = persons.sign_certificate(builder)
    expired.verify_directly_issued_by(persons.certificate)
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, expired)
    assert_refused(hoviyat_app, refused, 403, "not valid now", "outside-validity")


def test_attack_organisation_certificate_used_as_person(
    hoviyat_app: FastAPI,
    browser: TestClient,
    pki: Pki,
    representative: tuple[Person, LegalEntity],
) -> None:
    """An agency's back-office client certificate: clientAuth too, but the entity's."""
    rp = register_rp(hoviyat_app, "rp-organisation")
    _person, entity = representative
    request = CertificateRequest(
        csr=_csr(_key()),
        profile="backoffice-client",
        subject=SubjectReference(national_id=entity.national_id, service_name="payroll"),
        requested_by="test-operator",
    )
    organisation = pki.request_certificate(request, lint=False).certificate
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, organisation)
    assert_refused(
        hoviyat_app, refused, 403, "not a personal login certificate", "not-issued-by-persons-ca"
    )


def test_attack_person_signing_certificate_used_for_login(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, citizen: Person
) -> None:
    """The same CA and person, but the document-signing profile (no clientAuth)."""
    rp = register_rp(hoviyat_app, "rp-signing")
    signing = person_certificate(pki, citizen.national_code, profile="person-signing")
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, signing)
    assert_refused(
        hoviyat_app, refused, 403, "not a personal login certificate", "not-person-authentication"
    )


def test_attack_header_from_untrusted_peer_is_ignored(
    hoviyat_settings: Settings, hierarchy: Hierarchy, pki: Pki, citizen: Person
) -> None:
    """Someone reaching the app port directly sends the header nginx would have set."""
    direct = hoviyat_settings.model_copy(update={"trusted_proxies": ["192.0.2.7"]})
    app = create_app(direct)
    try:
        rp = register_rp(app, "rp-direct")
        certificate = person_certificate(pki, citizen.national_code)
        with TestClient(app, base_url=direct.issuer, follow_redirects=False) as browser:
            _params, _verifier, interaction = start_high(browser, rp)
            refused = present(app, browser, interaction, certificate)
            assert_refused(app, refused, 400, "sent no certificate", "missing")
    finally:
        app.state.hoviyat.close()


def test_attack_ocsp_unavailable_fails_closed(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, hoviyat_settings: Settings, citizen: Person
) -> None:
    """The CA's key store cannot be opened (its passphrase is gone): no responder can
    sign, so no status is known, so no login, though the certificate is genuine."""
    rp = register_rp(hoviyat_app, "rp-no-ocsp")
    certificate = person_certificate(pki, citizen.national_code)
    (hoviyat_settings.data_dir / "ca" / "passphrase").unlink()
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, certificate)
    assert_refused(hoviyat_app, refused, 503, "cannot be checked", "ocsp-unavailable")


def _unknown_national_code(registry: SyntheticRegistry) -> str:
    while True:
        digits = [secrets.randbelow(10) for _ in range(9)]
        remainder = sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        check = remainder if remainder < 2 else 11 - remainder
        code = "".join(map(str, digits)) + str(check)
        if len(set(code)) > 1 and registry.person(code) is None:
            return code


def test_attack_national_code_not_in_registry(
    hoviyat_app: FastAPI,
    browser: TestClient,
    hierarchy: Hierarchy,
    registry: SyntheticRegistry,
    citizen: Person,
) -> None:
    rp = register_rp(hoviyat_app, "rp-unknown")
    # Issued when the registry knew them; the registry no longer has this code.
    stranger = replace(citizen, national_code=_unknown_national_code(registry))
    certificate = recorded_certificate(hierarchy, stranger)
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, certificate)
    assert_refused(hoviyat_app, refused, 403, "civil registry has no person", "not-in-registry")


def test_attack_deceased_persons_certificate_is_refused(
    hoviyat_app: FastAPI, browser: TestClient, hierarchy: Hierarchy, registry: SyntheticRegistry
) -> None:
    rp = register_rp(hoviyat_app, "rp-deceased")
    dead = next(p for p, _mobiles in registry.iter_persons(5000) if not p.alive)
    certificate = recorded_certificate(hierarchy, dead)
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, certificate)
    assert_refused(hoviyat_app, refused, 403, "deceased", "deceased")


def test_attack_certificate_of_another_person_during_step_up(
    hoviyat_app: FastAPI,
    browser: TestClient,
    pki: Pki,
    citizen: Person,
    representative: tuple[Person, LegalEntity],
) -> None:
    """Someone else's card in a logged-in browser raises no one's session."""
    other, _entity = representative
    assert other.national_code != citizen.national_code
    rp = register_rp(hoviyat_app, "rp-other")
    login = log_in(hoviyat_app.state.hoviyat.db, citizen.national_code, SUBSTANTIAL)
    for name, value in session_cookie(hoviyat_app, login).items():
        browser.cookies.set(name, value)
    _params, _verifier, interaction = start_high(browser, rp)
    certificate = person_certificate(pki, other.national_code)
    refused = present(hoviyat_app, browser, interaction, certificate)
    assert_refused(hoviyat_app, refused, 403, "belongs to someone other", "other-person")
    # The victim's session is untouched: still substantial, same token.
    with hoviyat_app.state.hoviyat.db.session() as session:
        row = session.get(LoginSession, login.session_id)
        assert row is not None and row.acr == SUBSTANTIAL


def test_attack_no_certificate_presented(
    hoviyat_app: FastAPI, browser: TestClient, hierarchy: Hierarchy
) -> None:
    rp = register_rp(hoviyat_app, "rp-none")
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, None)
    assert_refused(hoviyat_app, refused, 400, "sent no certificate", "missing")


def test_attack_garbage_in_the_header_is_a_400_not_a_500(
    hoviyat_app: FastAPI, browser: TestClient, hierarchy: Hierarchy
) -> None:
    rp = register_rp(hoviyat_app, "rp-garbage")
    _params, _verifier, interaction = start_high(browser, rp)
    for value in ("-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----", "x" * 40):
        refused = browser.post(
            "/login/certificate",
            data=form_fields(hoviyat_app, browser, interaction),
            headers={HEADER: value},
        )
        assert_refused(hoviyat_app, refused, 400, "could not be read", "malformed")


def test_attack_certificate_post_without_csrf_token_changes_nothing(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, citizen: Person
) -> None:
    rp = register_rp(hoviyat_app, "rp-csrf")
    certificate = person_certificate(pki, citizen.national_code)
    _params, _verifier, interaction = start_high(browser, rp)
    fields = form_fields(hoviyat_app, browser, interaction)
    fields["csrf_token"] = "0" * 64
    refused = browser.post("/login/certificate", data=fields, headers=forwarded(certificate))
    assert refused.status_code == 403
    assert refused.cookies.get("hoviyat_session") is None
    assert audit_entries(hoviyat_app) == []


def test_attack_ocsp_responder_certificate_presented_as_a_persons(
    hoviyat_app: FastAPI, browser: TestClient, hierarchy: Hierarchy
) -> None:
    """Signed by the persons CA itself, but for signing OCSP answers, not for a person."""
    rp = register_rp(hoviyat_app, "rp-responder")
    responder = OCSPService(hierarchy.db, hierarchy).ensure_responder(
        hierarchy.issuing_ca("persons")
    )
    _params, _verifier, interaction = start_high(browser, rp)
    refused = present(hoviyat_app, browser, interaction, responder.responder.certificate)
    assert_refused(hoviyat_app, refused, 403, NOT_OURS, "not-person-authentication")


# -- the OCSP answer is proven before it is believed (RFC 6960) ---------------------------


def _asked(certificate: x509.Certificate, issuer: x509.Certificate) -> tuple[Any, bytes]:
    nonce = secrets.token_bytes(16)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
    )
    return request, nonce


def _answer(service: OCSPService, request: Any) -> bytes:
    return service.respond(request.public_bytes(Encoding.DER)).der


def test_attack_replayed_good_answer_after_revocation(
    hierarchy: Hierarchy, pki: Pki, citizen: Person
) -> None:
    """A "good" answer saved before the revocation does not answer a new request."""
    service = OCSPService(hierarchy.db, hierarchy)
    persons = hierarchy.issuing_ca("persons").certificate
    certificate = person_certificate(pki, citizen.national_code)
    old_request, old_nonce = _asked(certificate, persons)
    saved = _answer(service, old_request)
    now = datetime.now(UTC)
    good = verified_status(saved, old_request, old_nonce, persons, now)
    assert good is ocsp.OCSPCertStatus.GOOD
    revoke(hierarchy.db, certificate.serial_number, RevocationReason.keyCompromise,
           Actor("operator", "test"))  # fmt: skip
    request, nonce = _asked(certificate, persons)
    with pytest.raises(PersonCertificateRefused, match="nonce") as refused:
        verified_status(saved, request, nonce, persons, now)
    assert refused.value.reason is Refusal.OCSP_UNAVAILABLE
    fresh = verified_status(_answer(service, request), request, nonce, persons, now)
    assert fresh is ocsp.OCSPCertStatus.REVOKED


def test_attack_tampered_or_stranger_signed_ocsp_answer(
    hierarchy: Hierarchy, pki: Pki, citizen: Person
) -> None:
    service = OCSPService(hierarchy.db, hierarchy)
    persons = hierarchy.issuing_ca("persons").certificate
    certificate = person_certificate(pki, citizen.national_code)
    request, nonce = _asked(certificate, persons)
    genuine = _answer(service, request)
    now = datetime.now(UTC)
    assert verified_status(genuine, request, nonce, persons, now) is ocsp.OCSPCertStatus.GOOD
    # One bit of the signature flipped (the signature sits before the certs).
    parsed = ocsp.load_der_ocsp_response(genuine)
    at = genuine.index(parsed.signature) + len(parsed.signature) // 2
    flipped = genuine[:at] + bytes([genuine[at] ^ 1]) + genuine[at + 1 :]
    with pytest.raises(PersonCertificateRefused, match="signature"):
        verified_status(flipped, request, nonce, persons, now)
    # The same answer, judged for another CA (the organisations CA), is not believed.
    organisations = hierarchy.issuing_ca("organisations").certificate
    with pytest.raises(PersonCertificateRefused, match="not from the CA"):
        verified_status(genuine, request, nonce, organisations, now)
    # An answer dated for later than its nextUpdate is stale.
    later = now + timedelta(days=2)
    with pytest.raises(PersonCertificateRefused, match="out of date"):
        verified_status(genuine, request, nonce, persons, later)
    # An error status (what a responder says when it cannot sign) is no answer.
    with pytest.raises(PersonCertificateRefused, match="answered TRY_LATER"):
        verified_status(error_response(ResponseStatus.try_later), request, nonce, persons, now)


def _stranger_with_broken_extension(payload: bytes) -> str:
    """A self-signed certificate whose key-usage extension holds ``payload`` (often not DER)."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.SERIAL_NUMBER, "PNOIR-0499370899")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.15"), payload), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return quote(certificate.public_bytes(Encoding.PEM).decode(), safe="")


HEADER_VALUES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300),
    st.binary(max_size=200).map(
        lambda der: quote(
            "-----BEGIN CERTIFICATE-----\n"
            + base64.b64encode(der).decode()
            + "\n-----END CERTIFICATE-----",
            safe="",
        )
    ),
    st.binary(min_size=0, max_size=8).map(_stranger_with_broken_extension),
)


def test_attack_fuzzed_certificate_header_never_causes_a_server_error(
    hoviyat_app: FastAPI, browser: TestClient, hierarchy: Hierarchy
) -> None:
    rp = register_rp(hoviyat_app, "rp-fuzz")
    _params, _verifier, interaction = start_high(browser, rp)
    fields = form_fields(hoviyat_app, browser, interaction)

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(HEADER_VALUES)
    def check(value: str) -> None:
        answer = browser.post("/login/certificate", data=fields, headers={HEADER: value})
        assert answer.status_code in (400, 403), (value, answer.status_code, answer.text)
        assert answer.cookies.get("hoviyat_session") is None

    check()


def test_cards_of_both_persons_ca_generations_log_in_after_a_rollover(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, hierarchy: Hierarchy, citizen: Person
) -> None:
    """Cards are valid for two years; the CA's key is rolled over meanwhile."""
    rp = register_rp(hoviyat_app, "rp-rollover")
    old_card = person_certificate(pki, citizen.national_code)
    hierarchy.rollover("persons")
    hierarchy.forget()
    new_card = person_certificate(pki, citizen.national_code)
    old_aki = old_card.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    new_aki = new_card.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert old_aki.key_identifier != new_aki.key_identifier
    for card in (old_card, new_card):
        browser.cookies.clear()
        _params, _verifier, interaction = start_high(browser, rp)
        answer = present(hoviyat_app, browser, interaction, card)
        assert answer.status_code == 303, answer.text
    successes = [e for e in audit_entries(hoviyat_app) if e.outcome == "success"]
    assert [e.detail["certificate"] for e in successes] == [
        f"{old_card.serial_number:x}",
        f"{new_card.serial_number:x}",
    ]


def test_certificate_post_for_a_login_that_does_not_ask_high_does_nothing(
    hoviyat_app: FastAPI, browser: TestClient, pki: Pki, citizen: Person
) -> None:
    """Only a login at level high offers the certificate; posting it elsewhere starts
    no session and is sent back to the step the login is at."""
    rp = register_rp(hoviyat_app, "rp-low")
    certificate = person_certificate(pki, citizen.national_code)
    _verifier, challenge = pkce_pair()
    page = browser.get("/authorize", params=authorization_params(rp, challenge))
    interaction = Forms(page.text).form("/login/identify")["interaction"]
    answer = present(hoviyat_app, browser, interaction, certificate)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/login?interaction={interaction}")
    assert answer.cookies.get("hoviyat_session") is None
    assert audit_entries(hoviyat_app) == []
