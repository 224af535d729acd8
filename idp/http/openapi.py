"""The OpenAPI document as a contract: who may call each operation, and every answer it gives.

FastAPI describes bodies and parameters; it knows nothing of Hoviyat's
front door, its problem documents or its tokens. This module completes the
document once, when it is first asked for:

- ``components.securitySchemes``: client-credentials access tokens
  (RFC 6749 §4.4, RFC 9068), a person's OpenID Connect access token, the
  login-session cookie, and HTTP Basic client authentication (RFC 6749 §2.3.1)
  at the OAuth endpoints;
- each operation's ``security`` (with the policy operation as its scope) and
  an ``Access`` paragraph naming the roles it needs, read from the route's
  dependencies (:func:`idp.http.auth.require_role`) so they cannot drift;
- every status an operation can answer: the front door's (400 for a NUL byte
  in the query, 413, 415), authentication's (401, 403), validation's (422)
  and the handler's own (:data:`HANDLER_STATUSES`), each as
  ``application/problem+json`` (RFC 9457), or as an RFC 6749 §5.2 error
  object at the OAuth endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from idp.http.auth import require_client, token_claims
from idp.login.sessions import cookie_name
from idp.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDocument"}
OAUTH_ERROR_REF = {"$ref": "#/components/schemas/OAuthError"}

CLIENT_TOKEN = "clientCredentials"  # noqa: S105  # a scheme name
PERSON_TOKEN = "personAccessToken"  # noqa: S105  # a scheme name
LOGIN_SESSION = "loginSession"
CLIENT_BASIC = "clientSecretBasic"

MEANINGS = {
    400: "Malformed request: a NUL byte in the query, malformed JSON, or a refused value",
    401: "Missing or unacceptable credentials (an access token, or client authentication)",
    403: "The client's roles or service policy do not allow this operation",
    404: "No such resource",
    409: "The resource is not in a state that allows this",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid field or parameter (the problem names it and the rule)",
    429: "Rate limit of the service policy reached (see Retry-After)",
    503: "A registry, the signing service or the database cannot answer now (see Retry-After)",
}

OAUTH_ENDPOINTS = frozenset({"/token", "/introspect", "/revoke", "/par"})

# What a handler itself answers beyond what its dependencies and the front door do.
HANDLER_STATUSES: dict[str, tuple[int, ...]] = {
    "POST /v1/persons/verify": (429, 503),
    "POST /v1/mobile/verify": (429, 503),
    "POST /v1/legal-entities/verify": (429, 503),
    "POST /v1/legal-entities/{national_id}/representatives/verify": (429, 503),
    "GET /v1/identifiers/validate": (429,),
    "GET /v1/audit/proofs/inclusion": (404,),
    "GET /v1/audit/proofs/consistency": (),
    "GET /v1/audit/checkpoint": (404,),
    "GET /v1/me/access-history": (),
    "POST /v1/certificates": (409, 503),
    "GET /v1/certificates/{serial}": (404,),
    "POST /v1/certificates/{serial}/revoke": (404,),
    "GET /ca/{publication}.crt": (404,),
    "GET /crl/{file_name}": (404, 503),
    "GET /v1/attestations": (),
    "POST /v1/attestations": (409, 503),
    "POST /v1/attestations/{attestation_id}/revoke": (404,),
    "POST /v1/attestations/shares": (404,),
    "POST /v1/attestations/verify": (),
    "GET /v1/attestations/status-lists/{list_id}": (404,),
    "POST /v1/reconciliations": (409, 429),
    "GET /v1/reconciliations/{job_id}": (404,),
    "GET /v1/reconciliations/{job_id}/result": (404, 409),
    "GET /v1/admin/clients/{client_id}": (404,),
    "POST /v1/admin/clients/{client_id}/disable": (404,),
    "POST /v1/acme/eab-keys": (503,),  # the deeds registry cannot answer
    "DELETE /v1/acme/eab-keys/{kid}": (404, 409),
    "POST /v1/clients/initial-tokens": (503,),  # the deeds registry cannot answer
    "DELETE /v1/clients/initial-tokens/{token_id}": (404, 409),
    "POST /v1/clients/statement-issuers": (503,),
    "POST /v1/clients/statement-issuers/revoke": (404, 409),
    "GET /userinfo": (403, 503),
    "POST /userinfo": (403, 503),
    "POST /logout": (403,),  # the confirmation form without its CSRF token or from another site
}

# Operations that never touch the database; every other one answers 503 with
# Retry-After while the store is unreachable or its writer cannot commit.
STORELESS = frozenset({"GET /healthz", "GET /metrics"})

# The policy operation (and token scope) an operation needs, where it needs one.
SCOPES: dict[str, str] = {
    "POST /v1/persons/verify": "persons.verify",
    "POST /v1/mobile/verify": "mobile.verify",
    "POST /v1/legal-entities/verify": "legal_entities.verify",
    "POST /v1/legal-entities/{national_id}/representatives/verify": "representatives.verify",
    "GET /v1/identifiers/validate": "identifiers.validate",
    "POST /v1/reconciliations": "reconciliations.create",
    "GET /v1/reconciliations/{job_id}": "reconciliations.create",
    "GET /v1/reconciliations/{job_id}/result": "reconciliations.create",
}

# Operations whose handler reads a token itself rather than through a dependency.
PERSON_TOKEN_OPERATIONS = frozenset(
    {
        "POST /v1/attestations/{attestation_id}/revoke",
        "POST /v1/attestations/shares",
        "GET /userinfo",
        "POST /userinfo",
    }
)


def _strings(*names: str) -> dict[str, Any]:
    # No maxLength: the front door's body and header limits bound them, not the schema.
    return {name: {"type": "string"} for name in names}


_AUTHORIZE_PARAMS = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt",
    "max_age", "acr_values", "claims", "ui_locales", "login_hint", "response_mode",
    "code_challenge", "code_challenge_method", "request",
)  # fmt: skip
_LOGOUT_PARAMS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "ui_locales")
_CLIENT_AUTH_PARAMS = ("client_id", "client_secret", "client_assertion_type", "client_assertion")


def _form(required: tuple[str, ...], *names: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": _strings(*names)}
    if required:
        schema["required"] = list(required)
    return {
        "required": bool(required),
        "content": {"application/x-www-form-urlencoded": {"schema": schema}},
    }


# Bodies read from the raw request (RFC 6749 §4.4.2, RFC 7662 §2.1, RFC 7009 §2.1,
# OIDC Core §3.1.2.1, RFC 9126 §2.1, RP-Initiated Logout §2): FastAPI cannot see them.
FORM_BODIES: dict[str, dict[str, Any]] = {
    "POST /token": _form(
        ("grant_type",),
        "grant_type",
        "scope",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        *_CLIENT_AUTH_PARAMS,
    ),
    "POST /introspect": _form(("token",), "token", "token_type_hint", *_CLIENT_AUTH_PARAMS),
    "POST /revoke": _form(("token",), "token", "token_type_hint", *_CLIENT_AUTH_PARAMS),
    "POST /authorize": _form((), *_AUTHORIZE_PARAMS),
    # RFC 9126 §2.1: the authorization parameters, client-authenticated.
    "POST /par": _form((), *_AUTHORIZE_PARAMS, *_CLIENT_AUTH_PARAMS),
    "POST /logout": _form((), *_LOGOUT_PARAMS),
}
QUERY_PARAMETERS: dict[str, tuple[str, ...]] = {
    "GET /authorize": _AUTHORIZE_PARAMS,
    "GET /logout": _LOGOUT_PARAMS,
}

# Pages for a person's browser: HTML, redirects to the login pages or back to
# the client (RFC 6749 §4.1.2), and HTML error pages where redirecting would be
# unsafe (§4.1.2.1: unknown client or redirect URI).
HTML = {"text/html": {"schema": {"type": "string"}}}
REDIRECT = {
    "description": "To the login pages, or back to the client with a code or an error",
    "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
}
BROWSER_PAGES = frozenset(
    {"GET /authorize", "POST /authorize", "GET /authorize/complete", "GET /logout", "POST /logout"}
)

# Answers that are not JSON.
MEDIA_TYPES: dict[str, str] = {
    "GET /metrics": "text/plain",
}


def security_schemes(issuer: str, cookie: str, scopes: list[str]) -> dict[str, Any]:
    return {
        CLIENT_TOKEN: {
            "type": "oauth2",
            "description": (
                "A back-office client's access token (RFC 9068 JWT) from the client "
                "credentials grant, sent as 'Authorization: Bearer <token>' (RFC 6750). "
                "Scopes are the operations of the client's service policy; roles "
                "(admin, ca_operator, auditor, counter_operator) are the client's, read "
                "from its current record on every request."
            ),
            "flows": {
                "clientCredentials": {
                    "tokenUrl": f"{issuer}/token",
                    "scopes": {scope: f"the policy operation {scope}" for scope in scopes},
                }
            },
        },
        PERSON_TOKEN: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from a person's OpenID Connect login (RFC 9068).",
        },
        LOGIN_SESSION: {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie,
            "description": "The person's own Hoviyat login.",
        },
        CLIENT_BASIC: {
            "type": "http",
            "scheme": "basic",
            "description": (
                "Client authentication at the OAuth endpoints (RFC 6749 §2.3.1). Clients "
                "registered for client_secret_post or private_key_jwt (RFC 7523) send "
                "their credentials in the form body instead."
            ),
        },
    }


def declared_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The app's operations, with included routers opened up (FastAPI keeps them as branches)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from declared_routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _access(key: str, route: APIRoute) -> tuple[list[dict[str, list[str]]], str, tuple[int, ...]]:
    """The operation's security requirement, its Access paragraph, and auth statuses."""
    calls = list(_calls(route.dependant))
    roles = sorted({role for call in calls for role in getattr(call, "required_roles", ())})
    scope = SCOPES.get(key)
    if roles:
        text = "a client-credentials token of a client holding one of the roles " + ", ".join(
            f"`{role}`" for role in roles
        )
        return [{CLIENT_TOKEN: []}], text, (401, 403)
    if require_client in calls:
        text = "a client-credentials token of any enabled client"
        if scope:
            text += f" whose service policy and token allow the operation `{scope}`"
        return [{CLIENT_TOKEN: [scope] if scope else []}], text, (401, 403)
    names = {getattr(call, "__name__", "") for call in calls}
    if "citizen_national_code" in names:
        text = "the person's own login session, or an access token minted for that person"
        return [{LOGIN_SESSION: []}, {PERSON_TOKEN: []}], text, (401,)
    if "require_holder" in names:
        text = (
            "the person's access token from an OpenID Connect login at level substantial or higher"
        )
        return [{PERSON_TOKEN: []}], text, (401, 403)
    if key in PERSON_TOKEN_OPERATIONS or token_claims in calls:
        return [{PERSON_TOKEN: []}], "the person's OpenID Connect access token", (401,)
    if route.path in OAUTH_ENDPOINTS:
        text = "client authentication (HTTP Basic, client_secret_post or private_key_jwt)"
        return [{CLIENT_BASIC: []}, {}], text, ()
    return [], "public: no credentials", ()


