"""The authorization request (OIDC Core §3.1.2.1, RFC 6749 §4.1.1, RFC 9700 §2.1).

Validation happens in two phases, as OIDC Core §3.1.2.6 and RFC 6749 §4.1.2.1
require: until the client and its exact redirect URI are known, an error is
shown to the user (:class:`AuthorizeFatal`, never a redirect, so a forged
request cannot turn Hoviyat into an open redirector); after that, errors go back
to the client's redirect URI (:class:`AuthorizeRedirectError`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlencode, urlsplit

from idp.oidc import rfc7636
from idp.oidc.claims import SUPPORTED_SCOPES, ClaimsRequestError, parse_claims_request
from idp.storage.models import Client
from policies.assurance import LEVELS

PROMPT_VALUES = ("none", "login", "consent")
UI_LOCALES = ("fa", "en")
RESPONSE_TYPES = ("code",)
RESPONSE_MODES = ("query", "jwt", "query.jwt")  # JARM §2.3.1 for the last two
_MAX_PARAM = 2000
JWK_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


class AuthorizeFatal(ValueError):
    """An error shown to the user: there is no redirect URI it is safe to send them to.

    ``kind`` says what to tell the citizen: ``client`` (unknown, disabled or not
    for this flow), ``redirect_uri`` (missing or not registered) or ``request``.
    ``error`` is the OAuth error code a program is told, when there is one
    (``invalid_request_uri``, RFC 9126 §4).
    """

    def __init__(self, description: str, kind: str = "request", error: str | None = None) -> None:
        super().__init__(description)
        self.kind = kind
        self.error = error


@dataclass
class AuthorizeRedirectError(Exception):
    """An error answered to the client at its (validated) redirect URI (RFC 6749 §4.1.2.1)."""

    error: str
    description: str
    redirect_uri: str
    state: str | None
    # Known once the client is: a JWT response mode (JARM) signs the error too.
    client: Client | None = None
    response_mode: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: list[str]
    state: str | None
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    acr_values: list[str] = field(default_factory=list)
    prompt: list[str] = field(default_factory=list)
    max_age: int | None = None
    login_hint: str | None = None
    ui_locales: list[str] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)
    dpop_jkt: str | None = None  # RFC 9449 §10
    response_mode: str = "query"

    def to_params(self) -> dict[str, Any]:
        """The JSON stored in the interaction's ``params`` column (the login pages read it)."""
        # Not dataclasses.asdict: its recursive deep copy cost more than the rest of
        # building an interaction. The values are strings, numbers, lists of
        # strings and the parsed claims request, which nothing changes in place.
        params = {name: getattr(self, name) for name in _PARAM_NAMES}
        for name in ("scope", "acr_values", "prompt", "ui_locales"):
            params[name] = list(params[name])
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any], client_id: str) -> AuthorizationRequest:
        """Rebuild from an interaction row; raises ValueError when the row lacks a member.

        Members are read by name (unknown ones ignored, optional ones defaulted),
        so a row written by an older version or by hand still reads safely.
        """
        names = {member.name for member in fields(cls)}
        values = {key: value for key, value in params.items() if key in names}
        values["client_id"] = client_id
        values["claims"] = values.get("claims") or {}
        for optional in ("state", "nonce"):
            values.setdefault(optional, None)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(f"stored authorization request is incomplete: {exc}") from None


_PARAM_NAMES = tuple(member.name for member in fields(AuthorizationRequest))

# Every parameter :func:`validate` reads: what a pushed request (RFC 9126) keeps
# for /authorize. Client authentication and unknown parameters are not kept.
PARAMETERS = (
    "client_id",
    "redirect_uri",
    "state",
    "request",
    "request_uri",
    "registration",
    "response_type",
    "response_mode",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "prompt",
    "max_age",
    "acr_values",
    "claims",
    "ui_locales",
    "login_hint",
    "dpop_jkt",
)


