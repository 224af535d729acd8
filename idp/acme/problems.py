"""ACME problem documents (RFC 8555 §6.7): ``urn:ietf:params:acme:error:<type>``.

Stub written by the integrator; the protocol helper owns and completes it.
"""

from __future__ import annotations

from typing import Any

ACME_ERROR = "urn:ietf:params:acme:error:"


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
    ) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.status = status
        self.subproblems = subproblems
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": ACME_ERROR + self.error,
            "detail": self.detail,
            "status": self.status,
        }
        if self.subproblems:
            body["subproblems"] = self.subproblems
        return body
