"""No national code, legal-entity identifier or mobile number reaches a log line.

The audit log keeps subjects only as peppered hashes; a server log with the
identifiers in clear would undo that. Every verification, login and
reconciliation path runs over the HTTP registry adapter (registry server on
loopback), once in process with every logger captured at DEBUG, once as
``hoviyat serve`` in a subprocess whose stderr is searched.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixtures_app import client_token, free_port
from oidc.login_helpers import Forms, code_in, submit
from oidc.oidc_support import (
    authorization_params,
    exchange,
    login_page,
    pkce_pair,
    query_of,
    register_rp,
)

from idp.logging import REDACTED, RedactingFilter, configure_logging
from idp.settings import Settings
from verifiers.digits import PERSIAN_DIGITS
from verifiers.registry.synthetic import export

HOVIYAT = [sys.executable, "-m", "idp.cli"]
SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


@dataclass(frozen=True)
class Cast:
    """The people and entity whose identifiers every path below handles."""

    citizen: dict[str, Any]
    representative: dict[str, Any]
    entity: dict[str, Any]
    stranger_code: str = "0499370899"  # checksum-valid, not in the synthetic registry

    @property
    def identifiers(self) -> set[str]:
        mobile = self.citizen["mobiles"][0]
        found = {
            self.citizen["national_code"],
            self.representative["national_code"],
            self.entity["national_id"],
            self.stranger_code,
            mobile,
            "+98" + mobile[1:],
            "98" + mobile[1:],
        }
        persian = str.maketrans("0123456789", PERSIAN_DIGITS)
        return found | {value.translate(persian) for value in found}


@pytest.fixture(scope="module")
def cast(synthetic_registry_path: Path) -> Cast:
    people = {p["national_code"]: p for p in export(synthetic_registry_path, "persons", 2000)}
    citizen = next(p for p in people.values() if p["alive"] and p["mobiles"])
    today = date.today().isoformat()
    for entity in export(synthetic_registry_path, "entities", 300):
        for rep in entity["representatives"]:
            person = people.get(rep["national_code"])
            current = rep["valid_from"] <= today and (rep["valid_until"] or "9999") >= today
            if entity["status"] == "active" and current and person and person["alive"]:
                return Cast(citizen=citizen, representative=person, entity=entity)
    raise AssertionError("no active entity with a living current representative")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def verify_everything(client: Any, token: str, cast: Cast) -> None:
    """Every verification endpoint, with matches, mismatches, unknowns and invalid input."""
    citizen, rep, entity = cast.citizen, cast.representative, cast.entity
    mobile = citizen["mobiles"][0]
    calls: list[tuple[str, dict[str, Any]]] = [
        ("/v1/persons/verify", {"national_code": citizen["national_code"],
                                "birth_date": citizen["birth_date"]}),
        ("/v1/persons/verify", {"national_code": citizen["national_code"],
                                "birth_date": "1300-01-01"}),
        ("/v1/persons/verify", {"national_code": cast.stranger_code}),
        ("/v1/persons/verify", {"national_code": citizen["national_code"][:-1] + "x"}),
        ("/v1/mobile/verify", {"national_code": citizen["national_code"],
                               "mobile": "+98" + mobile[1:]}),
        ("/v1/mobile/verify", {"national_code": cast.stranger_code, "mobile": mobile}),
        ("/v1/mobile/verify", {"national_code": citizen["national_code"], "mobile": mobile[:5]}),
        ("/v1/legal-entities/verify", {"national_id": entity["national_id"],
                                       "name": entity["name"]}),
        ("/v1/legal-entities/verify", {"national_id": entity["national_id"][:-1] + "0"}),
        (f"/v1/legal-entities/{entity['national_id']}/representatives/verify",
         {"national_code": rep["national_code"]}),
        (f"/v1/legal-entities/{entity['national_id']}/representatives/verify",
         {"national_code": cast.stranger_code}),
    ]  # fmt: skip
    for path, body in calls:
        answer = client.post(path, json=body, headers=_bearer(token))
        assert answer.status_code in (200, 422), (path, answer.text)
    validated = client.get(
        "/v1/identifiers/validate",
        params={"national_code": citizen["national_code"], "national_id": entity["national_id"]},
        headers=_bearer(token),
    )
    assert validated.status_code == 200, validated.text


def reconcile(client: Any, token: str, cast: Cast) -> None:
    """A legacy file through /v1/reconciliations, to its result."""
    citizen, rep = cast.citizen, cast.representative
    rows = [
        "national_code,first_name,last_name,birth_date",
        f"{citizen['national_code']},{citizen['first_name']},x,{citizen['birth_date']}",
        f"{rep['national_code'][2:]},{rep['first_name']},{rep['last_name']},",
        f"{cast.stranger_code},a,b,1360-01-01",
        f"{citizen['national_code']}9,a,b,",
    ]
    created = client.post(
        "/v1/reconciliations",
        content="\r\n".join(rows).encode(),
        headers={**_bearer(token), "Content-Type": "text/csv"},
    )
    assert created.status_code == 202, created.text
    job = created.json()["id"]
    deadline = time.monotonic() + 60
    while (state := client.get(f"/v1/reconciliations/{job}", headers=_bearer(token)).json())[
        "state"
    ] != "completed":
        assert state["state"] in ("queued", "running"), state
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    result = client.get(f"/v1/reconciliations/{job}/result", headers=_bearer(token))
    assert result.status_code == 200, result.text


def log_in(
    browser: Any,
    client_id: str,
    secret: str,
    redirect_uri: str,
    person: dict[str, Any],
    last_sms: Callable[[], str],
    *,
    entity_id: str | None = None,
) -> None:
    """The login pages as a browser drives them, then the token and userinfo endpoints."""
    from oidc.oidc_support import RelyingParty

    rp = RelyingParty(client_id, secret, redirect_uri)
    verifier, challenge = pkce_pair()
    scope = "openid profile phone national_code" + (" legal_entity" if entity_id else "")
    params = authorization_params(
        rp, challenge, scope=scope, acr_values=None if entity_id else SUBSTANTIAL
    )
    page = login_page(browser, browser.get("/authorize", params=params))
    fields = {
        "/login/identify": {"national_code": person["national_code"],
                            "birth_date": person["birth_date"]},
        "/login/mobile": {"mobile": person["mobiles"][0] if person["mobiles"] else ""},
        "/login/entity": {"entity_national_id": entity_id or ""},
        "/login/consent": {"decision": "allow"},
    }  # fmt: skip
    for _step in range(8):
        actions = [form["action"] for form in Forms(page.text).forms]
        # The one-time-code page also offers the mobile form (another number): code first.
        order = (
            "/login/otp",
            "/login/consent",
            "/login/entity",
            "/login/identify",
            "/login/mobile",
        )
        action = next((a for a in order if a in actions), None)
        assert action is not None, page.text
        filled = {"otp": code_in(last_sms())} if action == "/login/otp" else fields[action]
        response = submit(browser, page, action, **filled)
        # Our own redirects are followed; the one that leaves for the client ends the login.
        while response.status_code in (302, 303) and response.headers["location"].startswith("/"):
            response = browser.get(response.headers["location"], follow_redirects=False)
        if response.status_code in (302, 303):
            location = response.headers["location"]
            break
        assert response.status_code == 200, response.text
        page = response
    else:
        pytest.fail("the login did not finish in 8 steps")
    code = query_of(location)["code"]
    tokens = exchange(browser, rp, code, verifier)
    assert tokens.status_code == 200, tokens.text
    info = browser.get("/userinfo", headers=_bearer(tokens.json()["access_token"]))
    assert info.status_code == 200, info.text


def _leaks(texts: list[str], identifiers: set[str]) -> list[str]:
    return [
        f"{found!r} in {text[:300]!r}" for text in texts for found in identifiers if found in text
    ]


def _record_text(record: logging.LogRecord) -> str:
    extras = {k: v for k, v in record.__dict__.items() if k not in STANDARD}
    return " ".join(
        (record.getMessage(), repr(extras), record.exc_text or "", repr(record.exc_info or ""))
    )


# --- in process, every logger at DEBUG ------------------------------------------------------


@pytest.fixture
def hoviyat_settings(
    tmp_path: Path, database_url: str, registry_server: Any, server_port: int
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        registry_adapter="http",
        registry_url=registry_server.url,
        issuer=f"http://127.0.0.1:{server_port}",
    )


@pytest.fixture
def debug_everywhere(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG on the root and on the loggers a logging setup may have quietened."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "hoviyat", "uvicorn", "uvicorn.access", "idp"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


def test_attack_identifiers_harvested_from_debug_logs_of_every_path_find_none(
    hoviyat_app: FastAPI,
    app_client: TestClient,
    demo_clients: dict[str, str],
    cast: Cast,
    debug_everywhere: pytest.LogCaptureFixture,
) -> None:
    from idp.login.sms import latest_message

    assert hoviyat_app.state.hoviyat.registries.blocking  # the HTTP adapter is in use
    bank = client_token(app_client, "demo-bank", demo_clients["demo-bank"])
    verify_everything(app_client, bank, cast)
    reconcile(app_client, bank, cast)
    rp = register_rp(hoviyat_app, "rp-logs")

    def last_sms() -> str:
        message = latest_message(hoviyat_app.state.hoviyat.db)
        assert message is not None
        return message.body

    assert rp.client_secret
    app_client.follow_redirects = False
    log_in(app_client, rp.client_id, rp.client_secret, rp.redirect_uri, cast.citizen, last_sms)
    app_client.cookies.clear()
    log_in(app_client, rp.client_id, rp.client_secret, rp.redirect_uri, cast.representative,
           last_sms, entity_id=cast.entity["national_id"])  # fmt: skip

    # The test's own client logs its requests to the app as any caller's would;
    # those lines are the caller's, not the server's.
    issuer = hoviyat_app.state.hoviyat.settings.issuer
    records = [
        r
        for r in debug_everywhere.records
        if not (r.name.startswith("httpx") and issuer in r.getMessage())
    ]
    assert any(r.name.startswith("httpx") for r in records), "httpx was not captured at all"
    assert any(r.name.startswith("httpcore") for r in records), "httpcore was not captured"
    assert _leaks([_record_text(r) for r in records], cast.identifiers) == []


# --- hoviyat serve in a subprocess -------------------------------------------------------------


def test_attack_identifiers_harvested_from_the_stderr_of_hoviyat_serve_find_none(
    tmp_path: Path, registry_server: Any, synthetic_registry_path: Path, cast: Cast
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path / "hoviyat.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOVIYAT_")}
    env.update(
        HOVIYAT_DATA_DIR=str(tmp_path / "data"),
        HOVIYAT_DATABASE_URL=f"sqlite:///{database}",
        HOVIYAT_REGISTRY_PATH=str(synthetic_registry_path),
        HOVIYAT_REGISTRY_ADAPTER="http",
        HOVIYAT_REGISTRY_URL=registry_server.url,
        HOVIYAT_ISSUER=url,
        HOVIYAT_LOG_LEVEL="DEBUG",
    )
    done = subprocess.run([*HOVIYAT, "init", "--json"], env=env, capture_output=True, check=True)
    secrets = {c["client_id"]: c["client_secret"] for c in json.loads(done.stdout)["demo_clients"]}
    stderr_path = tmp_path / "serve.stderr"
    with open(stderr_path, "wb") as stderr:
        server = subprocess.Popen([*HOVIYAT, "serve", "--port", str(port)], env=env, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, "hoviyat serve did not become ready"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)

        def last_sms() -> str:
            with sqlite3.connect(database) as connection:
                row = connection.execute(
                    "SELECT body FROM dev_outbox ORDER BY id DESC LIMIT 1"
                ).fetchone()
            assert row is not None
            return str(row[0])

        with httpx.Client(base_url=url, timeout=30) as client:
            bank = client_token(client, "demo-bank", secrets["demo-bank"])
            verify_everything(client, bank, cast)
            reconcile(client, bank, cast)
            portal = ("demo-portal", secrets["demo-portal"], "http://127.0.0.1:9000/callback")
            log_in(client, *portal, cast.citizen, last_sms)
            client.cookies.clear()
            log_in(client, *portal, cast.representative, last_sms,
                   entity_id=cast.entity["national_id"])  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    lines = stderr_path.read_text(encoding="utf-8", errors="replace").splitlines()
    assert lines, "hoviyat serve wrote nothing at DEBUG"
    assert _leaks(lines, cast.identifiers) == []


# --- the redacting filter, defence in depth ---------------------------------------------------


@pytest.mark.parametrize(
    "leaky",
    [
        "lookup of 0499370899 failed",
        "entity 10380284790 unknown",
        "sms to 09121234567",
        "sms to +98 912 123 4567",
        "sms to 0098-912-123-4567",
        "code ۰۴۹۹۳۷۰۸۹۹ typed in Persian",
        "code ٠٤٩٩٣٧٠٨٩٩ typed in Arabic-Indic",
        "code 049\u200c937\u200b0899 with zero-width characters",
        "subject PNOIR-0499370899",
    ],
)
def test_attack_identifier_in_a_careless_log_call_is_redacted(leaky: str) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG")
    root = logging.getLogger()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        logging.getLogger("hoviyat.careless").info("%s", leaky, extra={"detail": {"x": leaky}})
        try:
            raise ValueError(leaky)
        except ValueError:
            logging.getLogger("hoviyat.careless").exception("failed")
    finally:
        root.handlers[:] = []
        logging.getLogger("httpx").setLevel(logging.NOTSET)
        logging.getLogger("httpcore").setLevel(logging.NOTSET)
    written = stream.getvalue()
    assert REDACTED in written
    for digits in ("0499370899", "10380284790", "9121234567", "۰۴۹۹۳۷۰۸۹۹", "٠٤٩٩٣٧٠٨٩٩"):
        assert digits not in written
    assert "912 123 4567" not in written and "912-123-4567" not in written
    for line in written.splitlines():
        json.loads(line)


def test_redacting_filter_leaves_tracking_codes_dates_and_counts_alone() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "job %s done: %d rows on %s",
            "args": ("01JB2X9K4M7Q8R1S2T3V4W5X6Y", 1200, "2026-12-05"),
        }
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "job 01JB2X9K4M7Q8R1S2T3V4W5X6Y done: 1200 rows on 2026-12-05"
