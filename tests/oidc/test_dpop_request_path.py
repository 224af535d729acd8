"""The URL a DPoP proof's htu is compared with is the one the request's own URL gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from idp.oauth import rfc9449


@given(st.text(min_size=0, max_size=60).map(lambda tail: "/" + tail))
def test_request_url_is_what_starlettes_url_gives(path: str) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "server": ("id.example.ir", 443),
        "path": path,
        "query_string": b"a=1",
        "headers": [(b"host", b"id.example.ir")],
    }
    issuer = "https://id.example.ir"
    fast = rfc9449.request_url(issuer, rfc9449.request_path(scope))
    assert fast == rfc9449.request_url(issuer, Request(scope).url.path)


def test_attack_query_or_fragment_smuggled_in_the_path_cannot_match_a_bare_htu() -> None:
    """A decoded '?' in the path stays escaped, so /token?x is never the URL /token."""
    scope = {"type": "http", "path": "/token?x", "headers": []}
    url = rfc9449.request_url("https://id.example.ir", rfc9449.request_path(scope))
    assert url != "https://id.example.ir/token"
