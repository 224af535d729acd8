"""External account binding keys (RFC 8555 §7.3.4), one per legal entity and service.

An administrator (``hoviyat acme eab create`` or ``POST /v1/acme/eab-keys``)
creates a key for a legal entity named by its national identifier, which
must be valid (check digit) and registered in the deeds registry, and for a
loaded service policy: the names the entity's ACME account may order are
that policy's. The MAC key is shown once and stored sealed under the
key-encryption key. A key binds exactly one account (:func:`verify_binding`
here, the atomic bind in :mod:`idp.storage.acme_eab`); revoking it revokes
the account it bound.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from idp.acme import rfc8555_jws
from idp.acme.paths import AcmePaths
from idp.acme.problems import AcmeProblem, malformed, unauthorized
from idp.audit.log import AuditEvent, subject_hash
from idp.entities import EntityRefused, active_entity
from idp.secrets import ServerSecrets
from idp.secrets_at_rest import KeyDoesNotOpen, Purpose, open_secret, seal_secret
from idp.storage import acme_accounts, acme_eab
from idp.storage.acme_eab import AcmeEabKey
from idp.tracking import new_tracking_code
from policies.service_policy import ServicePolicy
from verifiers.registry import Registries

KEY_BYTES = 32  # HS256 key: as long as the hash (RFC 2104 §3)
EVENT_TYPE = "acme_eab_key"
# RFC 7638 §3.2: the required members of each key type, in the thumbprint.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}


class EabError(ValueError):
    """A key cannot be created or revoked as asked; ``str(e)`` says why."""


@dataclass(frozen=True)
class CreatedKey:
    """A new key as shown once to the administrator."""

    kid: str
    hmac_key: str  # base64url, what certbot's --eab-hmac-key takes
    national_id: str
    service_code: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "hmac_key": self.hmac_key,
            "national_id": self.national_id,
            "service_code": self.service_code,
            "created_at": self.created_at.isoformat(),
        }


def summary(row: AcmeEabKey) -> dict[str, Any]:
    """A key as listed: never its MAC key."""
    return {
        "kid": row.kid,
        "national_id": row.national_id,
        "service_code": row.service_code,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
        "status": "revoked" if row.revoked_at else ("bound" if row.account_id else "unused"),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "account_id": row.account_id,
        "bound_at": row.bound_at.isoformat() if row.bound_at else None,
    }


def check_request(
    registries: Registries, policies: dict[str, ServicePolicy], national_id: str, service_code: str
) -> str:
    """The canonical national identifier, if the entity and the service may have a key.

    Asks the deeds registry (raises RegistryUnavailable when it cannot answer):
    call from a worker thread.
    """
    try:
        return active_entity(registries, policies, national_id, service_code)
    except EntityRefused as error:
        raise EabError(str(error)) from None


def _typeable(draw: Callable[[], str]) -> str:
    """A value that does not begin with "-": certbot, lego and the CLI would read
    ``--eab-kid -x…`` as an option (one value in 64 did). Drawing again costs
    nothing measurable of the value's randomness (log2(64/63) bits)."""
    while (value := draw()).startswith("-"):
        pass
    return value


def _typeable_key() -> bytes:
    while rfc8555_jws.b64url(key := secrets.token_bytes(KEY_BYTES)).startswith("-"):
        pass
    return key


def create(
    session: Session,
    secrets_: ServerSecrets,
    *,
    national_id: str,
    service_code: str,
    created_by: str,
) -> tuple[CreatedKey, AcmeEabKey]:
    """Store a new key for an entity :func:`check_request` accepted; the key is in the answer."""
    kid = _typeable(lambda: secrets.token_urlsafe(16))
    mac_key = _typeable_key()
    now = datetime.now(UTC)
    row = AcmeEabKey(
        kid=kid,
        national_id=national_id,
        service_code=service_code,
        hmac_key_sealed=seal_secret(secrets_.key_encryption_key, Purpose.ACME_EAB, kid, mac_key),
        created_at=now,
        created_by=created_by[:128],
    )
    acme_eab.insert(session, row)
    created = CreatedKey(kid, rfc8555_jws.b64url(mac_key), national_id, service_code, now)
    return created, row


