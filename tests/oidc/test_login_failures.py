"""What the citizen sees when a login is not possible: registry down, level high; the words."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from oidc.login_helpers import (
    interaction_row,
    living_with_mobile,
    make_client,
    new_interaction,
    submit,
)

from idp.attestations.verifier import STAGES
from idp.login.i18n import CLAIM_LABELS, MESSAGES
from verifiers.registry import open_registries

HIGH = "http://eidas.europa.eu/LoA/high"


@pytest.fixture
def browser(app_client: TestClient) -> TestClient:
    app_client.follow_redirects = False
    return app_client


@pytest.fixture
def registry_down(hoviyat_app: FastAPI) -> Iterator[None]:
    """The real HTTP registry adapter, pointed at a loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hoviyat = hoviyat_app.state.hoviyat
    working = hoviyat.registries
    hoviyat.registries = open_registries(
        "http", {"url": f"http://127.0.0.1:{port}", "timeout": 0.5, "retries": 0}
    )
    yield
    hoviyat.registries.close()
    hoviyat.registries = working


def test_registry_outage_says_so_and_asks_to_retry(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path, registry_down: None
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), ui_locales=["en"])
    page = browser.get(f"/login?interaction={interaction}")
    answer = submit(browser, page, "/login/identify", national_code=person["national_code"],
                    birth_date=person["birth_date"])  # fmt: skip
    assert answer.status_code == 503
    assert answer.headers["retry-after"].isdigit()
    assert "civil registry is not answering" in answer.text
    assert "hoviyat_session" not in answer.headers.get("set-cookie", "")
    assert interaction_row(hoviyat_app, interaction).completed_at is None


def test_level_high_confirms_the_mobile_before_any_high_method(
    hoviyat_app: FastAPI, browser: TestClient, synthetic_registry_path: Path
) -> None:
    """High is reached from substantial only: a session at low is sent to the mobile step,
    never straight to the passkey page (tests/oidc/test_passkeys.py goes on from there)."""
    person = living_with_mobile(synthetic_registry_path)
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[HIGH])
    page = browser.get(f"/login?interaction={interaction}")
    answer = submit(browser, page, "/login/identify", national_code=person["national_code"],
                    birth_date=person["birth_date"])  # fmt: skip
    shown = browser.get(answer.headers["location"])
    assert shown.status_code == 200
    assert 'action="/login/mobile"' in shown.text
    assert "/login/passkeys" not in shown.text and "/login/certificate" not in shown.text
    back = submit(browser, shown, "/login/cancel")
    assert back.status_code == 303
    assert interaction_row(hoviyat_app, interaction).error == "access_denied"


def test_every_message_exists_in_both_languages_with_the_same_placeholders() -> None:
    for key, (fa, en) in {**MESSAGES, **CLAIM_LABELS}.items():
        assert fa.strip() and en.strip(), key
        assert set(re.findall(r"{(\w+)}", fa)) == set(re.findall(r"{(\w+)}", en)), key
        assert re.search(r"[\u0600-\u06FF]", fa) or key == "switch", key
    templates = Path(__file__).parents[2] / "idp" / "login" / "templates"
    used: set[str] = set()
    prefixes: set[str] = set()
    for template in templates.rglob("*.html"):
        text = template.read_text()
        keys = set(re.findall(r'\bt\("([\w.]+)"', text))
        # a computed key (``t("prefix." ~ value)``): its values are checked below
        prefixes |= {key for key in keys if key.endswith(".")}
        used |= {key for key in keys if not key.endswith(".")}
        for arguments in re.findall(r"forms\.field\(([^)]*)\)", text):
            positional = [a.strip() for a in arguments.split(",") if "=" not in a][1:3]
            used |= {a.strip('"') for a in positional if a.startswith('"')}
    assert {"national_code", "birth_date.hint", "otp", "cancel"} <= used
    assert used <= set(MESSAGES), sorted(used - set(MESSAGES))
    assert prefixes == {"attest.holder.", "verify.stage.", "verify.word."}
    assert {f"verify.stage.{stage}" for stage in STAGES} <= set(MESSAGES)
    outcomes = {"passed", "failed", "skipped", "not_reached"}
    assert {f"verify.word.{outcome}" for outcome in outcomes} <= set(MESSAGES)
