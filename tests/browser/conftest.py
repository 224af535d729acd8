"""What every browser test stands on: one database backend and one Chromium per module.

What a browser shows does not depend on the database, so these tests run on
SQLite alone (the pages' logic runs on both backends elsewhere); the app is
served on loopback by the suite's ``live_server`` (tests/fixtures_app.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.chromium import ARGS, CHROMIUM


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    template = request.getfixturevalue("_sqlite_template")
    path = tmp_path / "hoviyat.db"
    path.write_bytes(Path(template).read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser process for the module; each test makes its own contexts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
