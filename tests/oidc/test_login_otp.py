"""Level substantial: mobile ownership, one-time codes (expiry, attempts, send limits), step-up."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import (
    REDIRECT_URI,
    SUBSTANTIAL,
    Forms,
    app_with_login,
    code_in,
    follow,
    interaction_row,
    last_text,
    living_with_mobile,
    make_client,
    new_interaction,
    submit,
)
from sqlalchemy import update
from typer.testing import CliRunner

from idp.cli.dev import dev_app
from idp.login.config import LoginSettings
from idp.login.sms import DevOutbox, HttpSmsGateway, OutboxForbidden, SmsUnavailable
from idp.settings import Settings
from idp.storage.login import LoginOtp


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


@pytest.fixture
def limited_app(hoviyat_settings: Settings, init_report: dict[str, Any]) -> Iterator[FastAPI]:
    """An app sending at most 3 codes per mobile and 4 per national code an hour."""
    login = LoginSettings(otp_per_mobile_per_hour=3, otp_per_national_code_per_hour=4)
    with app_with_login(hoviyat_settings, login) as app:
        yield app


def _browser_of(app: FastAPI) -> TestClient:
    return TestClient(app, base_url=app.state.hoviyat.settings.issuer, follow_redirects=False)


def _log_in_low(browser: TestClient, app: FastAPI, person: dict[str, Any], **kw: Any) -> str:
    interaction = new_interaction(app, make_client(app), **kw)
    page = browser.get(f"/login?interaction={interaction}")
    answer = submit(browser, page, "/login/identify", national_code=person["national_code"],
                    birth_date=person["birth_date"])  # fmt: skip
    assert answer.status_code == 303
    return interaction


def _mobile_page(browser: TestClient, app: FastAPI, person: dict[str, Any]) -> tuple[str, Any]:
    interaction = _log_in_low(browser, app, person, acr_values=[SUBSTANTIAL])
    page = browser.get(f"/login?interaction={interaction}")
    assert "/login/mobile" in page.text, page.text
    return interaction, page


def test_step_up_asks_only_for_the_mobile_code(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    # First an app that is happy with level low.
    first = _log_in_low(browser, hoviyat_app, person)
    follow(browser, submit(browser, browser.get(f"/login?interaction={first}"),
                           "/login/consent", decision="allow"))  # fmt: skip
    low_cookie = browser.cookies.get("hoviyat_session")

    # Then one that needs substantial: no national code form, straight to the mobile step.
    second = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[SUBSTANTIAL])
    page = browser.get(f"/login?interaction={second}")
    assert page.status_code == 200
    assert "/login/identify" not in page.text
    wrong_number = "09" + ("1" if person["mobiles"][0][2] != "1" else "2") + "00000000"
    refused = submit(browser, page, "/login/mobile", mobile=wrong_number)
    assert refused.status_code == 400
    assert "به نام شما ثبت نشده" in Forms(refused.text).errors["mobile"]

    international = "+98 " + person["mobiles"][0][1:]
    sent = submit(browser, page, "/login/mobile", mobile=international)
    assert sent.status_code == 303
    text = last_text(hoviyat_app)
    assert text.mobile == person["mobiles"][0]
    otp_page = follow(browser, sent)
    assert "/login/otp" in otp_page.text
    assert person["mobiles"][0] not in otp_page.text.replace('value="' + person["mobiles"][0], "")

    code = code_in(text.body)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answer = submit(browser, otp_page, "/login/otp", otp=wrong)
    assert answer.status_code == 400
    assert "۴" in Forms(answer.text).errors["otp"]  # four tries left, in Persian digits

    persian = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    accepted = submit(browser, otp_page, "/login/otp", otp=persian)
    assert accepted.status_code == 303
    assert browser.cookies.get("hoviyat_session") != low_cookie  # token rotated on step-up
    # Consent for these facts was given at the first login: straight back to the client.
    assert follow(browser, accepted).headers["location"].startswith(REDIRECT_URI + "?code=")
    row = interaction_row(hoviyat_app, second)
    assert row.acr == SUBSTANTIAL
    assert set(row.amr or []) == {"kba", "sms", "otp"}

    # The same code cannot be used again, and the old low-level cookie opens nothing.
    stale = TestClient(hoviyat_app, base_url=str(browser.base_url))
    stale.cookies.set("hoviyat_session", low_cookie or "")
    third = new_interaction(hoviyat_app, make_client(hoviyat_app))
    assert "/login/identify" in stale.get(f"/login?interaction={third}").text


def test_code_attempts_are_limited(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    _interaction, page = _mobile_page(browser, hoviyat_app, person)
    otp_page = follow(browser, submit(browser, page, "/login/mobile", mobile=person["mobiles"][0]))
    code = code_in(last_text(hoviyat_app).body)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert submit(browser, otp_page, "/login/otp", otp=wrong).status_code == 400
    answer = submit(browser, otp_page, "/login/otp", otp=code)
    assert answer.status_code == 400
    assert "باطل شد" in Forms(answer.text).errors["otp"]
    assert browser.cookies.get("hoviyat_session")  # still only the low session
    # A new code works.
    resent = submit(browser, otp_page, "/login/mobile", mobile=person["mobiles"][0])
    new_code = code_in(last_text(hoviyat_app).body)
    assert submit(browser, follow(browser, resent), "/login/otp", otp=new_code).status_code == 303


def test_expired_code_is_refused(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    _interaction, page = _mobile_page(browser, hoviyat_app, person)
    otp_page = follow(browser, submit(browser, page, "/login/mobile", mobile=person["mobiles"][0]))
    code = code_in(last_text(hoviyat_app).body)
    # Three minutes pass: the stored expiry is what the check reads.
    with hoviyat_app.state.hoviyat.db.session() as session:
        session.execute(
            update(LoginOtp).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    answer = submit(browser, otp_page, "/login/otp", otp=code)
    assert answer.status_code == 400
    assert "مهلت" in Forms(answer.text).errors["otp"]


def test_codes_sent_are_limited_per_mobile_and_per_national_code(
    limited_app: FastAPI, synthetic_registry_path: Path
) -> None:
    browser = _browser_of(limited_app)
    person = next(
        p
        for skip in range(50)
        if len((p := living_with_mobile(synthetic_registry_path, skip))["mobiles"]) == 2
    )
    first, second = person["mobiles"]
    _interaction, page = _mobile_page(browser, limited_app, person)
    for _ in range(3):
        assert submit(browser, page, "/login/mobile", mobile=first).status_code == 303
    blocked = submit(browser, page, "/login/mobile", mobile=first)
    assert blocked.status_code == 429
    assert "کدهای زیادی" in Forms(blocked.text).errors["mobile"]
    assert submit(browser, page, "/login/mobile", mobile=second).status_code == 303
    # Four codes for this national code: the other number is refused too now.
    assert submit(browser, page, "/login/mobile", mobile=second).status_code == 429


def test_two_apps_in_one_process_each_follow_their_own_login_settings(
    hoviyat_settings: Settings, init_report: dict[str, Any], synthetic_registry_path: Path
) -> None:
    """Both apps exist before either is used: neither sees the other's settings."""
    strict = LoginSettings(otp_max_attempts=1, session_ttl_seconds=900)
    lenient = LoginSettings(otp_max_attempts=3, session_ttl_seconds=1800)
    with (
        app_with_login(hoviyat_settings, strict) as strict_app,
        app_with_login(hoviyat_settings, lenient) as lenient_app,
        _browser_of(strict_app) as strict_browser,
        _browser_of(lenient_app) as lenient_browser,
    ):
        runs = [
            (strict_app, strict_browser, strict, living_with_mobile(synthetic_registry_path, 0)),
            (lenient_app, lenient_browser, lenient, living_with_mobile(synthetic_registry_path, 1)),
        ]
        otp_pages, codes = [], []
        for app, browser, login, person in runs:
            interaction = new_interaction(app, make_client(app), acr_values=[SUBSTANTIAL])
            page = browser.get(f"/login?interaction={interaction}")
            identified = submit(browser, page, "/login/identify",
                                national_code=person["national_code"],
                                birth_date=person["birth_date"])  # fmt: skip
            assert identified.status_code == 303
            cookie = next(c for c in identified.headers.get_list("set-cookie") if "session=" in c)
            attributes = [part.strip() for part in cookie.split(";")]
            assert f"Max-Age={login.session_ttl_seconds}" in attributes, cookie
            mobile_page = follow(browser, identified)
            sent = submit(browser, mobile_page, "/login/mobile", mobile=person["mobiles"][0])
            codes.append(code_in(last_text(app).body))
            otp_pages.append(follow(browser, sent))
        # One wrong code each: the strict app's only attempt is spent, the lenient one has two.
        for (_app, browser, _login, _person), otp_page, code in zip(
            runs, otp_pages, codes, strict=True
        ):
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            refused = submit(browser, otp_page, "/login/otp", otp=wrong)
            assert refused.status_code == 400
            errors = Forms(refused.text).errors["otp"]
            assert ("باطل شد" in errors) is (browser is strict_browser), errors
            assert ("۲" in errors) is (browser is lenient_browser), errors
        strict_page, lenient_page = otp_pages
        strict_code, lenient_code = codes
        late = submit(strict_browser, strict_page, "/login/otp", otp=strict_code)
        assert late.status_code == 400
        assert "باطل شد" in Forms(late.text).errors["otp"]
        assert (
            submit(lenient_browser, lenient_page, "/login/otp", otp=lenient_code).status_code == 303
        )