def redirect_with(redirect_uri: str, values: Mapping[str, str | None]) -> str:
    """Append response parameters to the registered URI, keeping its own query (§3.1.2.5)."""
    query = urlencode({key: value for key, value in values.items() if value is not None})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{separator}{query}"


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise ValueError(f"parameter {name} is repeated")
    if not values or values[0] == "":
        return None
    if len(values[0]) > _MAX_PARAM:
        raise ValueError(f"parameter {name} is longer than {_MAX_PARAM} characters")
    return values[0]


def validate(
    params: Mapping[str, Sequence[str]],
    find_client: Callable[[str], Client | None],
    *,
    pushed: bool = False,
    require_par: bool = False,
    signed: bool = False,
) -> tuple[Client, AuthorizationRequest]:
    """Check an authorization request; ``params`` maps each name to all its values.

    ``pushed``: the parameters came through /par (RFC 9126), from an
    authenticated client. ``require_par``: every request must (the deployment's
    setting); a client can require it for itself alone. ``signed``: the
    parameters are those of a verified request object (RFC 9101,
    :mod:`idp.oidc.rfc9101`); a client can require them. A pushed request was
    held to that when it was pushed (:func:`idp.oidc.rfc9126.push`).
    """
    # Phase 1: client and redirect URI. Errors here are shown, never redirected.
    try:
        client_id = _single(params, "client_id")
        redirect_uri = _single(params, "redirect_uri")
    except ValueError as exc:
        raise AuthorizeFatal(str(exc)) from None
    if not client_id:
        raise AuthorizeFatal("client_id is missing")
    client = find_client(client_id)
    if client is None or client.disabled:
        raise AuthorizeFatal(f"client {client_id!r} is unknown or disabled", "client")
    if "authorization_code" not in client.grant_types:
        raise AuthorizeFatal(f"client {client_id!r} is not registered for the code flow", "client")
    if not redirect_uri:
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED, even with one registered URI.
        raise AuthorizeFatal("redirect_uri is missing", "redirect_uri")
    # RFC 9700 §4.1.3 / §2.1: exact string comparison, no prefix or pattern.
    if redirect_uri not in client.redirect_uris:
        raise AuthorizeFatal(
            "redirect_uri does not exactly match one registered for this client", "redirect_uri"
        )

    try:
        response_mode = _single(params, "response_mode")
    except ValueError:
        response_mode = None

    def fail(error: str, description: str, state: str | None) -> AuthorizeRedirectError:
        return AuthorizeRedirectError(
            error, description, redirect_uri, state, client, response_mode
        )

    try:
        state = _single(params, "state")
    except ValueError as exc:
        raise fail("invalid_request", str(exc), None) from None
    if not pushed and (require_par or client.require_pushed_authorization_requests):
        # RFC 9126 §5/§6: the redirect URI is registered, so the refusal may go there.
        raise fail(
            "invalid_request", "this authorization request must be pushed first (RFC 9126)", state
        )
    if not pushed and not signed and client.require_signed_request_object:
        # RFC 9101 §10.5: the redirect URI is registered, so the refusal may go there.
        raise fail(
            "invalid_request",
            "this client's authorization requests must be signed request objects (RFC 9101)",
            state,
        )
    try:
        return client, _validate_rest(params, client_id, redirect_uri, state)
    except ValueError as exc:
        raise fail("invalid_request", str(exc), state) from None
    except _Refused as exc:
        raise fail(exc.error, exc.description, state) from None


