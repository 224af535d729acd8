"""Passkeys (WebAuthn) and level high, over HTTP through the real login pages.

The authenticator is written here with ``cryptography``: an ES256 key, "none"
attestation, authenticator data built byte by byte as WebAuthn §6.1 lays it
out, client data as §5.8.1. It can be made to lie (another origin or RP ID, no
user verification, an old counter), which is how the attacks are played.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from oidc.login_helpers import (
    SUBSTANTIAL,
    Forms,
    app_with_login,
    code_in,
    follow,
    last_text,
    living_with_mobile,
    make_client,
    new_interaction,
    submit,
)
from oidc.test_html_validity import assert_valid_html
from oidc_support import authorization_params, exchange, pkce_pair, query_of, register_rp
from sqlmodel import col, select
from webauthn.helpers import encode_cbor

from idp.app import create_app
from idp.login.config import LoginSettings
from idp.settings import Settings
from idp.storage.models import AuditEntry
from idp.storage.passkeys import Passkey
from policies import assurance

HIGH = assurance.HIGH
PASSKEY_FORM = "/login/passkeys/authenticate"
UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """A platform authenticator with one credential, honest unless told otherwise."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.rp_id = origin.split("://", 1)[1].split(":")[0]
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0
        self.aaguid = bytes(16)  # zeros, as "none" attestation conveys (§6.5.4)
        # (certificate chain, attestation key) for "packed" attestation (§8.2), else "none"
        self.attestation: tuple[list[bytes], ec.EllipticCurvePrivateKey] | None = None

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        # RFC 9053 §7.1.1: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
        return encode_cbor(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin}
        ).encode()

    def _auth_data(self, rp_id: str | None, flags: int, attested: bytes = b"") -> bytes:
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        return rp_hash + bytes([flags]) + struct.pack(">I", self.sign_count) + attested

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        flags: int = UP | UV | AT,
    ) -> str:
        attested = (
            self.aaguid
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_key()
        )
        auth_data = self._auth_data(rp_id, flags, attested)
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        fmt, statement = "none", {}
        if self.attestation is not None:
            chain, attestation_key = self.attestation
            signed = auth_data + hashlib.sha256(client_data).digest()
            signature = attestation_key.sign(signed, ec.ECDSA(hashes.SHA256()))
            fmt, statement = "packed", {"alg": -7, "sig": signature, "x5c": chain}
        attestation = encode_cbor({"fmt": fmt, "attStmt": statement, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
            }
        )

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        flags: int = UP | UV,
        count: int | None = None,
    ) -> str:
        self.sign_count = self.sign_count + 1 if count is None else count
        auth_data = self._auth_data(rp_id, flags)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": None,
                },
                "clientExtensionResults": {},
            }
        )


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


def _fresh_browser(app: FastAPI) -> TestClient:
    return TestClient(app, base_url=app.state.hoviyat.settings.issuer, follow_redirects=False)


def _identify(browser: TestClient, interaction: str, person: dict[str, Any]) -> Response:
    page = browser.get(f"/login?interaction={interaction}")
    answer = submit(browser, page, "/login/identify", national_code=person["national_code"],
                    birth_date=person["birth_date"])  # fmt: skip
    assert answer.status_code == 303, answer.text
    return browser.get(answer.headers["location"])


def _confirm_mobile(
    browser: TestClient, app: FastAPI, page: Response, person: dict[str, Any]
) -> Response:
    sent = submit(browser, page, "/login/mobile", mobile=person["mobiles"][0])
    otp_page = follow(browser, sent)
    accepted = submit(browser, otp_page, "/login/otp", otp=code_in(last_text(app).body))
    assert accepted.status_code == 303, accepted.text
    return follow(browser, accepted)


def _high_page(browser: TestClient, app: FastAPI, person: dict[str, Any]) -> Response:
    """identify → mobile → code, in a login that needs high: ends on the high page."""
    interaction = new_interaction(app, make_client(app), acr_values=[HIGH])
    mobile_page = _identify(browser, interaction, person)
    assert 'action="/login/mobile"' in mobile_page.text
    page = _confirm_mobile(browser, app, mobile_page, person)
    assert page.status_code == 200 and PASSKEY_FORM in page.text, page.text
    return page