def test_dev_outbox_cli_prints_latest_code(
    hoviyat_app: FastAPI,
    browser: TestClient,
    synthetic_registry_path: Path,
    hoviyat_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    _interaction, page = _mobile_page(browser, hoviyat_app, person)
    submit(browser, page, "/login/mobile", mobile=person["mobiles"][0])
    monkeypatch.setenv("HOVIYAT_DATABASE_URL", hoviyat_settings.resolved_database_url)
    result = CliRunner().invoke(dev_app, ["outbox", "--last", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["mobile"] == person["mobiles"][0]
    assert code_in(printed["text"]) == code_in(last_text(hoviyat_app).body)
    monkeypatch.setenv("HOVIYAT_MODE", "production")
    refused = CliRunner().invoke(dev_app, ["outbox", "--last", "--json"])
    assert refused.exit_code == 1
    assert "production" in refused.stderr


def test_outbox_cannot_exist_in_production(hoviyat_app: FastAPI, tmp_path: Path) -> None:
    with pytest.raises(OutboxForbidden, match="production"):
        DevOutbox(hoviyat_app.state.hoviyat.db, Settings(mode="production", data_dir=tmp_path))


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(
            {"auth": self.headers.get("Authorization"), "body": json.loads(body)}
        )
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


def test_http_sms_gateway_posts_the_text_and_reports_failures() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/send"
        gateway = HttpSmsGateway(url, "gw-token", 2.0)
        gateway.send("09121234567", "code 123456")
        assert _Gateway.received[-1] == {
            "auth": "Bearer gw-token",
            "body": {"to": "09121234567", "text": "code 123456"},
        }
        _Gateway.status = 503
        with pytest.raises(SmsUnavailable, match="503"):
            gateway.send("09121234567", "code 123456")
    finally:
        server.shutdown()
    with pytest.raises(SmsUnavailable, match="unreachable"):
        HttpSmsGateway(url, "", 0.5).send("09121234567", "x")
