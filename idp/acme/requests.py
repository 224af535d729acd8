"""The authenticated POST every ACME resource but the directory and newNonce takes.

Stub written by the integrator so the order and account helpers share one
shape; the protocol helper implements :func:`acme_post` and may add fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from idp.acme.paths import AcmePaths


@dataclass(frozen=True)
class AcmeAccount:
    """An ACME account as the resources see it."""

    id: str
    status: str  # "valid" | "deactivated" | "revoked"
    jwk_thumbprint: str  # RFC 7638, base64url SHA-256
    national_id: str  # the legal entity the EAB key bound it to
    service_code: str  # that entity's service policy
    eab_key_id: str


@dataclass(frozen=True)
class AcmePost:
    """One verified request: signature, nonce (spent), ``url`` all checked (§6.2-6.5)."""

    paths: AcmePaths
    url: str
    payload: dict[str, Any] | None  # None: POST-as-GET (§6.3)
    raw_payload: bytes
    protected: dict[str, Any]
    # Exactly one of the two (§6.2): a ``kid`` request resolves its account;
    # a ``jwk`` request (newAccount, revokeCert by certificate key) carries the key.
    account: AcmeAccount | None
    jwk: dict[str, Any] | None


async def acme_post(request: Request, ca: str) -> AcmePost:
    """Verify the flattened JWS of ``request`` for the CA named ``ca``.

    Raises :class:`idp.acme.problems.AcmeProblem` (badNonce, malformed,
    unauthorized, accountDoesNotExist, badSignatureAlgorithm...) on any failure.
    """
    raise NotImplementedError


async def acme_post_with_jwk(request: Request, ca: str) -> AcmePost:
    """As :func:`acme_post`, for the resources that take ``jwk`` (newAccount, revokeCert)."""
    raise NotImplementedError
