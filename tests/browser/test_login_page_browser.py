"""The login page in a real browser (Debian's headless Chromium through Playwright).

Checks what only a browser can tell: the computed text direction of the
document in each language, that every visible input has a label the
accessibility tree associates with it, that a login runs without JavaScript
problems under the CSP, and that the page paints (a screenshot of some size).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.chromium import needs_chromium
from fastapi import FastAPI
from fixtures_app import LiveServer
from oidc.login_helpers import living_with_mobile, make_client, new_interaction

pytestmark = needs_chromium


def _page(chromium: Any, javascript: bool) -> tuple[Any, Any]:
    context = chromium.new_context(java_script_enabled=javascript)
    messages: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: messages.append(m.text))
    page.console_messages = messages
    return context, page


@pytest.fixture
def browser_page(chromium: Any, live_server: LiveServer) -> Iterator[Any]:
    context, page = _page(chromium, javascript=True)
    yield page
    context.close()


@pytest.fixture
def page_without_javascript(chromium: Any, live_server: LiveServer) -> Iterator[Any]:
    """Server-rendered forms must work for a browser that runs no script at all."""
    context, page = _page(chromium, javascript=False)
    yield page
    context.close()


LABELLED = """() => Array.from(document.querySelectorAll('input:not([type=hidden])')).map(i => ({
    id: i.id,
    labels: Array.from(i.labels).map(l => l.textContent.trim()),
}))"""


HEADING_TEXT_EDGES = """() => {
    const range = document.createRange();
    range.selectNodeContents(document.querySelector('h1'));
    const box = range.getBoundingClientRect();
    return [box.left, box.right];
}"""


@pytest.mark.parametrize(
    ("lang", "direction", "label"), [("fa", "rtl", "کد ملی"), ("en", "ltr", "National code")]
)
def test_login_page_direction_labels_and_screenshot(
    hoviyat_app: FastAPI,
    live_server: LiveServer,
    browser_page: Any,
    tmp_path: Path,
    lang: str,
    direction: str,
    label: str,
) -> None:
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app))
    response = browser_page.goto(f"{live_server.url}/login?interaction={interaction}&lang={lang}")
    assert response.status == 200
    computed = browser_page.evaluate("getComputedStyle(document.documentElement).direction")
    assert computed == direction
    assert browser_page.evaluate("document.documentElement.lang") == lang
    fields = browser_page.evaluate(LABELLED)
    assert {f["id"] for f in fields} == {"national_code", "birth_date"}
    for field in fields:
        assert field["labels"], f"input {field['id']} has no label"
    assert label in [text for f in fields for text in f["labels"]]
    # The stylesheet loaded under the CSP (it sets the body background).
    background = browser_page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(246, 248, 250)"
    # Right-to-left really lays out from the right: the heading starts near the right edge.
    box = browser_page.locator("h1").bounding_box()
    width = browser_page.evaluate("document.documentElement.clientWidth")
    text_left, text_right = browser_page.evaluate(HEADING_TEXT_EDGES)
    middle = box["x"] + box["width"] / 2
    if direction == "rtl":
        assert text_right > middle
        assert text_left > box["x"] + 1
    else:
        assert text_left < middle
    assert width > 0
    shot = tmp_path / f"login-{lang}.png"
    browser_page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert not [m for m in browser_page.console_messages if "Content Security Policy" in m]


def test_login_works_without_javascript_and_shows_errors_in_place(
    hoviyat_app: FastAPI,
    live_server: LiveServer,
    page_without_javascript: Any,
    synthetic_registry_path: Path,
) -> None:
    page = page_without_javascript
    person = living_with_mobile(synthetic_registry_path)
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app))
    page.goto(f"{live_server.url}/login?interaction={interaction}&lang=en")
    page.get_by_label("National code").fill(person["national_code"])
    page.get_by_label("Date of birth").fill("1300/01/01")
    page.get_by_role("button", name="Continue").click()
    error = page.locator("#birth_date-error")
    assert "do not match" in error.inner_text()
    assert page.get_by_label("Date of birth").get_attribute("aria-invalid") == "true"
    page.get_by_label("Date of birth").fill(person["birth_date_jalali"])
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("heading", name="Permission").is_visible()
    assert "date of birth" in page.locator("ul.claims").inner_text()