def revoke(session: Session, kid: str) -> tuple[AcmeEabKey, str | None]:
    """Revoke key ``kid`` and the account it bound (its id, or None); EabError if unknown."""
    now = datetime.now(UTC)
    row = acme_eab.get(session, kid)
    if row is None:
        raise EabError(f"no EAB key {kid!r}")
    if not acme_eab.revoke(session, kid, now):
        raise EabError(f"EAB key {kid!r} is revoked already")
    account_id = acme_accounts.revoke_by_eab_key(session, kid, now)
    return row, account_id


def key_event(
    secrets_: ServerSecrets,
    policies: dict[str, ServicePolicy],
    row: AcmeEabKey,
    operation: str,
    *,
    actor_type: str,
    actor_id: str,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """The audit entry of a key's creation or revocation, naming the entity (by its hash)."""
    policy = policies.get(row.service_code)
    return AuditEvent(
        tracking_code=new_tracking_code(),
        event_type=EVENT_TYPE,
        actor_type=actor_type,
        actor_id=actor_id,
        service_code=row.service_code,
        legal_basis=policy.legal_basis if policy else None,
        operation=operation,
        subject_hash=subject_hash(secrets_.subject_pepper, row.national_id),
        outcome="ok",
        detail={"kid": row.kid, **(detail or {})},
    )


def jwk_thumbprint(value: object) -> str | None:
    """RFC 7638 thumbprint of a JWK given as JSON, or None if it lacks its required members."""
    if not isinstance(value, dict):
        return None
    members = _THUMBPRINT_MEMBERS.get(value.get("kty"))  # type: ignore[arg-type]
    if members is None or not all(isinstance(value.get(m), str) for m in members):
        return None
    canonical = json.dumps({m: value[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return rfc8555_jws.b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class Binding:
    """An EAB whose form, url and key are right; its MAC is checked against the stored key."""

    kid: str
    signing_input: bytes
    signature: bytes


def parse_binding(value: object, paths: AcmePaths, account_thumbprint: str) -> Binding:
    """The newAccount ``externalAccountBinding`` (§7.3.4), checked but for its MAC."""
    if value is None:
        raise AcmeProblem(
            "externalAccountRequired",
            "this server requires an external account binding: ask the administrator for a key",
        )
    if not isinstance(value, dict) or set(value) != {"protected", "payload", "signature"}:
        raise malformed("externalAccountBinding must be a flattened JWS (§7.3.4)")
    protected_b64 = value["protected"]
    if isinstance(protected_b64, str) and len(protected_b64) > 4096:
        raise malformed("externalAccountBinding's protected header is too large")
    protected = rfc8555_jws.json_object(
        rfc8555_jws.b64url_decode(protected_b64, "the EAB protected header"),
        "the EAB protected header",
    )
    payload_b64 = value["payload"]
    payload = rfc8555_jws.b64url_decode(payload_b64, "the EAB payload")
    signature = rfc8555_jws.b64url_decode(value["signature"], "the EAB signature")
    if protected.get("alg") != "HS256":
        raise AcmeProblem(
            "badSignatureAlgorithm",
            "the external account binding must be HS256 (§7.3.4)",
            extensions={"algorithms": ["HS256"]},
        )
    if "crit" in protected or "b64" in protected:
        raise malformed("the EAB names an extension this server does not support")
    if "nonce" in protected:
        raise malformed("the external account binding must not carry a nonce (§7.3.4)")
    kid = protected.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 64:
        raise malformed("the external account binding has no kid")
    if protected.get("url") != paths.new_account:
        raise unauthorized("the external account binding's url is not newAccount's (§7.3.4)")
    inner_key = rfc8555_jws.json_object(payload, "the EAB payload")
    if jwk_thumbprint(inner_key) != account_thumbprint:
        raise unauthorized("the external account binding is over another key than the account's")
    return Binding(kid, f"{protected_b64}.{payload_b64}".encode("ascii"), signature)


def verify_binding(session: Session, secrets_: ServerSecrets, binding: Binding) -> AcmeEabKey:
    """The stored key the binding names, if unrevoked, unbound, and its MAC matches."""
    row = acme_eab.get(session, binding.kid)
    refused = unauthorized("the external account binding is not valid")
    if row is None or row.revoked_at is not None:
        raise refused
    try:
        mac_key = open_secret(
            secrets_.key_encryption_key, Purpose.ACME_EAB, row.kid, row.hmac_key_sealed
        )
    except KeyDoesNotOpen:
        raise refused from None
    if not rfc8555_jws.mac_matches(binding.signing_input, binding.signature, mac_key):
        raise refused
    if row.account_id is not None:
        raise unauthorized("this external account binding key has an account already")
    return row
