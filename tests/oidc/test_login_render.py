"""A blank login form is rendered once and filled by replacement: it must read as a fresh render."""

from __future__ import annotations

import secrets

import pytest

from idp.login import render
from idp.login.i18n import EN, FA, Language


@pytest.mark.parametrize("language", [FA, EN])
@pytest.mark.parametrize("path", ["/login", "/login/identify"])
def test_a_blank_form_is_what_a_fresh_render_gives(language: Language, path: str) -> None:
    for _ in range(3):  # the first call renders and remembers, the others replace
        token = secrets.token_hex(32)
        interaction = secrets.token_urlsafe(32)
        context = {"client_name": 'Tax <portal> & "co"'}
        fresh = render._body(
            "identify.html", language, "login.title", path, token, interaction, None, None, context
        )
        filled = (
            render._blank_form("identify.html", language, "login.title", path, True, context)
            .replace(render._CSRF_MARK, token)
            .replace(render._INTERACTION_MARK, interaction)
        )
        assert filled == fresh
        assert token in filled and interaction in filled
        assert render._MARK not in filled


def test_each_client_gets_its_own_blank_form() -> None:
    first = render._blank_form(
        "identify.html", FA, "login.title", "/login", True, {"client_name": "A"}
    )
    second = render._blank_form(
        "identify.html", FA, "login.title", "/login", True, {"client_name": "B"}
    )
    assert "«A»" in first and "«B»" in second
