"""Latin numbers on Persian pages, as Chromium lays them out (Unicode bidi, UAX #9).

In right-to-left Persian text the digits of ``1991-08-03`` or ``0901***2444``
follow Arabic letters, so rule W2 makes them Arabic numbers and the separators
between them neutrals that take the paragraph's direction: the parts come out
right to left (``03-08-1991``, ``2444***0901``) unless the run is isolated as
left-to-right. Only a browser's layout tells, so the test measures where the
characters are painted (a Range per character, getBoundingClientRect).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fixtures_app import LiveServer
from oidc.login_helpers import SUBSTANTIAL, living_with_mobile, make_client, new_interaction

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent: no browser to drive"
)

# The painted left edge of the first character of ``first`` and of the first
# ``last`` after it, inside the element ``selector`` (its text nodes in order).
EDGES = """([selector, first, last]) => {
  const element = document.querySelector(selector);
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  const nodes = [];
  let text = '';
  while (walker.nextNode()) {
    nodes.push([walker.currentNode, text.length]);
    text += walker.currentNode.data;
  }
  const left = (index) => {
    for (const [node, start] of nodes) {
      if (index >= start && index < start + node.data.length) {
        const range = document.createRange();
        range.setStart(node, index - start);
        range.setEnd(node, index - start + 1);
        return range.getClientRects()[0].left;
      }
    }
    return null;
  };
  const i = text.indexOf(first);
  const j = text.indexOf(last, i + first.length);
  return {text, first: i < 0 ? null : left(i), last: j < 0 ? null : left(j)};
}"""


@pytest.fixture
def page(live_server: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(java_script_enabled=True)
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def assert_left_to_right(page: Any, selector: str, first: str, last: str) -> None:
    found = page.evaluate(EDGES, [selector, first, last])
    assert found["first"] is not None and found["last"] is not None, found
    assert found["first"] < found["last"], (
        f"{first}…{last} is painted right to left in {selector}: {found['text']!r}"
    )


def test_latin_date_and_masked_mobile_read_left_to_right_on_persian_pages(
    hoviyat_app: FastAPI, live_server: LiveServer, page: Any, synthetic_registry_path: Path
) -> None:
    person = living_with_mobile(synthetic_registry_path)
    interaction = new_interaction(hoviyat_app, make_client(hoviyat_app), acr_values=[SUBSTANTIAL])
    page.goto(f"{live_server.url}/login?interaction={interaction}&lang=fa")
    assert page.evaluate("getComputedStyle(document.documentElement).direction") == "rtl"
    # The example date in the field's hint.
    assert_left_to_right(page, "#birth_date-hint", "1991", "03")

    # The same example in the error shown in place.
    page.locator("#national_code").fill(person["national_code"])
    page.locator("#birth_date").fill("not a date")
    page.locator("form[action='/login/identify'] button[type=submit]").click()
    assert_left_to_right(page, "#birth_date-error", "1991", "03")

    # The masked mobile number on the one-time-code page.
    page.locator("#birth_date").fill(person["birth_date"])
    page.locator("form[action='/login/identify'] button[type=submit]").click()
    page.locator("#mobile").fill(person["mobiles"][0])
    page.locator("form[action='/login/mobile'] button[type=submit]").click()
    mobile = person["mobiles"][0]
    assert_left_to_right(page, "main > p", mobile[:4], mobile[-4:])