def _post(browser: TestClient, page: Response, path: str, **extra: str) -> Response:
    fields = Forms(page.text).form(PASSKEY_FORM)
    fields.update(extra)
    return browser.post(path, data=fields)


def _register(browser: TestClient, page: Response, key: SoftAuthenticator, **lie: Any) -> Response:
    options = _post(browser, page, "/login/passkeys/register/options")
    assert options.status_code == 200, options.text
    body = options.json()
    assert body["authenticatorSelection"]["userVerification"] == "required"
    assert body["rp"]["id"] == key.rp_id
    return _post(browser, page, "/login/passkeys/register", credential=key.create(body, **lie))


def _sign_in(browser: TestClient, page: Response, key: SoftAuthenticator, **lie: Any) -> Response:
    options = _post(browser, page, "/login/passkeys/authenticate/options")
    assert options.status_code == 200, options.text
    assert options.json()["userVerification"] == "required"
    return _post(browser, page, PASSKEY_FORM, credential=key.get(options.json(), **lie))


def _session_row(app: FastAPI, browser: TestClient) -> Any:
    from idp.login.sessions import token_digest
    from idp.storage.login import LoginSession

    token = browser.cookies.get("hoviyat_session")
    with app.state.hoviyat.db.session() as db:
        return db.exec(
            select(LoginSession).where(LoginSession.token_digest == token_digest(token or ""))
        ).first()


def _audit_outcomes(app: FastAPI, event_type: str) -> list[str]:
    with app.state.hoviyat.db.session() as db:
        rows = db.exec(
            select(AuditEntry)
            .where(col(AuditEntry.event_type) == event_type)
            .order_by(col(AuditEntry.id))
        ).all()
        return [row.outcome for row in rows]


