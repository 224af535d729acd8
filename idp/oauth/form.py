"""The urlencoded request body of the OAuth endpoints (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1).

One parser for /token, /introspect and /revoke: the body must be
``application/x-www-form-urlencoded`` UTF-8, no parameter may appear twice,
and every refusal is an OAuth ``invalid_request`` (§5.2), which OAuth client
libraries parse. A NUL byte is refused here too: no OAuth value holds one, and
PostgreSQL cannot store it, so it must not reach a query and come back as an
RFC 9457 problem where the client expects an OAuth error. The standard
library's parser is enough: no multipart here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from idp.oauth.errors import OAuthError

MAX_PARAMETERS = 64


async def oauth_form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send parameters as application/x-www-form-urlencoded")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the body is not UTF-8") from None
    try:
        fields = parse_qsl(
            text, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMETERS
        )
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "a percent-encoded value is not UTF-8") from None
    except ValueError:
        raise OAuthError("invalid_request", f"send at most {MAX_PARAMETERS} parameters") from None
    form: dict[str, str] = {}
    for key, value in fields:
        if "\x00" in key or "\x00" in value:
            raise OAuthError("invalid_request", "a parameter holds a NUL byte")
        if key in form:
            raise OAuthError("invalid_request", f"parameter {key} is repeated")
        form[key] = value
    return form
