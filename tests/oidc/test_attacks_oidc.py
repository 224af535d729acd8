"""Issue #12 "Trust under attack", OpenID Connect: each promise tested from the attacker's side.

Over the app's ASGI transport or a live uvicorn, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import ECKey
from oidc.login_helpers import (
    SUBSTANTIAL,
    Forms,
    code_in,
    follow,
    last_text,
    living_with_mobile,
    make_client,
    new_interaction,
    submit,
)
from oidc_support import (
    REDIRECT_URI,
    SERVICE,
    RelyingParty,
    authorization_params,
    code_for,
    exchange,
    log_in,
    pkce_pair,
    query_of,
    register_rp,
    session_cookie,
)
from sector_server import SectorServer
from sqlalchemy import select, update
from sqlmodel import col

from idp.clients import create_client
from idp.login.consent import remember_consent
from idp.oidc.grants import digest
from idp.oidc.sector import MAX_BYTES, SectorIdentifierError, check_sector_identifier
from idp.settings import Settings
from idp.storage.login import LoginSession
from idp.storage.oidc import OidcClientAssertion, OidcRefreshToken
from verifiers.registry.base import Person

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def hoviyat_settings(hoviyat_settings: Settings) -> Settings:
    # Sector identifier documents come from a loopback http server here (OIDC
    # Core §8.1 wants https; the setting exists for tests only).
    return hoviyat_settings.model_copy(update={"sector_identifier_allow_http_loopback": True})


PROFILE_CLAIMS = ["family_name", "given_name", "name", "birthdate", "father_name", "gender"]


def _tokens(app: FastAPI, browser: TestClient, rp: RelyingParty, citizen: Person) -> Any:
    verifier, challenge = pkce_pair()
    login = log_in(app.state.hoviyat.db, citizen.national_code)
    code = code_for(app, browser, authorization_params(rp, challenge), login)
    answer = exchange(browser, rp, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- refresh tokens (RFC 9700 §4.14.2) ---------------------------------------------------------


def test_attack_stolen_refresh_token_replayed_in_grace_window_does_not_fork_the_grant(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    issued = _tokens(hoviyat_app, asgi_browser, rp, citizen)
    auth = (rp.client_id, rp.client_secret or "")

    def refresh(token: str) -> httpx.Response:
        return asgi_browser.post(
            "/token", data={"grant_type": "refresh_token", "refresh_token": token}, auth=auth
        )

    rightful = refresh(issued["refresh_token"])
    assert rightful.status_code == 200
    # The thief presents the rotated-out token a moment later: no second chain.
    stolen = refresh(issued["refresh_token"])
    assert stolen.status_code == 400, stolen.text
    assert stolen.json()["error"] == "invalid_grant"
    assert "refresh_token" not in stolen.json()
    with db.read() as session:
        children = session.execute(
            select(col(OidcRefreshToken.token_hash)).where(
                OidcRefreshToken.parent_hash == digest(issued["refresh_token"])  # type: ignore[arg-type]
            )
        ).all()
    assert len(children) == 1  # one successor in the database, never two
    # Refusing inside the window revoked nothing: the rightful chain goes on.
    onward = refresh(rightful.json()["refresh_token"])
    assert onward.status_code == 200
    # After the window the same replay is reuse: the whole family is revoked.
    with db.session() as session:
        session.execute(
            update(OidcRefreshToken)
            .where(OidcRefreshToken.token_hash == digest(issued["refresh_token"]))  # type: ignore[arg-type]
            .values(rotated_at=datetime.now(UTC) - timedelta(seconds=11))
        )
    assert refresh(issued["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(onward.json()["refresh_token"]).json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {onward.json()['access_token']}"}
    assert asgi_browser.get("/userinfo", headers=bearer).status_code == 401


# --- private_key_jwt (RFC 7523 §3, FAPI 2.0 §5.3.2.1) ------------------------------------------


@pytest.fixture
def key_client(hoviyat_app: FastAPI) -> tuple[RelyingParty, ECKey]:
    key = ECKey.generate_key("P-256", auto_kid=True)
    rp = register_rp(
        hoviyat_app,
        "rp-assertions",
        auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    return rp, key


def _assertion(key: ECKey, client_id: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": claims.pop("aud"),
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        **claims,
    }
    return joserfc_jwt.encode({"alg": "ES256", "kid": key.kid}, payload, key, algorithms=["ES256"])


def test_attack_client_assertion_replayed_after_a_failed_grant_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key_client: tuple[RelyingParty, ECKey]
) -> None:
    rp, key = key_client
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    assertion = _assertion(key, rp.client_id, aud=issuer)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "not-a-refresh-token",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    # Authentication succeeds, then the grant fails...
    first = asgi_browser.post("/token", data=form)
    assert first.status_code == 400, first.text
    assert first.json()["error"] == "invalid_grant"
    # ...and the jti stays spent: the captured assertion authenticates no more.
    for endpoint, data in (("/token", form), ("/introspect", {"token": "x"})):
        replay = asgi_browser.post(
            endpoint,
            data={**data, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
        )
        assert replay.status_code == 401, replay.text
        assert replay.json()["error"] == "invalid_client"
        assert "jti" in replay.json()["error_description"]
    with hoviyat_app.state.hoviyat.db.read() as session:
        spent = session.execute(
            select(OidcClientAssertion).where(OidcClientAssertion.client_id == rp.client_id)  # type: ignore[arg-type]
        ).all()
    assert len(spent) == 1


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": ["{issuer}", "https://other-as.example"]}, "aud"),
        ({"aud": ["{issuer}"]}, "aud"),
        ({"aud": "{issuer}/introspect"}, "aud"),
        ({"aud": "https://other-as.example/token"}, "aud"),
        ({"aud": "{issuer}", "exp": "+3600"}, "expire"),
        ({"aud": "{issuer}", "exp": "+400"}, "expire"),
        ({"aud": "{issuer}", "iat": "+600", "exp": "+120"}, "iat"),
        ({"aud": "{issuer}", "exp": "-120"}, "expired"),
    ],
)
def test_attack_client_assertion_with_foreign_audience_or_long_life_is_refused(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    key_client: tuple[RelyingParty, ECKey],
    claims: dict[str, Any],
    why: str,
) -> None:
    rp, key = key_client
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    now = int(time.time())

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, str) and value[:1] in "+-":
            return now + int(value)
        return value.format(issuer=issuer) if isinstance(value, str) else value

    assertion = _assertion(key, rp.client_id, **{name: resolve(v) for name, v in claims.items()})
    answer = asgi_browser.post(
        "/introspect",
        data={"token": "x", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
    )
    assert answer.status_code == 401, answer.text
    assert why in answer.json()["error_description"]


@pytest.mark.parametrize("audience", ["{issuer}", "{issuer}/token"])
def test_client_assertion_naming_the_issuer_or_token_endpoint_is_accepted(
    hoviyat_app: FastAPI,
    asgi_browser: TestClient,
    key_client: tuple[RelyingParty, ECKey],
    audience: str,
) -> None:
    rp, key = key_client
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    now = int(time.time())
    assertion = _assertion(
        key, rp.client_id, aud=audience.format(issuer=issuer), exp=now + 300, iat=now + 20
    )
    answer = asgi_browser.post(
        "/introspect",
        data={"token": "x", "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"active": False}


# --- max_age (OIDC Core §3.1.2.1) ---------------------------------------------------------------


def test_attack_silent_login_two_seconds_old_under_max_age_one_gets_no_code(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    login = log_in(db, citizen.national_code)
    with db.session() as session:
        remember_consent(session, citizen.national_code, rp.client_id, PROFILE_CLAIMS)
        session.execute(
            update(LoginSession)
            .where(LoginSession.id == login.session_id)  # type: ignore[arg-type]
            .values(auth_time=datetime.now(UTC) - timedelta(seconds=2))
        )
    cookies = session_cookie(hoviyat_app, login)
    _, challenge = pkce_pair()
    stale = asgi_browser.get(
        "/authorize",
        params=authorization_params(rp, challenge, prompt="none", max_age="1"),
        cookies=cookies,
    )
    assert query_of(stale.headers["location"]).get("error") == "login_required", stale.headers
    fresh_enough = asgi_browser.get(
        "/authorize",
        params=authorization_params(rp, challenge, prompt="none", max_age="3"),
        cookies=cookies,
    )
    assert "code" in query_of(fresh_enough.headers["location"])


# --- one-time codes under concurrency (issue #18) ----------------------------------------------


def test_right_code_submitted_ten_times_at_once_is_never_called_wrong_too_many_times(
    hoviyat_app: FastAPI, live_server: Any, synthetic_registry_path: Any
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    with TestClient(hoviyat_app, base_url=issuer, follow_redirects=False) as browser:
        interaction = new_interaction(
            hoviyat_app, make_client(hoviyat_app), acr_values=[SUBSTANTIAL]
        )
        page = browser.get(f"/login?interaction={interaction}")
        answer = submit(
            browser,
            page,
            "/login/identify",
            national_code=person["national_code"],
            birth_date=person["birth_date"],
        )
        mobile_page = follow(browser, answer)
        sent = submit(browser, mobile_page, "/login/mobile", mobile=person["mobiles"][0])
        otp_page = follow(browser, sent)
        code = code_in(last_text(hoviyat_app).body)
        data = {**Forms(otp_page.text).form("/login/otp"), "otp": code}
        cookies = dict(browser.cookies)

    count = 10
    barrier = threading.Barrier(count)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def enter() -> None:
        with httpx.Client(base_url=live_server.url, cookies=cookies, timeout=60) as tab:
            barrier.wait()
            result = tab.post("/login/otp", data=data, follow_redirects=False)
        with lock:
            answers.append(result)

    threads = [threading.Thread(target=enter) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(answers) == count
    # One submission stepped up (it alone carries the new session cookie); the
    # others are told the truth: the step is done (a redirect onwards) or the
    # code was already accepted. Never "entered wrong too many times".
    accepted = [a for a in answers if "hoviyat_session=" in a.headers.get("set-cookie", "")]
    assert len(accepted) == 1, [(a.status_code, a.text[-300:]) for a in answers]
    assert accepted[0].status_code == 303
    for other in answers:
        assert "بیش از حد اشتباه" not in other.text  # "entered wrong too many times"
        if other is accepted[0]:
            continue
        if other.status_code == 303:
            assert other.headers["location"].startswith("/login?interaction="), other.headers
        else:
            assert other.status_code == 409, other.text
            assert "پذیرفته شد" in other.text  # "already accepted"


# --- logout CSRF (RP-Initiated Logout §2, OWASP CSRF Prevention) --------------------------------


def test_attack_cross_site_logout_post_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, rp: RelyingParty, citizen: Person
) -> None:
    db = hoviyat_app.state.hoviyat.db
    login = log_in(db, citizen.national_code)
    asgi_browser.cookies.update(session_cookie(hoviyat_app, login))
    asked = asgi_browser.get("/logout")
    assert asked.status_code == 200
    form = Forms(asked.text).form("/logout")
    issuer = hoviyat_app.state.hoviyat.settings.issuer

    def ended() -> bool:
        with db.read() as session:
            row = session.get(LoginSession, login.session_id)
            return row is not None and row.ended_at is not None

    forged = [
        # evil.example's auto-submitting form: the browser sends the cookies, not the token.
        ({"confirm": "yes"}, {"Origin": "https://evil.example"}),
        ({"confirm": "yes"}, {}),
        # Even a token somehow learnt does not make a cross-site POST ours.
        (form, {"Origin": "https://evil.example"}),
        (form, {"Origin": "null"}),
        (form, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for data, headers in forged:
        refused = asgi_browser.post("/logout", data=data, headers=headers)
        assert refused.status_code == 403, (data, headers, refused.text)
        assert not ended()
    done = asgi_browser.post(
        "/logout", data=form, headers={"Origin": issuer, "Sec-Fetch-Site": "same-origin"}
    )
    assert done.status_code == 200, done.text
    assert ended()


# --- /authorize errors with nowhere safe to redirect (OIDC Core §3.1.2.6) -----------------------


def test_attack_unregistered_redirect_uri_is_shown_to_the_citizen_in_persian_not_followed(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(rp, challenge, redirect_uri="https://evil.example/cb")
    shown = asgi_browser.get("/authorize", params=params, headers={"Accept": "text/html"})
    assert shown.status_code == 400
    assert "location" not in shown.headers
    assert shown.headers["content-type"].startswith("text/html")
    page = Forms(shown.text)
    assert page.html_attrs["lang"] == "fa" and page.html_attrs["dir"] == "rtl"
    assert "نشانی بازگشتی" in shown.text  # "the return address"
    assert "evil.example" not in shown.text


@pytest.mark.parametrize(
    ("headers", "extra", "lang", "words"),
    [
        ({"Accept-Language": "en-GB,en;q=0.9"}, {}, "en", "not registered"),
        ({"Accept-Language": "de, en;q=0.5, fa;q=0.8"}, {}, "fa", "ثبت نشده"),
        ({"Accept-Language": "fa"}, {"ui_locales": "en"}, "en", "not registered"),
        ({}, {}, "fa", "ثبت نشده"),
    ],
)
def test_attack_unknown_client_gets_an_error_page_in_the_citizens_language(
    asgi_browser: TestClient,
    rp: RelyingParty,
    headers: dict[str, str],
    extra: dict[str, str],
    lang: str,
    words: str,
) -> None:
    _, challenge = pkce_pair()
    params = authorization_params(rp, challenge, client_id="no-such-app", **extra)
    shown = asgi_browser.get("/authorize", params=params, headers=headers)
    assert shown.status_code == 400
    assert shown.headers["content-type"].startswith("text/html")
    assert Forms(shown.text).html_attrs["lang"] == lang
    assert words in shown.text


# --- pairwise subjects and sector identifiers (OIDC Core §8.1) ----------------------------------


def test_attack_pairwise_correlation_via_a_foreign_sector_identifier_is_refused(
    app_client: TestClient, admin_token: str
) -> None:
    admin = {"Authorization": f"Bearer {admin_token}"}
    bank_sector = json.dumps(["https://bank.example/cb", "https://m.bank.example/cb"]).encode()

    def register(redirect_uri: str, sector: str) -> httpx.Response:
        return app_client.post(
            "/v1/admin/clients",
            json={
                "name": "Some app",
                "service_code": "demo-tax-portal",
                "redirect_uris": [redirect_uri],
                "sector_identifier": sector,
            },
            headers=admin,
        )

    with SectorServer(bank_sector) as sector:
        # An app that names the bank's sector to get the bank's subjects.
        refused = register("https://evil.example/cb", sector.url)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        detail = refused.json()["detail"]
        assert "https://evil.example/cb" in detail and "§8.1" in detail
        # The bank's own app, listed by its sector, registers.
        assert register("https://m.bank.example/cb", sector.url).status_code == 201
    with app_client.app.state.hoviyat.db.read() as session:  # type: ignore[attr-defined]
        from idp.storage.models import Client

        names = [c.redirect_uris for c in session.execute(select(Client)).scalars()]
    assert ["https://evil.example/cb"] not in names


@pytest.mark.parametrize(
    ("body", "status", "delay", "why"),
    [
        (b'{"redirect_uris": ["https://a.example/cb"]}', 200, 0.0, "JSON array"),
        (b"<html>not json</html>", 200, 0.0, "JSON array"),
        (b'["https://a.example/cb"]', 404, 0.0, "HTTP 404"),
        (b'["https://a.example/cb"' + b', "x"' * (MAX_BYTES // 5) + b"]", 200, 0.0, "larger"),
        (b'["https://a.example/cb"]', 200, 2.0, "within"),
    ],
)
def test_attack_unusable_sector_identifier_document_is_refused(
    body: bytes, status: int, delay: float, why: str
) -> None:
    with SectorServer(body, status=status, delay=delay) as sector:
        with pytest.raises(SectorIdentifierError, match=why):
            check_sector_identifier(
                sector.url, ["https://a.example/cb"], allow_http_loopback=True, timeout=0.5
            )


def test_attack_sector_identifier_over_plain_http_is_refused_outside_tests() -> None:
    with SectorServer(b'["https://a.example/cb"]') as sector:
        with pytest.raises(SectorIdentifierError, match="https"):
            check_sector_identifier(sector.url, ["https://a.example/cb"])
        check_sector_identifier(sector.url, ["https://a.example/cb"], allow_http_loopback=True)


# --- fuzzing: the client-assertion JWT parser and the OAuth form parser (never a 500) -----------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
CLAIM_NAMES = st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "x"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: Any) -> str:
    return _b64(json.dumps(value).encode())


@pytest.mark.slow
def test_attack_fuzzed_client_assertions_never_cause_a_server_error(
    hoviyat_app: FastAPI, asgi_browser: TestClient, key_client: tuple[RelyingParty, ECKey]
) -> None:
    rp, key = key_client
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    # Assertions that pass the signature check carry fuzzed claims: the claim
    # checks then meet every JSON type where a number or a string belongs.
    signed = st.dictionaries(CLAIM_NAMES, JSON_VALUES, max_size=7).map(
        lambda claims: joserfc_jwt.encode(
            {"alg": "ES256", "kid": key.kid},
            {"iss": rp.client_id, "sub": rp.client_id, "aud": issuer, **claims},
            key,
            algorithms=["ES256"],
        )
    )
    # Unsigned or forged ones: fuzzed headers and payloads, any alg.
    forged = st.tuples(
        st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "jwk"]), JSON_VALUES),
        st.one_of(JSON_VALUES, st.just({"sub": rp.client_id})),
        st.binary(max_size=80),
    ).map(lambda parts: f"{_segment(parts[0])}.{_segment(parts[1])}.{_b64(parts[2])}")
    garbage = st.text(max_size=200)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.one_of(signed, forged, garbage), st.sampled_from(["/token", "/introspect"]))
    def check(assertion: str, endpoint: str) -> None:
        data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        data.update({"grant_type": "refresh_token", "refresh_token": "x", "token": "x"})
        answer = asgi_browser.post(endpoint, data=data)
        assert answer.status_code < 500, (assertion, answer.text)
        # 429: this client's failed authentications passed the audited limit (refused_clients).
        assert answer.status_code in (200, 400, 401, 429), (assertion, answer.text)
        if answer.status_code != 200:
            assert answer.json()["error"] in ("invalid_client", "invalid_grant", "invalid_request")

    check()


@pytest.mark.slow
def test_attack_fuzzed_form_bodies_never_cause_a_server_error(
    asgi_browser: TestClient, rp: RelyingParty
) -> None:
    pieces = st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"&", b"=", b"%", b"%ff", b"%C3%28", b"+", b"grant_type=", b"code=",
                         b"client_id=", b"client_secret=", b"refresh_token", b"&&==", b"%00",
                         b"client_assertion=", b"token="]),
    )  # fmt: skip
    bodies = st.lists(pieces, max_size=12).map(b"".join)
    content_types = st.sampled_from([
        "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
        "application/json", "multipart/form-data; boundary=x", "", "text/plain",
    ])  # fmt: skip

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(bodies, content_types, st.sampled_from(["/token", "/introspect", "/revoke", "/par"]))
    def check(body: bytes, content_type: str, endpoint: str) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        answer = asgi_browser.post(
            endpoint, content=body, headers=headers, auth=(rp.client_id, rp.client_secret or "")
        )
        assert answer.status_code < 500, (body, content_type, answer.text)
        if answer.status_code >= 400:
            assert "error" in answer.json(), answer.text

    check()


@pytest.mark.parametrize("endpoint", ["/token", "/introspect", "/revoke", "/par"])
def test_attack_nul_byte_in_an_oauth_form_gets_an_oauth_error_not_a_database_problem(
    asgi_browser: TestClient, rp: RelyingParty, endpoint: str
) -> None:
    # PostgreSQL cannot store a NUL byte: reaching a query, it became the app's
    # RFC 9457 problem, which OAuth client libraries do not parse (schemathesis
    # found it at /par). Every field, name or value, is refused by the form parser.
    for body in (
        f"client_id={rp.client_id}%00&response_type=code&token=x&grant_type=client_credentials",
        "grant_type=client_credentials&token=x&response_type=code&redirect_uri=https://a%00",
        "grant%00type=client_credentials&token=x",
    ):
        answer = asgi_browser.post(
            endpoint,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=(rp.client_id, rp.client_secret or ""),
        )
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/json"), answer.headers
        assert answer.json()["error"] == "invalid_request", answer.text


def test_attack_login_access_token_used_as_its_clients_own_token_is_refused(
    hoviyat_app: FastAPI, asgi_browser: TestClient, citizen: Person
) -> None:
    """A citizen's access token from a client that also holds operator roles (an
    agency's portal with the admin role, say) must act only for the citizen: at the
    operator and back-office APIs it is refused, where the client's own
    client-credentials token is admitted. The token names the client's service, so
    without a check it passed as the client itself, with the client's roles."""
    hoviyat = hoviyat_app.state.hoviyat
    with hoviyat.db.session() as session:
        created = create_client(
            session,
            hoviyat.secrets.client_secret_key,
            name="RP with roles",
            service_code=SERVICE,
            client_id="rp-with-roles",
            token_endpoint_auth_method="client_secret_basic",
            grant_types=["authorization_code", "client_credentials"],
            redirect_uris=[REDIRECT_URI],
            roles=["admin", "auditor", "ca_operator"],
        )
    rp = RelyingParty("rp-with-roles", created.client_secret, REDIRECT_URI)
    verifier, challenge = pkce_pair()
    login = log_in(hoviyat.db, citizen.national_code)
    code = code_for(hoviyat_app, asgi_browser, authorization_params(rp, challenge), login)
    login_token = exchange(asgi_browser, rp, code, verifier).json()["access_token"]
    assert asgi_browser.get("/userinfo", headers=_bearer(login_token)).status_code == 200

    client_token = asgi_browser.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(rp.client_id, rp.client_secret or ""),
    ).json()["access_token"]
    for path in ("/v1/audit/entries", "/v1/certificates/01", "/v1/identifiers/validate"):
        admitted = asgi_browser.get(path, headers=_bearer(client_token))
        assert admitted.status_code not in (401, 403), (path, admitted.text)
        refused = asgi_browser.get(path, headers=_bearer(login_token))
        assert refused.status_code == 401, (path, refused.text)
        assert "person's login" in refused.json()["detail"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