class _Refused(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _validate_rest(
    params: Mapping[str, Sequence[str]], client_id: str, redirect_uri: str, state: str | None
) -> AuthorizationRequest:
    if _single(params, "request") is not None:
        # Request objects are unpacked before (idp.oidc.rfc9101); one left here is nested.
        raise _Refused("invalid_request_object", "a request object cannot be nested")
    if _single(params, "request_uri") is not None:
        raise _Refused("request_uri_not_supported", "request_uri is not supported")
    if _single(params, "registration") is not None:
        raise _Refused("registration_not_supported", "registration is not supported")
    response_type = _single(params, "response_type")
    if response_type not in RESPONSE_TYPES:
        # RFC 9700 §2.1.2: no implicit or hybrid flow.
        raise _Refused(
            "unsupported_response_type", f"response_type must be 'code', not {response_type!r}"
        )
    response_mode = _single(params, "response_mode") or "query"
    if response_mode not in RESPONSE_MODES:
        raise ValueError(
            f"response_mode {response_mode!r} is not supported; use one of {list(RESPONSE_MODES)}"
        )
    scope = (_single(params, "scope") or "").split()
    if "openid" not in scope:
        raise _Refused("invalid_scope", "scope must include openid")
    unknown = sorted(set(scope) - set(SUPPORTED_SCOPES))
    if unknown:
        raise _Refused("invalid_scope", f"unsupported scope values: {' '.join(unknown)}")
    try:
        challenge = rfc7636.check_challenge(
            _single(params, "code_challenge"), _single(params, "code_challenge_method")
        )
    except rfc7636.PKCEError as exc:
        raise ValueError(str(exc)) from None
    nonce = _single(params, "nonce")
    if nonce is not None and len(nonce) > 255:
        raise ValueError("nonce is longer than 255 characters")
    prompt = (_single(params, "prompt") or "").split()
    unknown = sorted(set(prompt) - set(PROMPT_VALUES))
    if unknown:
        raise ValueError(f"unsupported prompt values: {' '.join(unknown)}")
    if "none" in prompt and len(prompt) > 1:
        # OIDC Core §3.1.2.1: none must not be combined with any other value.
        raise ValueError("prompt=none cannot be combined with other values")
    raw_max_age = _single(params, "max_age")
    max_age = None
    if raw_max_age is not None:
        if not raw_max_age.isdigit() or len(raw_max_age) > 9:
            raise ValueError("max_age must be a non-negative number of seconds")
        max_age = int(raw_max_age)
    acr_values = (_single(params, "acr_values") or "").split()
    unknown = sorted(set(acr_values) - set(LEVELS))
    if unknown:
        raise ValueError(f"unsupported acr_values: {' '.join(unknown)}; use {' '.join(LEVELS)}")
    try:
        claims = parse_claims_request(_single(params, "claims"))
    except ClaimsRequestError as exc:
        raise ValueError(str(exc)) from None
    acr_claim = claims.get("id_token", {}).get("acr")
    if isinstance(acr_claim, dict) and not acr_values:
        # §5.5.1.1: an acr requested through the claims parameter works like acr_values.
        wanted = acr_claim.get("values") or [acr_claim.get("value")]
        acr_values = [value for value in wanted if value in LEVELS]
    ui_locales = (_single(params, "ui_locales") or "").split()
    dpop_jkt = _single(params, "dpop_jkt")
    if dpop_jkt is not None and not JWK_THUMBPRINT.fullmatch(dpop_jkt):
        # RFC 9449 §10: the base64url SHA-256 JWK thumbprint (RFC 7638) of the client's key.
        raise ValueError("dpop_jkt must be a base64url SHA-256 JWK thumbprint (43 characters)")
    login_hint = _single(params, "login_hint")
    if login_hint is not None and len(login_hint) > 64:
        raise ValueError("login_hint is longer than 64 characters")
    return AuthorizationRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        code_challenge_method="S256",
        acr_values=acr_values,
        prompt=prompt,
        max_age=max_age,
        login_hint=login_hint,
        # §3.1.2.1: unsupported locales are ignored, not errors.
        ui_locales=[tag for tag in ui_locales if tag.split("-")[0] in UI_LOCALES],
        claims=claims,
        dpop_jkt=dpop_jkt,
        response_mode=response_mode,
    )