def _has_input(operation: dict[str, Any]) -> bool:
    return bool(operation.get("parameters")) or "requestBody" in operation


def _problem(status: int) -> dict[str, Any]:
    return {"description": MEANINGS.get(status, "Problem"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}  # fmt: skip


def _oauth_error(status: int) -> dict[str, Any]:
    meaning = {400: "OAuth error (RFC 6749 §5.2)", 401: "Client authentication failed"}
    return {"description": meaning.get(status, MEANINGS.get(status, "Error")),
            "content": {"application/json": {"schema": OAUTH_ERROR_REF}}}  # fmt: skip


def complete(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    hoviyat = app.state.hoviyat
    scopes = sorted({op for policy in hoviyat.policies.values() for op in policy.operations})
    components = document.setdefault("components", {})
    components["securitySchemes"] = security_schemes(
        hoviyat.settings.issuer, cookie_name(hoviyat.settings), scopes
    )
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ProblemDocument", _problem_schema())
    schemas["OAuthError"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "error_description": {"type": "string"},
        },
    }
    seen_ids: set[str] = set()
    for route in declared_routes(app.routes):
        if not route.include_in_schema:
            continue
        # A route that reads its JSON body itself (idp.verification.routes) names its model.
        body_model = getattr(route.endpoint, "body_model", None)
        if body_model is not None:
            schemas.setdefault(body_model.__name__, body_model.model_json_schema())
        for method in sorted(route.methods or ()):
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            _complete_operation(f"{method} {route.path_format}", route, method, operation)
            # One route serving two methods would give both the same operationId.
            if operation.get("operationId") in seen_ids:
                operation["operationId"] = f"{operation['operationId']}_{method.lower()}"
            seen_ids.add(operation.get("operationId", ""))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _complete_operation(key: str, route: APIRoute, method: str, operation: dict[str, Any]) -> None:
    security, access, auth_statuses = _access(key, route)
    operation["security"] = security
    description = operation.get("description", "").rstrip()
    operation["description"] = (description + "\n\n" if description else "") + (
        f"**Access:** {access}."
    )
    roles = [r for call in _calls(route.dependant) for r in getattr(call, "required_roles", ())]
    if roles:
        operation["x-required-roles"] = sorted(set(roles))
    statuses = {400, 413, *auth_statuses, *HANDLER_STATUSES.get(key, ())}
    if key not in STORELESS:
        statuses.add(503)
    if _has_input(operation) or route.path_format.count("{"):
        statuses.add(422)
    if method in ("POST", "PUT", "PATCH") and route.path_format.startswith("/v1/"):
        statuses.add(415)
    responses = operation.setdefault("responses", {})
    if key in FORM_BODIES:
        operation["requestBody"] = FORM_BODIES[key]
    if key in QUERY_PARAMETERS:
        operation["parameters"] = [
            {"name": name, "in": "query", "required": False,
             "schema": {"type": "string"}}
            for name in QUERY_PARAMETERS[key]
        ]  # fmt: skip
    if key in MEDIA_TYPES:
        responses["200"]["content"] = {MEDIA_TYPES[key]: {"schema": {"type": "string"}}}
    if key in BROWSER_PAGES:
        responses["200"] = {"description": "A page", "content": HTML}
        responses["302"] = REDIRECT
        responses["303"] = REDIRECT
    oauth = route.path_format in OAUTH_ENDPOINTS
    if oauth:
        statuses -= {422}
        for status in (400, 401):
            responses[str(status)] = _oauth_error(status)
    for status in sorted(statuses):
        if oauth and status in (400, 401):
            continue
        responses[str(status)] = _problem(status)
    for status in [s for s in responses if s[0] in "45" and int(s) not in statuses]:
        # Declared by a router for all its operations: one that cannot arise
        # here goes; the others answer as problems like the rest.
        if status == "415" and method == "GET":
            del responses[status]
        elif not oauth:
            responses[status] = _problem(int(status))
    if key in BROWSER_PAGES:
        # A page for the person, or a problem when the request is not a form at all.
        for page_status in ("400", "403"):
            if page_status in responses:
                page = responses[page_status]
                page["content"] = {**HTML, **page["content"]}


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
        "additionalProperties": True,
    }


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` answer the completed document (built once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(app, generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