def test_register_then_sign_in_reaches_high_and_the_id_token_says_so(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """Step-up low → substantial → high through /authorize and /token: acr is the level
    reached, amr names the passkey (hwk, user) beside what came before."""
    rp = register_rp(hoviyat_app, "rp-high")
    person = living_with_mobile(synthetic_registry_path)
    verifier, challenge = pkce_pair()
    params = authorization_params(rp, challenge, acr_values=HIGH)
    first = browser.get("/authorize", params=params)
    interaction = Forms(first.text).form("/login/identify")["interaction"]
    mobile_page = _identify(browser, interaction, person)
    page = _confirm_mobile(browser, hoviyat_app, mobile_page, person)
    # The high page: a passkey (registered first: this person has none) or a certificate.
    assert 'data-ceremony="register"' in page.text
    assert 'action="/login/certificate"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # the script is a file, never inline
    assert _session_row(hoviyat_app, browser).acr == SUBSTANTIAL

    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    registered = _register(browser, page, key)
    assert registered.status_code == 200, registered.text
    assert _session_row(hoviyat_app, browser).acr == SUBSTANTIAL  # registering is not signing in
    cookie_before = browser.cookies.get("hoviyat_session")
    signed_in = _sign_in(browser, page, key)
    assert signed_in.status_code == 200, signed_in.text
    assert browser.cookies.get("hoviyat_session") != cookie_before  # rotated on step-up
    session = _session_row(hoviyat_app, browser)
    assert session.acr == HIGH
    assert {"hwk", "user"} <= set(session.amr)

    consent_page = browser.get(signed_in.json()["next"])
    answer = submit(browser, consent_page, "/login/consent", decision="allow")
    while answer.headers["location"].startswith("/"):
        answer = browser.get(answer.headers["location"])
    code = query_of(answer.headers["location"])["code"]
    tokens = exchange(browser, rp, code, verifier)
    assert tokens.status_code == 200, tokens.text
    payload = tokens.json()["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["acr"] == HIGH
    assert {"hwk", "user"} <= set(claims["amr"])
    assert _audit_outcomes(hoviyat_app, "passkey") == ["registered"]


def test_a_new_passkey_is_told_to_the_persons_mobile_after_it_is_stored(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """Binding at substantial means one stolen SMS code binds a thief's passkey: the
    person hears of every new passkey on the mobile they proved, never of a refused one."""
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    code_text = last_text(hoviyat_app)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    refused = _register(browser, page, key, flags=UP | AT)  # no user verification
    assert refused.status_code == 400, refused.text
    assert last_text(hoviyat_app).id == code_text.id  # nothing sent for a refusal
    assert _register(browser, page, key).status_code == 200
    notice = last_text(hoviyat_app)
    assert notice.id != code_text.id
    assert notice.mobile == person["mobiles"][0]
    assert "passkey" in notice.body
    assert code_in(code_text.body) not in notice.body


def test_step_up_from_substantial_to_high_asks_only_for_the_passkey(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    assert _register(browser, _high_page(browser, hoviyat_app, person), key).status_code == 200
    # A later login at substantial, then one at high: no identify, no mobile, the passkey only.
    later = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[SUBSTANTIAL])
    assert "/login/consent" in browser.get(f"/login?interaction={later}").text
    high = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[HIGH])
    page = browser.get(f"/login?interaction={high}")
    assert 'data-ceremony="authenticate"' in page.text
    assert 'data-ceremony="register"' in page.text  # another device may still be bound
    assert "/login/identify" not in page.text and "/login/mobile" not in page.text
    assert _sign_in(browser, page, key).status_code == 200
    assert _session_row(hoviyat_app, browser).acr == HIGH
    assert "/login/consent" in browser.get(f"/login?interaction={high}").text


def test_attack_registration_without_substantial_session(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """A passkey bound to a session at low would make knowledge of a national code and
    birth date worth level high: only a session at substantial may register one."""
    person = living_with_mobile(synthetic_registry_path)
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[HIGH])
    mobile_page = _identify(browser, interaction, person)  # a session at low
    fields = Forms(mobile_page.text).form("/login/mobile")
    refused = browser.post("/login/passkeys/register/options", data=fields)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/substantial-required")
    # The page's register answer, replayed from a session at low, is refused the same way.
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    forged = key.create({"challenge": b64url(secrets.token_bytes(32))})
    answer = browser.post("/login/passkeys/register", data={**fields, "credential": forged})
    assert answer.status_code == 403
    stranger = _fresh_browser(hoviyat_app)
    stranger.get(f"/login?interaction={interaction}")  # a CSRF cookie, no session
    nobody = stranger.post("/login/passkeys/register/options", data=fields)
    assert nobody.status_code in (401, 403)
    with hoviyat_app.state.hoviyat.db.session() as db:
        assert db.exec(select(Passkey)).all() == []


def test_attack_replayed_challenge(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    options = _post(browser, page, "/login/passkeys/register/options").json()
    made = key.create(options)
    assert _post(browser, page, "/login/passkeys/register", credential=made).status_code == 200
    again = _post(browser, page, "/login/passkeys/register", credential=made)
    assert again.status_code == 400

    options = _post(browser, page, "/login/passkeys/authenticate/options").json()
    signed = key.get(options)
    assert _post(browser, page, PASSKEY_FORM, credential=signed).status_code == 200
    replayed = _post(browser, page, PASSKEY_FORM, credential=signed)
    assert replayed.status_code == 400
    assert "challenge_unknown" in replayed.json()["detail"]


def test_attack_challenge_of_an_earlier_ceremony(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """Asking new options withdraws the earlier challenge: one ceremony at a time."""
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    assert _register(browser, page, key).status_code == 200
    old = _post(browser, page, "/login/passkeys/authenticate/options").json()
    _post(browser, page, "/login/passkeys/authenticate/options")
    answer = _post(browser, page, PASSKEY_FORM, credential=key.get(old))
    assert answer.status_code == 400
    assert _session_row(hoviyat_app, browser).acr == SUBSTANTIAL


@pytest.mark.parametrize(
    "lie",
    [
        {"origin": "https://hoviyat-login.example"},
        {"rp_id": "hoviyat-login.example"},
    ],
    ids=["origin", "rp_id"],
)
def test_attack_assertion_for_another_origin_or_rp_id(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path, lie: dict[str, str]
) -> None:
    """A phishing site relays our challenge: the browser signs its own origin and RP ID."""
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    refused_registration = _register(browser, page, key, **lie)
    assert refused_registration.status_code == 400
    assert _register(browser, page, key).status_code == 200
    answer = _sign_in(browser, page, key, **lie)
    assert answer.status_code == 400
    assert _session_row(hoviyat_app, browser).acr == SUBSTANTIAL


def test_attack_credential_of_another_person(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """Mallory holds Alice's authenticator answer for her own session: a valid signature
    by a registered passkey, but not one of Mallory's."""
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    alice, mallory = living_with_mobile(synthetic_registry_path), None
    alice_key = SoftAuthenticator(issuer)
    assert _register(browser, _high_page(browser, hoviyat_app, alice), alice_key).status_code == 200
    mallory = living_with_mobile(synthetic_registry_path, skip=1)
    assert mallory["national_code"] != alice["national_code"]
    other = _fresh_browser(hoviyat_app)
    page = _high_page(other, hoviyat_app, mallory)
    assert _register(other, page, SoftAuthenticator(issuer)).status_code == 200
    answer = _sign_in(other, page, alice_key)
    assert answer.status_code == 400
    assert "not_yours" in answer.json()["detail"]
    assert _session_row(hoviyat_app, other).acr == SUBSTANTIAL
    # Nor can Mallory register Alice's credential as hers.
    again = _register(other, page, alice_key)
    assert again.status_code == 409


def test_attack_sign_count_regression(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """A cloned authenticator signs with the counter it was copied at (WebAuthn §6.1.1)."""
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    assert _register(browser, page, key).status_code == 200
    assert _sign_in(browser, page, key, count=7).status_code == 200
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[HIGH])
    other = _fresh_browser(hoviyat_app)
    page = _confirm_mobile(other, hoviyat_app, _identify(other, interaction, person), person)
    cloned = _sign_in(other, page, key, count=7)
    assert cloned.status_code == 403
    assert "sign_count_regressed" in cloned.json()["detail"]
    assert _session_row(hoviyat_app, other).acr == SUBSTANTIAL
    with hoviyat_app.state.hoviyat.db.session() as db:
        entries = db.exec(
            select(AuditEntry).where(col(AuditEntry.outcome) == "sign_count_regressed")
        ).all()
    assert len(entries) == 1 and entries[0].operation == "passkey"


@pytest.mark.parametrize("ceremony", ["register", "sign_in"])
def test_attack_assertion_without_user_verification(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path, ceremony: str
) -> None:
    """A key merely touched (user present, not verified) is possession alone: not high."""
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    if ceremony == "register":
        assert _register(browser, page, key, flags=UP | AT).status_code == 400
        return
    assert _register(browser, page, key).status_code == 200
    assert _sign_in(browser, page, key, flags=UP).status_code == 400
    assert _session_row(hoviyat_app, browser).acr == SUBSTANTIAL


def test_attack_forged_signature_and_garbage_change_nothing(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    assert _register(browser, page, key).status_code == 200
    impostor = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    impostor.credential_id = key.credential_id  # same id, its own key
    assert _sign_in(browser, page, impostor).status_code == 400
    bad_client_data = json.dumps({"response": {"clientDataJSON": "!"}})
    for junk in ("", "{", "[]", '{"response": 1}', bad_client_data, "x" * 40_000):
        for path in ("/login/passkeys/register", PASSKEY_FORM):
            answer = _post(browser, page, path, credential=junk)
            assert answer.status_code == 400, (path, junk[:20], answer.text)
    assert _session_row(hoviyat_app, browser).acr == SUBSTANTIAL


def test_attack_cross_site_post_without_csrf_token(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    for path in ("/login/passkeys/register/options", "/login/passkeys/authenticate/options"):
        answer = _post(browser, page, path, csrf_token="forged")
        assert answer.status_code == 403
        assert answer.json()["type"].endswith("/csrf")


ALLOWED_MODEL = uuid.UUID("cb69481e-8ff7-4039-93ec-0a2729a154a8")
OTHER_MODEL = uuid.UUID("ee882879-721c-4913-9775-3dfcce97072a")


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey],
    *, ca: bool, model: uuid.UUID | None = None,
) -> x509.Certificate:  # fmt: skip
    def name(cn: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "IR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Vendor"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])  # fmt: skip

    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if model is not None:  # id-fido-gen-ce-aaguid: OCTET STRING of the 16 bytes (§8.2.1)
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4"), b"\x04\x10" + model.bytes
            ),
            critical=False,
        )
    return builder.sign(issuer[1], hashes.SHA256())


def _vendor(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    """A vendor's attestation root, written as the deployment's roots file."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Test Vendor Root", root_key, ("Test Vendor Root", root_key), ca=True)
    path = tmp_path / "attestation-roots.pem"
    path.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return root_key, path


def _attested(
    key: SoftAuthenticator, root_key: ec.EllipticCurvePrivateKey, model: uuid.UUID,
    named: uuid.UUID | None = None,
) -> SoftAuthenticator:  # fmt: skip
    """The authenticator reports ``model`` and holds a batch certificate naming ``named``."""
    batch_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate("Batch 1", batch_key, ("Test Vendor Root", root_key), ca=False,
                        model=named or model)  # fmt: skip
    key.aaguid = model.bytes
    key.attestation = ([leaf.public_bytes(serialization.Encoding.DER)], batch_key)
    return key


@pytest.fixture
def vendor(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    return _vendor(tmp_path)


@pytest.fixture
def attesting_app(
    hoviyat_settings: Settings,
    init_report: dict[str, Any],
    vendor: tuple[ec.EllipticCurvePrivateKey, Path],
) -> Iterator[FastAPI]:
    login = LoginSettings(
        webauthn_attestation="direct",
        webauthn_attestation_roots_file=vendor[1],
        webauthn_aaguids=[str(ALLOWED_MODEL)],
    )
    with app_with_login(hoviyat_settings, login) as app:
        yield app


def _register_attested(app: FastAPI, person: dict[str, Any], key: SoftAuthenticator) -> Response:
    browser = _fresh_browser(app)
    page = _high_page(browser, app, person)
    options = _post(browser, page, "/login/passkeys/register/options").json()
    assert options["attestation"] == "direct"
    return _post(browser, page, "/login/passkeys/register", credential=key.create(options))


def test_direct_attestation_refuses_an_authenticator_that_does_not_name_its_model(
    attesting_app: FastAPI, synthetic_registry_path: Path
) -> None:
    key = SoftAuthenticator(attesting_app.state.hoviyat.settings.issuer)
    answer = _register_attested(attesting_app, living_with_mobile(synthetic_registry_path), key)
    assert answer.status_code == 400
    assert "attestation_missing" in answer.json()["detail"]
    assert _audit_outcomes(attesting_app, "passkey") == ["attestation_missing"]


def test_direct_attestation_accepts_an_allowed_model_certified_by_its_vendor(
    attesting_app: FastAPI, synthetic_registry_path: Path, vendor: Any
) -> None:
    key = _attested(SoftAuthenticator(attesting_app.state.hoviyat.settings.issuer), vendor[0],
                    ALLOWED_MODEL)  # fmt: skip
    answer = _register_attested(attesting_app, living_with_mobile(synthetic_registry_path), key)
    assert answer.status_code == 200, answer.text
    with attesting_app.state.hoviyat.db.session() as db:
        (stored,) = db.exec(select(Passkey)).all()
    assert stored.aaguid == str(ALLOWED_MODEL)


def test_attack_attestation_from_a_self_made_certificate(
    attesting_app: FastAPI, synthetic_registry_path: Path
) -> None:
    """Anyone can make a certificate naming an allowed model: it must chain to a vendor root."""
    own_root = ec.generate_private_key(ec.SECP256R1())
    key = _attested(SoftAuthenticator(attesting_app.state.hoviyat.settings.issuer), own_root,
                    ALLOWED_MODEL)  # fmt: skip
    answer = _register_attested(attesting_app, living_with_mobile(synthetic_registry_path), key)
    assert answer.status_code == 400
    assert _audit_outcomes(attesting_app, "passkey") == ["invalid"]


def test_attack_attested_model_not_allowed(
    attesting_app: FastAPI, synthetic_registry_path: Path, vendor: Any
) -> None:
    key = _attested(SoftAuthenticator(attesting_app.state.hoviyat.settings.issuer), vendor[0],
                    OTHER_MODEL)  # fmt: skip
    answer = _register_attested(attesting_app, living_with_mobile(synthetic_registry_path), key)
    assert answer.status_code == 400
    assert "aaguid_not_allowed" in answer.json()["detail"]


def test_attack_authenticator_claims_a_model_its_certificate_does_not_name(
    attesting_app: FastAPI, synthetic_registry_path: Path, vendor: Any
) -> None:
    """A genuine batch certificate of a disallowed model, with the allowed AAGUID written
    into the authenticator data: §8.2.1 ties the two."""
    key = _attested(SoftAuthenticator(attesting_app.state.hoviyat.settings.issuer), vendor[0],
                    ALLOWED_MODEL, named=OTHER_MODEL)  # fmt: skip
    answer = _register_attested(attesting_app, living_with_mobile(synthetic_registry_path), key)
    assert answer.status_code == 400
    assert "another model" not in answer.text  # the reason is audited, not explained
    assert _audit_outcomes(attesting_app, "passkey") == ["invalid"]


def test_direct_attestation_needs_a_roots_file() -> None:
    with pytest.raises(ValueError, match="ROOTS_FILE"):
        LoginSettings(webauthn_attestation="direct")


def test_the_high_page_works_without_javascript_for_the_certificate(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """Without a script the passkey form stays hidden and the page says why; the
    certificate form is an ordinary form post."""
    page = _high_page(browser, hoviyat_app, living_with_mobile(synthetic_registry_path))
    forms = Forms(page.text)
    assert forms.html_attrs["dir"] == "rtl"
    assert "<noscript>" in page.text and "جاوااسکریپت" in page.text
    certificate = forms.form("/login/certificate")
    assert certificate["csrf_token"] and certificate["interaction"]
    english = browser.get(f"/login?interaction={certificate['interaction']}&lang=en")
    assert "Sign in with your certificate" in english.text
    assert_valid_html(page, "high (fa)")
    assert_valid_html(english, "high (en)")
    script = browser.get("/login/static/passkeys.js")
    assert script.status_code == 200 and "navigator.credentials" in script.text


def test_account_page_adds_lists_and_removes_passkeys(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """Outside any login: a session at substantial adds a passkey (no interaction), sees
    it listed, and removes it (a lost device); the removal is audited."""
    person = living_with_mobile(synthetic_registry_path)
    _high_page(browser, hoviyat_app, person)  # leaves a session at substantial
    page = browser.get("/login/passkeys?lang=en")
    assert page.status_code == 200 and "You have no passkey yet." in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert_valid_html(page, "passkeys (en)")
    fields = Forms(page.text).form("/login/passkeys/register")
    assert "interaction" not in fields
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    options = browser.post("/login/passkeys/register/options", data=fields).json()
    added = browser.post(
        "/login/passkeys/register", data={**fields, "credential": key.create(options)}
    )
    assert added.status_code == 200, added.text
    assert added.json()["next"] == "/login/passkeys?lang=en"
    # Signing in needs a login in progress: the account page cannot raise the level.
    assert browser.post("/login/passkeys/authenticate/options", data=fields).status_code == 400
    listed = browser.get("/login/passkeys?lang=en")
    removal = Forms(listed.text).form("/login/passkeys/remove")
    assert removal["credential_id"] == b64url(key.credential_id)
    stranger = _fresh_browser(hoviyat_app)
    stranger_page = _high_page(
        stranger, hoviyat_app, living_with_mobile(synthetic_registry_path, 1)
    )
    theirs = Forms(stranger_page.text).form(PASSKEY_FORM)
    stolen = stranger.post("/login/passkeys/remove", data={**theirs, **{
        "credential_id": removal["credential_id"]}})  # fmt: skip
    assert stolen.status_code == 303
    with hoviyat_app.state.hoviyat.db.session() as db:
        assert len(db.exec(select(Passkey)).all()) == 1  # someone else's passkey stays
    assert browser.post("/login/passkeys/remove", data=removal).status_code == 303
    with hoviyat_app.state.hoviyat.db.session() as db:
        assert db.exec(select(Passkey)).all() == []
    assert _audit_outcomes(hoviyat_app, "passkey") == ["registered", "revoked"]


def test_account_page_at_low_cannot_add_a_passkey(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app))
    _identify(browser, interaction, person)
    page = browser.get("/login/passkeys?lang=en")
    assert page.status_code == 200
    assert "/login/passkeys/register" not in page.text
    assert "must have been confirmed" in page.text
    nobody = _fresh_browser(hoviyat_app).get("/login/passkeys")
    assert nobody.status_code == 401


def test_attack_one_assertion_raced_by_two_requests(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """The same signed answer sent twice at once (two tabs, or a thief racing the owner):
    the challenge is spent by one statement, so exactly one request raises the session."""
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    assert _register(browser, page, key).status_code == 200
    options = _post(browser, page, "/login/passkeys/authenticate/options").json()
    signed = key.get(options)
    fields = {**Forms(page.text).form(PASSKEY_FORM), "credential": signed}
    clients = [_fresh_browser(hoviyat_app) for _ in range(2)]
    for client in clients:
        client.cookies.update(dict(browser.cookies))
    barrier = threading.Barrier(2)

    def race(client: TestClient) -> int:
        barrier.wait()
        return client.post(PASSKEY_FORM, data=fields).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(race, clients))
    # The loser finds the challenge spent (400), or, when the winner committed first,
    # the cookie it carries already rotated away by the step-up (401).
    assert statuses[0] == 200 and statuses[1] in (400, 401), statuses
    with hoviyat_app.state.hoviyat.db.session() as db:
        raised = db.exec(
            select(AuditEntry).where(
                col(AuditEntry.operation) == "passkey", col(AuditEntry.outcome) == "success"
            )
        ).all()
    assert len(raised) == 1


def test_a_ceremony_begun_on_one_worker_ends_on_another(
    hoviyat_app: FastAPI,
    hoviyat_settings: Settings,
    browser: TestClient,
    synthetic_registry_path: Path,
) -> None:
    """Nothing of a ceremony lives in a process: a second app over the same database
    (another worker or host) verifies what the first one asked for."""
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    other_app = create_app(hoviyat_settings)
    try:
        other = _fresh_browser(other_app)
        other.cookies.update(dict(browser.cookies))
        options = _post(browser, page, "/login/passkeys/register/options").json()
        made = key.create(options)
        assert _post(other, page, "/login/passkeys/register", credential=made).status_code == 200
        options = _post(other, page, "/login/passkeys/authenticate/options").json()
        assert _post(browser, page, PASSKEY_FORM, credential=key.get(options)).status_code == 200
        assert _session_row(hoviyat_app, browser).acr == HIGH
    finally:
        other_app.state.hoviyat.close()


def test_prompt_none_at_high_answers_only_after_the_passkey(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """OIDC Core §3.1.2.1: a silent request for high is login_required while the browser's
    session is at substantial, and answered with a code once a passkey raised it."""
    rp = register_rp(hoviyat_app, "rp-silent-high")
    person = living_with_mobile(synthetic_registry_path)
    page = _high_page(browser, hoviyat_app, person)
    key = SoftAuthenticator(hoviyat_app.state.hoviyat.settings.issuer)
    _, challenge = pkce_pair()
    silent = authorization_params(rp, challenge, acr_values=HIGH, prompt="none")
    before = query_of(browser.get("/authorize", params=silent).headers["location"])
    assert before.get("error") == "login_required", before
    assert _register(browser, page, key).status_code == 200
    assert _sign_in(browser, page, key).status_code == 200
    # Consent for this client's claims, as an earlier interactive login would have left it.
    interactive = authorization_params(rp, challenge, acr_values=HIGH)
    consent_page = browser.get(browser.get("/authorize", params=interactive).headers["location"])
    answer = submit(browser, consent_page, "/login/consent", decision="allow")
    assert answer.status_code == 303
    after = query_of(browser.get("/authorize", params=silent).headers["location"])
    assert "code" in after, after
