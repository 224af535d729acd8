"""ACME problem documents (RFC 8555 §6.7): ``urn:ietf:params:acme:error:<type>``.

Every refusal under ``/acme/`` leaves as one of these, never as Hoviyat's own
RFC 9457 types: ACME clients read ``type`` to decide what to do (a client
retries ``badNonce`` with the fresh nonce, §6.5). The handlers that turn
exceptions into responses are in :mod:`idp.acme.responses`.
"""

from __future__ import annotations

from typing import Any

ACME_ERROR = "urn:ietf:params:acme:error:"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# §6.7 table: the types this server sends.
ERROR_TYPES = frozenset(
    {
        "accountDoesNotExist",
        "alreadyReplaced",  # RFC 9773
        "alreadyRevoked",
        "badCSR",
        "badNonce",
        "badPublicKey",
        "badRevocationReason",
        "badSignatureAlgorithm",
        "caa",
        "compound",
        "connection",
        "dns",
        "externalAccountRequired",
        "incorrectResponse",
        "invalidContact",
        "invalidProfile",  # draft-ietf-acme-profiles
        "malformed",
        "orderNotReady",
        "rateLimited",
        "rejectedIdentifier",
        "serverInternal",
        "tls",
        "unauthorized",
        "unsupportedContact",
        "unsupportedIdentifier",
        "userActionRequired",
        "conflict",  # not in §6.7's table; used by Boulder and Pebble for key rollover (§7.3.5)
    }
)


class AcmeProblem(Exception):
    """Raise under any ACME route: answered as ``application/problem+json`` with a
    fresh ``Replay-Nonce`` and the directory ``Link`` (§6.5, §7.1)."""

    def __init__(
        self,
        error: str,  # the type without its prefix: "badNonce", "malformed", ...
        detail: str,
        status: int = 400,
        *,
        subproblems: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.status = status
        self.subproblems = subproblems
        self.headers = headers or {}
        # Members beside type/detail/status (badSignatureAlgorithm's "algorithms", §6.2).
        self.extensions = extensions or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": ACME_ERROR + self.error,
            "detail": self.detail,
            "status": self.status,
        }
        if self.subproblems:
            body["subproblems"] = self.subproblems
        body.update(self.extensions)
        return body

    def __repr__(self) -> str:
        return f"AcmeProblem({self.error!r}, {self.detail!r}, {self.status})"


def malformed(detail: str, status: int = 400) -> AcmeProblem:
    return AcmeProblem("malformed", detail, status)


def unauthorized(detail: str) -> AcmeProblem:
    return AcmeProblem("unauthorized", detail, 403)


def not_found(detail: str) -> AcmeProblem:
    # §6.7 has no "not found" type; Boulder and Pebble send malformed with 404.
    return AcmeProblem("malformed", detail, 404)


def server_internal(detail: str, status: int = 500, retry_after: int | None = None) -> AcmeProblem:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return AcmeProblem("serverInternal", detail, status, headers=headers)
